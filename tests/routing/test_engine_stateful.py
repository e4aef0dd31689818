"""Hypothesis drives the engine through arrivals, accepts, declines, timeouts, hang-ups, duplicate and
reordered events, presence changes and restarts, and checks the invariants after every step."""
from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from routing import engine as e
from routing.model import (
    Diversion, Divert, EscalationStep, QueueRules, RoutingState, Strategy, within_calling_hours,
)
from routing.states import CallState, Presence, RoutingError, Work

T0 = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
AGENTS = range(1, 6)
TIERS = st.sampled_from([None, "gold", "silver", "standard"])


def restart(state: RoutingState) -> RoutingState:
    """Rebuild the state from plain values, as a process that reloads it from the database would."""
    agents = {aid: dataclasses.replace(a, skills=dict(a.skills)) for aid, a in state.agents.items()}
    calls = {sid: dataclasses.replace(c, tried=frozenset(sorted(c.tried)), preferred=tuple(c.preferred))
             for sid, c in state.calls.items() if c.state is not CallState.ENDED}
    return RoutingState(agents, calls, dict(state.queues), state.config, dict(state.last_chosen))


class EngineMachine(RuleBasedStateMachine):
    @initialize(strategy=st.sampled_from(list(Strategy)), escalate=st.booleans())
    def start(self, strategy, escalate):
        escalation = (EscalationStep(timedelta(seconds=40), {"support": 1}),) if escalate else ()
        queues = {
            "Support": QueueRules("Support", {"support": 2}, strategy=strategy, escalation=escalation,
                                  max_wait=timedelta(seconds=300), overflow=Diversion(Divert.QUEUE, "Sales")),
            "Sales": QueueRules("Sales", {"sales": 1}, max_wait=timedelta(seconds=600),
                                overflow=Diversion(Divert.VOICEMAIL)),
        }
        skills = [{"support": 2}, {"support": 1}, {"sales": 1}, {"support": 3, "sales": 2}, {"support": 2}]
        agents = {aid: e.Agent(aid, Presence.OFFLINE, Work.IDLE, T0, skills[aid - 1]) for aid in AGENTS}
        self.state = RoutingState(agents, {}, queues)
        self.now = T0
        self.seen: list[e.Event] = []
        self.next_sid = 0
        self.offers: list[e.SendOffer] = []
        self.manual_breaks: dict[int, str] = {}

    def apply(self, event: e.Event) -> None:
        before = self.state
        try:
            decision = e.decide(self.state, event, self.now)
        except RoutingError:
            assert self.state is before  # a refused event changes nothing
            return
        self.state = decision.state
        self.seen.append(event)
        self.offers += [c for c in decision.commands if isinstance(c, e.SendOffer)]

    def calls_in(self, *states: CallState) -> list[e.Call]:
        return sorted((c for c in self.state.calls.values() if c.state in states), key=lambda c: c.sid)

    @rule(seconds=st.integers(0, 120))
    def time_passes(self, seconds):
        self.now += timedelta(seconds=seconds)
        self.apply(e.Tick())

    @rule(queue=st.sampled_from(["Support", "Sales"]), tier=TIERS,
          preferred=st.lists(st.sampled_from(list(AGENTS)), max_size=2, unique=True))
    def call_arrives(self, queue, tier, preferred):
        self.next_sid += 1
        self.apply(e.CallArrived(f"CA{self.next_sid:04d}", queue, tier, tuple(preferred)))

    @rule(agent=st.sampled_from(list(AGENTS)), presence=st.sampled_from(list(Presence)),
          reason=st.sampled_from(["lunch", "meeting"]))
    def presence_changes(self, agent, presence, reason):
        self.apply(e.PresenceChanged(agent, presence, reason))

    @rule(data=st.data(), accept=st.booleans())
    def agent_answers_an_offer(self, data, accept):
        offered = self.calls_in(CallState.OFFERED)
        if not offered:
            return
        call = data.draw(st.sampled_from(offered))
        agent = call.agent_id if data.draw(st.booleans()) else data.draw(st.sampled_from(list(AGENTS)))
        self.apply(e.OfferAccepted(call.sid, agent) if accept else e.OfferDeclined(call.sid, agent))

    @rule(data=st.data())
    def an_offer_times_out(self, data):
        if not self.offers:
            return
        offer = data.draw(st.sampled_from(self.offers))  # often stale: a timer for an old offer
        self.now = max(self.now, offer.expires_at)
        self.apply(e.OfferExpired(offer.sid, offer.agent_id, offer.expires_at))

    @rule(data=st.data(), joins=st.booleans())
    def agent_leg_joins_or_fails(self, data, joins):
        connecting = self.calls_in(CallState.CONNECTING)
        if connecting:
            call = data.draw(st.sampled_from(connecting))
            self.apply(e.AgentJoined(call.sid, call.agent_id) if joins else e.AgentLegFailed(call.sid, call.agent_id))

    @rule(data=st.data())
    def caller_hangs_up(self, data):
        live = self.calls_in(CallState.WAITING, CallState.OFFERED, CallState.CONNECTING, CallState.CONNECTED)
        if live:
            self.apply(e.CallHungUp(data.draw(st.sampled_from(live)).sid))

    @rule(agent=st.sampled_from(list(AGENTS)))
    def wrap_up_ends(self, agent):
        a = self.state.agents[agent]
        self.apply(e.WrapUpFinished(agent, a.call_sid or "CA-none"))

    @rule(data=st.data(), zones=st.sampled_from([("America/New_York",), ("Asia/Tokyo",), ()]))
    def a_caller_asks_for_a_callback(self, data, zones):
        line = self.calls_in(CallState.WAITING, CallState.OFFERED)
        if line:
            call = data.draw(st.sampled_from(line))
            self.apply(e.CallbackRequested(call.sid, zones))
            self.apply(e.CallHungUp(call.sid))  # the caller's own leg ends; the callback keeps its place

    @rule(data=st.data())
    def a_callback_goes_unanswered(self, data):
        live = [c for c in self.calls_in(CallState.CONNECTING, CallState.CONNECTED) if c.callback]
        if live:
            self.apply(e.CallbackUnanswered(data.draw(st.sampled_from(live)).sid))

    @rule(agent=st.sampled_from(list(AGENTS)))
    def the_sweeper_releases_an_agent(self, agent):
        self.apply(e.ReleaseAgent(agent))  # must be a no-op unless the agent's call is gone

    @precondition(lambda self: self.seen)
    @rule(data=st.data())
    def an_old_event_is_delivered_again(self, data):
        self.apply(data.draw(st.sampled_from(self.seen)))

    @rule()
    def the_process_restarts(self):
        self.state = restart(self.state)

    # ------------------------------------------------------------ invariants

    @invariant()
    def an_agent_holds_at_most_one_call_and_a_call_at_most_one_agent(self):
        if not hasattr(self, "state"):
            return
        holders: dict[str, int] = {}
        for agent in self.state.agents.values():
            if agent.call_sid is not None:
                assert agent.call_sid not in holders, f"{agent.call_sid} held by {holders[agent.call_sid]} and {agent.id}"
                holders[agent.call_sid] = agent.id
        for call in self.state.calls.values():
            if call.state in (CallState.OFFERED, CallState.CONNECTING, CallState.CONNECTED):
                assert call.agent_id is not None and holders.get(call.sid) == call.agent_id
            if call.state is CallState.WAITING:
                assert call.agent_id is None and call.sid not in holders

    @invariant()
    def each_queue_line_lists_exactly_its_waiting_calls_in_order(self):
        if not hasattr(self, "state"):
            return
        rebuilt = RoutingState(self.state.agents, self.state.calls, self.state.queues).lines
        assert {q: line for q, line in self.state.lines.items() if line} == {q: line for q, line in rebuilt.items() if line}

    @invariant()
    def work_state_matches_the_call_held(self):
        if not hasattr(self, "state"):
            return
        for agent in self.state.agents.values():
            call = self.state.calls.get(agent.call_sid) if agent.call_sid else None
            if agent.work is Work.IDLE:
                assert agent.call_sid is None
            elif agent.work is Work.OFFERED:
                assert call is not None and call.state is CallState.OFFERED and call.agent_id == agent.id
                assert agent.presence is Presence.AVAILABLE
            elif agent.work is Work.ON_CALL:
                assert call is not None and call.state in (CallState.CONNECTING, CallState.CONNECTED)
            elif agent.work is Work.WRAP_UP:
                assert agent.call_sid is not None

    @invariant()
    def nobody_unavailable_is_offered_a_call(self):
        if not hasattr(self, "state"):
            return
        for call in self.calls_in(CallState.OFFERED):
            agent = self.state.agents[call.agent_id]
            rules = self.state.queues[call.queue]
            assert agent.meets(rules.skills_after(self.now - call.arrived_at))

    @invariant()
    def no_caller_waits_while_a_qualified_agent_is_free(self):
        if not hasattr(self, "state"):
            return
        free = [a for a in self.state.agents.values() if a.is_free()]
        for call in self.calls_in(CallState.WAITING):
            rules = self.state.queues[call.queue]
            in_window = call.preferred and self.now - call.arrived_at < rules.preferred_window
            if in_window:
                continue  # held for a preferred agent, by rule
            if call.callback and not within_calling_hours(call.zones, self.now, self.state.config.calling_window):
                continue  # a callback outside the customer's calling hours waits, by rule
            skills = rules.skills_after(self.now - call.arrived_at)
            assert not [a for a in free if a.meets(skills)], f"{call.sid} waits while an agent is free"


EngineMachine.TestCase.settings = settings(
    max_examples=300, stateful_step_count=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TestEngineUnderRandomEvents = EngineMachine.TestCase
