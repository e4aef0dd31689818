"""The engine's rules: strategies, value tiers, preferred agents, escalation, hours, overflow, missed
offers, pending breaks, traces. Plain functions, no fixtures."""
from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

import pytest

from routing import engine as e
from routing.model import BusinessHours, Divert, Diversion, EscalationStep, QueueRules, Strategy
from routing.states import CallState, Presence, Work

T0 = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # a Monday, 10:00 in New York


def agent(aid, idle_minutes=0, skills=None, presence=Presence.AVAILABLE, calls_today=0):
    return e.Agent(aid, presence, Work.IDLE, T0 - timedelta(minutes=idle_minutes),
                   skills if skills is not None else {"support": 1}, calls_today=calls_today)


def state(*agents, **queue_rules):
    rules = QueueRules("Support", {"support": 1}, **queue_rules)
    other = QueueRules("Sales", {"sales": 1})
    return e.RoutingState({a.id: a for a in agents}, {}, {"Support": rules, "Sales": other})


def run(s, *events, now=T0):
    commands = []
    for event in events:
        d = e.decide(s, event, now)
        s, commands = d.state, commands + d.commands
    return s, commands


def offered_to(commands):
    return [(c.agent_id, c.sid) for c in commands if isinstance(c, e.SendOffer)]


def arrive(sid, tier=None, preferred=()):
    return e.CallArrived(sid, "Support", tier, preferred)


@pytest.mark.parametrize("strategy,expected", [
    (Strategy.LONGEST_IDLE, 1), (Strategy.FEWEST_CALLS, 2), (Strategy.HIGHEST_SKILL, 3)])
def test_each_strategy_picks_its_agent(strategy, expected):
    agents = (agent(1, idle_minutes=30, calls_today=9), agent(2, idle_minutes=10, calls_today=1),
              agent(3, idle_minutes=5, calls_today=5, skills={"support": 5}))
    _, cmds = run(state(*agents, strategy=strategy), arrive("CA1"))
    assert offered_to(cmds) == [(expected, "CA1")]


def test_round_robin_takes_turns_in_agent_order():
    s = state(agent(1), agent(2), agent(3), strategy=Strategy.ROUND_ROBIN)
    chosen = []
    for n in range(4):
        s, cmds = run(s, arrive(f"CA{n}"))
        aid = offered_to(cmds)[0][0]
        chosen.append(aid)
        s, _ = run(s, e.OfferAccepted(f"CA{n}", aid), e.AgentJoined(f"CA{n}", aid), e.CallHungUp(f"CA{n}"),
                   e.WrapUpFinished(aid, f"CA{n}"))
    assert chosen == [1, 2, 3, 1]


def test_a_gold_caller_goes_ahead_of_earlier_standard_callers_but_not_forever():
    s = state(agent(1, presence=Presence.OFFLINE))
    s, _ = run(s, arrive("CA-standard-old"), now=T0 - timedelta(seconds=600))
    s, _ = run(s, arrive("CA-standard"), now=T0)
    s, _ = run(s, arrive("CA-gold", tier="gold"), now=T0 + timedelta(seconds=60))
    s, cmds = run(s, e.PresenceChanged(1, Presence.AVAILABLE), now=T0 + timedelta(seconds=61))
    # the 120 s head start does not beat a caller who has waited ten minutes...
    assert offered_to(cmds) == [(1, "CA-standard-old")]
    s, _ = run(s, e.OfferAccepted("CA-standard-old", 1), e.AgentJoined("CA-standard-old", 1),
               now=T0 + timedelta(seconds=62))
    s, cmds = run(s, e.CallHungUp("CA-standard-old"), e.WrapUpFinished(1, "CA-standard-old"),
                  now=T0 + timedelta(seconds=100))
    # ...but it does beat one who arrived a minute before the gold caller
    assert offered_to(cmds) == [(1, "CA-gold")]


def test_the_owner_is_offered_first_even_when_another_agent_was_idle_longer():
    _, cmds = run(state(agent(1, idle_minutes=60), agent(2, idle_minutes=1)), arrive("CA1", preferred=(2,)))
    offer = [c for c in cmds if isinstance(c, e.SendOffer)][0]
    assert (offer.agent_id, offer.sid) == (2, "CA1") and "owner" in offer.reason


def test_a_busy_owner_is_waited_for_during_the_window_then_the_search_widens():
    owner = agent(2)
    s = state(agent(1, idle_minutes=60), owner, preferred_window=timedelta(seconds=20))
    s = s.with_agent(replace(owner, work=Work.ON_CALL, call_sid="CA-other"))
    s, cmds = run(s, arrive("CA1", preferred=(2,)))
    assert offered_to(cmds) == []
    ticks = [c.at for c in cmds if isinstance(c, e.ScheduleTick)]
    assert ticks == [T0 + timedelta(seconds=20)]
    trace = [c.trace for c in cmds if isinstance(c, e.RecordTrace)][0]
    assert trace.outcome == "waiting" and "preferred" in trace.rule
    s, cmds = run(s, e.Tick(), now=T0 + timedelta(seconds=20))
    assert offered_to(cmds) == [(1, "CA1")]


def test_an_owner_who_is_offline_does_not_hold_the_call():
    _, cmds = run(state(agent(1), agent(2, presence=Presence.OFFLINE)), arrive("CA1", preferred=(2,)))
    assert offered_to(cmds) == [(1, "CA1")]


def test_escalation_widens_the_skills_as_the_wait_grows():
    junior = agent(1, skills={"support": 1})
    s = state(junior, escalation=(EscalationStep(timedelta(seconds=30), {"support": 1}),))
    s = e.RoutingState(s.agents, s.calls, {**s.queues, "Support": replace(s.queues["Support"], skills={"support": 3})})
    s, cmds = run(s, arrive("CA1"))
    assert offered_to(cmds) == [] and [c.at for c in cmds if isinstance(c, e.ScheduleTick)] == [T0 + timedelta(seconds=30)]
    s, cmds = run(s, e.Tick(), now=T0 + timedelta(seconds=30))
    assert offered_to(cmds) == [(1, "CA1")] and "escalation" in cmds[0].reason


def test_missed_offers_in_a_row_put_the_agent_on_a_break():
    s, cmds = run(state(agent(1)), arrive("CA1"))
    for _ in range(3):  # the only agent: each timeout offers the call to her again
        offer = [c for c in cmds if isinstance(c, e.SendOffer)][-1]
        s, cmds = run(s, e.OfferExpired(offer.sid, 1, offer.expires_at), now=offer.expires_at)
    assert s.agents[1].presence is Presence.BREAK and s.agents[1].break_reason == "missed_offers"
    assert s.calls["CA1"].state is CallState.WAITING and offered_to(cmds) == []


def test_an_accepted_offer_resets_the_missed_count():
    s, cmds = run(state(agent(1)), arrive("CA1"))
    offer = [c for c in cmds if isinstance(c, e.SendOffer)][-1]
    s, cmds = run(s, e.OfferExpired("CA1", 1, offer.expires_at), now=offer.expires_at)
    assert s.agents[1].missed_offers == 1
    s, _ = run(s, e.OfferAccepted("CA1", 1), now=offer.expires_at)
    assert s.agents[1].missed_offers == 0


def test_a_break_chosen_during_a_call_starts_after_wrap_up_and_is_not_undone():
    s, _ = run(state(agent(1)), arrive("CA1"), e.OfferAccepted("CA1", 1), e.AgentJoined("CA1", 1))
    s, _ = run(s, e.PresenceChanged(1, Presence.BREAK, "lunch"))
    assert s.agents[1].presence is Presence.AVAILABLE and s.agents[1].pending_presence is Presence.BREAK
    s, _ = run(s, e.CallHungUp("CA1"), e.WrapUpFinished(1, "CA1"), e.WrapUpFinished(1, "CA1"))
    a = s.agents[1]
    assert (a.presence, a.break_reason, a.work, a.pending_presence) == (Presence.BREAK, "lunch", Work.IDLE, None)
    s, cmds = run(s, arrive("CA2"))
    assert offered_to(cmds) == []


def test_a_closed_queue_sends_callers_to_voicemail_or_another_queue():
    hours = BusinessHours("America/New_York", {d: (time(8), time(18)) for d in range(5)})
    night = T0 + timedelta(hours=10)  # 20:00 in New York
    s, cmds = run(state(agent(1), hours=hours), arrive("CA1"), now=night)
    assert [c.action for c in cmds if isinstance(c, e.DivertCall)] == [Divert.VOICEMAIL]
    assert s.calls["CA1"].state is CallState.ENDED
    sales = agent(2, skills={"sales": 1})
    s, cmds = run(state(agent(1), sales, hours=hours, after_hours=Diversion(Divert.QUEUE, "Sales")),
                  arrive("CA2"), now=night)
    assert s.calls["CA2"].queue == "Sales" and offered_to(cmds) == [(2, "CA2")]
    s, cmds = run(state(agent(1), hours=hours), arrive("CA3"), now=T0)
    assert offered_to(cmds) == [(1, "CA3")]


def test_a_caller_who_waits_past_the_maximum_overflows():
    s = state(agent(1, presence=Presence.OFFLINE), max_wait=timedelta(seconds=90),
              overflow=Diversion(Divert.VOICEMAIL))
    s, cmds = run(s, arrive("CA1"))
    assert [c.at for c in cmds if isinstance(c, e.ScheduleTick)] == [T0 + timedelta(seconds=90)]
    s, cmds = run(s, e.Tick(), now=T0 + timedelta(seconds=89))
    assert cmds == [] and s.calls["CA1"].state is CallState.WAITING
    s, cmds = run(s, e.Tick(), now=T0 + timedelta(seconds=90))
    assert [type(c) for c in cmds] == [e.RecordTrace, e.DivertCall]
    assert s.calls["CA1"].state is CallState.ENDED


def test_every_offer_is_explained_with_candidates_and_skip_reasons():
    agents = (agent(1, idle_minutes=30), agent(2, idle_minutes=5), agent(3, skills={"sales": 2}),
              agent(4, presence=Presence.BREAK), agent(5, presence=Presence.OFFLINE))
    _, cmds = run(state(*agents), arrive("CA1"))
    trace = [c.trace for c in cmds if isinstance(c, e.RecordTrace)][0]
    verdicts = dict(trace.candidates)
    assert trace.outcome == "offered" and trace.chosen == 1 and "longest idle" in trace.rule
    assert verdicts[1] == "chosen" and verdicts[2] == "free, not chosen"
    assert verdicts[3] == "lacks support 1+" and verdicts[4].startswith("on break")
    assert 5 not in verdicts and trace.not_listed == 1  # offline agents are counted, not listed


NEW_YORK = ("America/New_York",)


def test_a_caller_who_chooses_a_callback_keeps_their_place_after_hanging_up():
    s = state(agent(1, presence=Presence.OFFLINE), max_wait=timedelta(seconds=60),
              overflow=Diversion(Divert.CALLBACK))
    s, _ = run(s, arrive("CA-first"), now=T0)
    s, _ = run(s, arrive("CA-second"), now=T0 + timedelta(seconds=10))
    s, cmds = run(s, e.Tick(), now=T0 + timedelta(seconds=60))
    assert [(c.sid, c.action) for c in cmds if isinstance(c, e.DivertCall)] == [("CA-first", Divert.CALLBACK)]
    assert s.calls["CA-first"].state is CallState.WAITING  # a callback offer does not end the call
    s, _ = run(s, e.CallbackRequested("CA-first", NEW_YORK), e.CallHungUp("CA-first"), now=T0 + timedelta(seconds=70))
    assert s.calls["CA-first"].state is CallState.WAITING and s.calls["CA-first"].callback
    s, cmds = run(s, e.PresenceChanged(1, Presence.AVAILABLE), now=T0 + timedelta(seconds=80))
    assert offered_to(cmds) == [(1, "CA-first")]  # still ahead of the caller who held on
    s, cmds = run(s, e.OfferAccepted("CA-first", 1), now=T0 + timedelta(seconds=81))
    assert cmds == [e.DialAgent(1, "CA-first"), e.DialCustomer("CA-first")]


def test_callbacks_wait_for_the_customers_calling_hours():
    s = state(agent(1, presence=Presence.OFFLINE))
    late = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)  # 22:00 in New York
    s, _ = run(s, arrive("CA1"), e.CallbackRequested("CA1", NEW_YORK), e.CallHungUp("CA1"), now=late)
    s, cmds = run(s, e.PresenceChanged(1, Presence.AVAILABLE), now=late)
    assert offered_to(cmds) == [] and [c.at for c in cmds if isinstance(c, e.ScheduleTick)]
    morning = datetime(2026, 11, 24, 13, 0, tzinfo=UTC)  # 08:00 in New York
    s, cmds = run(s, e.Tick(), now=morning)
    assert offered_to(cmds) == [(1, "CA1")]
    unknown = state(agent(1))
    unknown, cmds = run(unknown, arrive("CA2"), now=T0)
    unknown, _ = run(unknown, e.OfferDeclined("CA2", 1), now=T0)
    unknown, _ = run(unknown, e.PresenceChanged(1, Presence.BREAK, "lunch"), now=T0)
    unknown, _ = run(unknown, e.CallbackRequested("CA2", ()), e.PresenceChanged(1, Presence.AVAILABLE), now=T0)
    assert unknown.calls["CA2"].state is CallState.WAITING  # no known time zone: never called back


def test_an_unanswered_callback_frees_the_agent_and_ends_the_call():
    s, _ = run(state(agent(1)), arrive("CA1"))
    s, _ = run(s, e.OfferDeclined("CA1", 1))
    s, _ = run(s, e.PresenceChanged(1, Presence.OFFLINE), e.CallbackRequested("CA1", NEW_YORK), e.CallHungUp("CA1"),
               e.PresenceChanged(1, Presence.AVAILABLE))
    s, _ = run(s, e.OfferAccepted("CA1", 1), e.AgentJoined("CA1", 1))
    s, cmds = run(s, e.CallbackUnanswered("CA1"))
    assert e.EndAgentLeg(1, "CA1") in cmds
    assert s.agents[1].work is Work.IDLE and s.calls["CA1"].state is CallState.ENDED


def test_lifetime_value_gives_a_head_start_within_a_tier_but_never_beats_the_next_tier():
    config = e.RoutingConfig()
    assert config.head_start("standard", None) == config.head_start("standard", 0) == timedelta(0)
    assert config.head_start("standard", 2_000) == timedelta(seconds=10)  # 5 s per 1,000
    assert config.head_start("standard", 10**9) == timedelta(seconds=30)  # capped
    assert config.head_start("silver", 10**9) < config.head_start("gold", 0)
    assert config.head_start("standard", 10**9) < config.head_start("silver", 0)

    s = state(agent(1, presence=Presence.OFFLINE))
    s, _ = run(s, arrive("CA-low"), now=T0)
    s, _ = run(s, e.CallArrived("CA-valuable", "Support", None, (), 4_000.0), now=T0 + timedelta(seconds=15))
    s, _ = run(s, e.CallArrived("CA-silver", "Support", "silver", (), None), now=T0 + timedelta(seconds=20))
    s, cmds = run(s, e.PresenceChanged(1, Presence.AVAILABLE), now=T0 + timedelta(seconds=21))
    assert offered_to(cmds) == [(1, "CA-silver")]  # 45 s head start beats 20 s of value
    s, cmds = run(s, e.OfferAccepted("CA-silver", 1), e.AgentJoined("CA-silver", 1), e.CallHungUp("CA-silver"),
                  e.WrapUpFinished(1, "CA-silver"), now=T0 + timedelta(seconds=22))
    assert s.calls["CA-valuable"].priority == timedelta(seconds=20)
    # arrived 15 s after CA-low with a 20 s head start: it goes first
    assert offered_to(cmds)[-1] == (1, "CA-valuable")
