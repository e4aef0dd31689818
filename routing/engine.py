"""The routing engine: a pure core that matches waiting calls to agents.

Events go in with the current state and `now`; a new state and a list of commands come out. The engine
reads no clock, opens no connection and imports nothing from the web, database or telephony layers, so the
same code runs in the hub, in tests without fixtures, and inside a simulator at any speed.

Rules: one offer at a time; calls in line by arrival, with a head start for valuable customers; preferred
agents (owner, last agent) first for a while; escalation widens the skills as the wait grows; the queue's
strategy picks among qualified agents; offers time out to the next agent; missed offers in a row put an
agent on a break; business hours and a maximum wait divert calls; every offer keeps a trace.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from routing.blending import outbound_agents
from routing.model import Agent, Call, Divert, Diversion, RoutingState, within_calling_hours
from routing.selection import Trace, choose, explain
from routing.states import CallState, Presence, RoutingError, Work, next_call_state, next_work

# re-exported for callers that build states
from routing.model import (  # noqa: F401
    BusinessHours, EscalationStep, QueueRules, RoutingConfig, Strategy,
)

MISSED_OFFERS_REASON = "missed_offers"


class OfferNotOpen(RoutingError):
    """An agent answered an offer that is no longer theirs (expired, withdrawn or never made)."""


class UnknownAgent(RoutingError):
    """An event names an agent the engine does not know."""


# ---------------------------------------------------------------- events


@dataclass(frozen=True)
class CallArrived:
    sid: str
    queue: str
    priority_tier: str | None = None
    preferred: tuple[int, ...] = ()
    lifetime_value: float | None = None  # the customer's expected lifetime value (CRM), for a head start
    arrived_at: datetime | None = None  # when the caller reached us, if earlier than the decision (default: now)


@dataclass(frozen=True)
class CallHungUp:
    sid: str


@dataclass(frozen=True)
class OfferAccepted:
    sid: str
    agent_id: int


@dataclass(frozen=True)
class OfferDeclined:
    sid: str
    agent_id: int


@dataclass(frozen=True)
class OfferExpired:
    sid: str
    agent_id: int
    expires_at: datetime


@dataclass(frozen=True)
class AgentLegFailed:
    sid: str
    agent_id: int


@dataclass(frozen=True)
class AgentJoined:
    sid: str
    agent_id: int


@dataclass(frozen=True)
class PresenceChanged:
    agent_id: int
    presence: Presence
    reason: str | None = None


@dataclass(frozen=True)
class WrapUpFinished:
    agent_id: int
    sid: str


@dataclass(frozen=True)
class CallbackRequested:
    """The caller pressed the key for a callback: they hang up and keep their place in line."""

    sid: str
    zones: tuple[str, ...] = ()  # the customer's candidate time zones


@dataclass(frozen=True)
class CallbackUnanswered:
    """The customer did not answer the callback leg."""

    sid: str


@dataclass(frozen=True)
class ReleaseAgent:
    """Repair: free an agent who is offered or on a call that routing no longer knows as live."""

    agent_id: int


@dataclass(frozen=True)
class Tick:
    """Time passed: apply waiting rules that depend on it (overflow, escalation, preferred windows).

    With `sid`, only that call's rules are checked (its timer); without, every call's.
    """

    sid: str | None = None


@dataclass(frozen=True)
class OutboundAnswered:
    """A person answered a campaign's call: connect a free campaign agent at once, or abandon the call.

    There is no offer: the dialer placed the call for the campaign's agents, and a live person must reach
    one within 2 s. Inbound callers who are waiting keep their claim on agents who could take them.
    """

    sid: str
    queue: str  # the campaign's routing queue ("campaign:<id>"), whose wrap-up applies
    members: frozenset[int]
    preferred: tuple[int, ...] = ()  # e.g. the agent who owns the lead's callback, if free


@dataclass(frozen=True)
class OutboundMachine:
    """The campaign's call reached an answering machine: free its agent, if one was connected."""

    sid: str


Event = (
    CallArrived | CallHungUp | OfferAccepted | OfferDeclined | OfferExpired | AgentLegFailed | AgentJoined
    | PresenceChanged | WrapUpFinished | CallbackRequested | CallbackUnanswered | ReleaseAgent | Tick
    | OutboundAnswered | OutboundMachine
)

# ---------------------------------------------------------------- commands


@dataclass(frozen=True)
class SendOffer:
    agent_id: int
    sid: str
    expires_at: datetime
    reason: str


@dataclass(frozen=True)
class WithdrawOffer:
    agent_id: int
    sid: str
    reason: str


@dataclass(frozen=True)
class DialAgent:
    agent_id: int
    sid: str


@dataclass(frozen=True)
class DialCustomer:
    """Call the customer back into the call's conference, where their agent is joining."""

    sid: str


@dataclass(frozen=True)
class EndAgentLeg:
    """Hang up the agent's leg of a call that will not happen (the customer did not answer)."""

    agent_id: int
    sid: str


@dataclass(frozen=True)
class StartWrapUp:
    agent_id: int
    sid: str
    until: datetime


@dataclass(frozen=True)
class DivertCall:
    """Take a waiting caller out of line to voicemail."""

    sid: str
    action: Divert
    reason: str
    after_hours: bool = False  # the queue was closed (not a caller who waited too long)


@dataclass(frozen=True)
class ScheduleTick:
    """Wake the engine at `at`: a waiting call's rules change then."""

    sid: str
    at: datetime


@dataclass(frozen=True)
class RecordTrace:
    trace: Trace


@dataclass(frozen=True)
class AbandonOutbound:
    """No campaign agent was free for a person who answered: play the recorded message and book an abandon."""

    sid: str
    reason: str


Command = (
    SendOffer | WithdrawOffer | DialAgent | DialCustomer | EndAgentLeg | StartWrapUp | DivertCall | ScheduleTick
    | RecordTrace | AbandonOutbound
)


@dataclass(frozen=True)
class Decision:
    state: RoutingState
    commands: list[Command]


# ---------------------------------------------------------------- the engine


def decide(state: RoutingState, event: Event, now: datetime) -> Decision:
    """Apply one event, then offer waiting calls to free agents.

    Args:
        state: the current agents, active calls, queue rules and configuration.
        event: what happened.
        now: the current time (UTC, timezone-aware).

    Returns:
        The new state and the commands the caller must carry out after persisting it.

    Raises:
        OfferNotOpen: an agent accepted or declined an offer that is not (or no longer) theirs.
        UnknownAgent: the event names an agent missing from `state`.
        IllegalTransition: a change that the state tables forbid.
    """
    commands: list[Command] = []
    state = _HANDLERS[type(event)](state, event, now, commands)
    state = _dispatch(state, now, commands)
    if isinstance(event, CallArrived):
        call = state.calls.get(event.sid)
        if call is not None and call.state is CallState.WAITING:
            commands.append(RecordTrace(explain(state, call, now, "waiting", _waiting_rule(state, call, now))))
    return Decision(state, commands)


def _waiting_rule(state: RoutingState, call: Call, now: datetime) -> str:
    free = [a for a in state.agents.values() if a.is_free()]
    return choose(state, call, free, now).rule if free else "every agent is busy, away or offline"


def _agent(state: RoutingState, agent_id: int) -> Agent:
    try:
        return state.agents[agent_id]
    except KeyError:
        raise UnknownAgent(f"agent {agent_id} is not known to routing") from None


def _call_arrived(state: RoutingState, event: CallArrived, now: datetime, commands: list[Command]) -> RoutingState:
    existing = state.calls.get(event.sid)
    if existing is not None and (existing.state is not CallState.WAITING or existing.tried):
        return state  # the carrier retried the incoming webhook after routing had started
    call = existing or Call(sid=event.sid, queue=event.queue, arrived_at=event.arrived_at or now)
    priority = state.config.head_start(event.priority_tier, event.lifetime_value)
    call = replace(call, priority=priority, preferred=event.preferred)
    state = state.with_call(call)
    rules = state.queues[call.queue]
    if not rules.is_open(now):
        return _divert(state, call, rules.after_hours, f"{rules.name} is closed", now, commands, after_hours=True)
    for at in _rule_changes(state, call):
        commands.append(ScheduleTick(call.sid, at))
    return state


def _rule_changes(state: RoutingState, call: Call) -> list[datetime]:
    """The moments a waiting call's routing rules change: preferred window end, escalations, max wait."""
    rules = state.queues[call.queue]
    moments = [call.arrived_at + step.after for step in rules.escalation]
    if call.preferred:
        moments.append(call.arrived_at + rules.preferred_window)
    if rules.max_wait is not None:
        moments.append(call.arrived_at + rules.max_wait)
    return sorted(set(moments))


def _divert(state: RoutingState, call: Call, diversion: Diversion, why: str, now: datetime,
            commands: list[Command], after_hours: bool = False) -> RoutingState:
    target = state.queues.get(diversion.queue or "")
    if diversion.action is Divert.QUEUE and target is not None and target.is_open(now) and target.name != call.queue:
        moved = replace(call, queue=target.name, tried=frozenset())
        commands.append(RecordTrace(explain(state, moved, now, "diverted", f"{why}: moved to {target.name}")))
        state = state.with_call(moved)
        for at in _rule_changes(state, moved):
            if at > now:
                commands.append(ScheduleTick(moved.sid, at))
        return state
    if diversion.action is Divert.CALLBACK:
        commands.append(RecordTrace(explain(state, call, now, "diverted", f"{why}: offered a callback")))
        commands.append(DivertCall(call.sid, Divert.CALLBACK, why, after_hours))
        return state
    commands.append(RecordTrace(explain(state, call, now, "diverted", f"{why}: to voicemail")))
    commands.append(DivertCall(call.sid, Divert.VOICEMAIL, why, after_hours))
    return state.with_call(replace(call, state=next_call_state(call.state, "hang_up")))


def _call_hung_up(state: RoutingState, event: CallHungUp, now: datetime, commands: list[Command]) -> RoutingState:
    call = state.calls.get(event.sid)
    if call is None or call.state is CallState.ENDED:
        return state
    if call.callback and call.state in (CallState.WAITING, CallState.OFFERED):
        return state  # the caller hung up to be called back: they keep their place
    if call.agent_id is not None:
        agent = _agent(state, call.agent_id)
        if call.state is CallState.CONNECTED:
            rules = state.queues[call.queue]
            until = now + rules.wrap_up
            state = state.with_agent(replace(agent, work=next_work(agent.work, "end")))
            commands.append(StartWrapUp(agent.id, call.sid, until))
        else:
            state = state.with_agent(_release(agent, "withdraw", now))
            commands.append(WithdrawOffer(agent.id, call.sid, "caller hung up"))
    talked = call.state is CallState.CONNECTED
    ended = replace(
        call,
        state=next_call_state(call.state, "hang_up"),
        offer_expires_at=None,
        agent_id=call.agent_id if talked else None,
    )
    return state.with_call(ended)


def _open_offer(state: RoutingState, sid: str, agent_id: int, now: datetime) -> Call:
    call = state.calls.get(sid)
    if call is None or call.state is not CallState.OFFERED or call.agent_id != agent_id:
        raise OfferNotOpen(f"call {sid} is not offered to agent {agent_id}")
    if call.offer_expires_at is not None and now >= call.offer_expires_at:
        raise OfferNotOpen(f"the offer of call {sid} expired")
    return call


def _offer_accepted(state: RoutingState, event: OfferAccepted, now: datetime, commands: list[Command]) -> RoutingState:
    call = _open_offer(state, event.sid, event.agent_id, now)
    agent = _agent(state, event.agent_id)
    agent = replace(agent, work=next_work(agent.work, "accept"), missed_offers=0, calls_today=agent.calls_today + 1)
    state = state.with_agent(agent)
    commands.append(DialAgent(agent.id, call.sid))
    if call.callback:
        commands.append(DialCustomer(call.sid))
    return state.with_call(replace(call, state=next_call_state(call.state, "accept"), offer_expires_at=None))


def _offer_declined(state: RoutingState, event: OfferDeclined, now: datetime, commands: list[Command]) -> RoutingState:
    call = _open_offer(state, event.sid, event.agent_id, now)
    return _return_to_queue(state, call, "decline", now)


def _offer_expired(state: RoutingState, event: OfferExpired, now: datetime, commands: list[Command]) -> RoutingState:
    call = state.calls.get(event.sid)
    if (
        call is None
        or call.state is not CallState.OFFERED
        or call.agent_id != event.agent_id
        or call.offer_expires_at != event.expires_at
        or now < event.expires_at
    ):
        return state  # a stale timer: that offer was already answered or replaced
    commands.append(WithdrawOffer(event.agent_id, call.sid, "offer timed out"))
    state = _return_to_queue(state, call, "expire", now)
    agent = state.agents[event.agent_id]
    missed = agent.missed_offers + 1
    if missed >= state.config.max_missed_offers and agent.presence is Presence.AVAILABLE:
        return state.with_agent(replace(agent, presence=Presence.BREAK, break_reason=MISSED_OFFERS_REASON,
                                        missed_offers=0))
    return state.with_agent(replace(agent, missed_offers=missed))


def _agent_leg_failed(state: RoutingState, event: AgentLegFailed, now: datetime, commands: list[Command]) -> RoutingState:
    call = state.calls.get(event.sid)
    if call is None or call.state is not CallState.CONNECTING or call.agent_id != event.agent_id:
        return state
    return _return_to_queue(state, call, "leg_failed", now)


def _agent_joined(state: RoutingState, event: AgentJoined, now: datetime, commands: list[Command]) -> RoutingState:
    call = state.calls.get(event.sid)
    if call is None or call.state is not CallState.CONNECTING or call.agent_id != event.agent_id:
        return state
    return state.with_call(replace(call, state=next_call_state(call.state, "connect")))


def _presence_changed(state: RoutingState, event: PresenceChanged, now: datetime, commands: list[Command]) -> RoutingState:
    agent = _agent(state, event.agent_id)
    reason = event.reason if event.presence is Presence.BREAK else None
    if agent.work in (Work.ON_CALL, Work.WRAP_UP):
        # a break or log-off chosen during a call starts when the call's work is done
        pending = None if event.presence is Presence.AVAILABLE else event.presence
        return state.with_agent(replace(agent, pending_presence=pending, pending_reason=reason if pending else None))
    becomes_available = event.presence is Presence.AVAILABLE and agent.presence is not Presence.AVAILABLE
    agent = replace(
        agent,
        presence=event.presence,
        break_reason=reason,
        pending_presence=None,
        pending_reason=None,
        missed_offers=0 if becomes_available else agent.missed_offers,
        idle_since=now if becomes_available and agent.work is Work.IDLE else agent.idle_since,
    )
    state = state.with_agent(agent)
    if agent.work is Work.OFFERED and event.presence is not Presence.AVAILABLE and agent.call_sid:
        call = state.calls[agent.call_sid]
        commands.append(WithdrawOffer(agent.id, call.sid, f"agent went {event.presence.value}"))
        state = _return_to_queue(state, call, "withdraw", now)
    return state


def _wrap_up_finished(state: RoutingState, event: WrapUpFinished, now: datetime, commands: list[Command]) -> RoutingState:
    agent = _agent(state, event.agent_id)
    if agent.work is not Work.WRAP_UP or agent.call_sid != event.sid:
        return state  # the wrap-up already ended (early finish, then the timer)
    return state.with_agent(_release(agent, "finish", now))


def _callback_requested(state: RoutingState, event: CallbackRequested, now: datetime,
                        commands: list[Command]) -> RoutingState:
    call = state.calls.get(event.sid)
    if call is None or call.state not in (CallState.WAITING, CallState.OFFERED) or call.callback:
        return state
    call = replace(call, callback=True, zones=event.zones)
    commands.append(RecordTrace(explain(state, call, now, "waiting", "caller chose a callback and keeps their place")))
    commands.append(ScheduleTick(call.sid, _next_quarter_hour(now)))
    return state.with_call(call)


def _callback_unanswered(state: RoutingState, event: CallbackUnanswered, now: datetime,
                         commands: list[Command]) -> RoutingState:
    call = state.calls.get(event.sid)
    if call is None or not call.callback or call.state not in (CallState.CONNECTING, CallState.CONNECTED):
        return state
    agent = _agent(state, call.agent_id)
    commands.append(EndAgentLeg(agent.id, call.sid))
    commands.append(RecordTrace(explain(state, call, now, "ended", "the customer did not answer the callback")))
    state = state.with_agent(_release(agent, "withdraw", now))
    return state.with_call(replace(call, state=next_call_state(call.state, "hang_up"), agent_id=None))


def _next_quarter_hour(now: datetime) -> datetime:
    start = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
    return start + timedelta(minutes=15)


def _release_agent(state: RoutingState, event: ReleaseAgent, now: datetime, commands: list[Command]) -> RoutingState:
    agent = _agent(state, event.agent_id)
    call = state.calls.get(agent.call_sid or "")
    holds_live_call = call is not None and call.agent_id == agent.id and call.state is not CallState.ENDED
    if agent.work not in (Work.OFFERED, Work.ON_CALL) or holds_live_call:
        return state
    return state.with_agent(_release(agent, "withdraw", now))


def _outbound_answered(state: RoutingState, event: OutboundAnswered, now: datetime,
                       commands: list[Command]) -> RoutingState:
    if event.sid in state.calls:
        return state  # the carrier repeated the answer webhook
    usable = outbound_agents(state, event.members, now)
    preferred = [aid for aid in event.preferred if aid in usable]
    call = Call(sid=event.sid, queue=event.queue, arrived_at=now, state=CallState.CONNECTING)
    if not usable:
        commands.append(AbandonOutbound(event.sid, "no campaign agent was free"))
        return state
    agent = state.agents[(preferred or usable)[0]]
    rule = "the lead's own agent" if preferred else "longest idle campaign agent"
    agent = replace(agent, work=next_work(agent.work, "connect_outbound"), call_sid=call.sid, missed_offers=0,
                    calls_today=agent.calls_today + 1)
    state = state.with_agent(agent).with_call(replace(call, agent_id=agent.id))
    commands.append(RecordTrace(explain(state, state.calls[call.sid], now, "connected", rule, chosen=agent.id)))
    commands.append(DialAgent(agent.id, call.sid))
    return state


def _outbound_machine(state: RoutingState, event: OutboundMachine, now: datetime,
                      commands: list[Command]) -> RoutingState:
    call = state.calls.get(event.sid)
    if call is None or call.state not in (CallState.CONNECTING, CallState.CONNECTED) or call.agent_id is None:
        return state
    agent = _agent(state, call.agent_id)
    commands.append(EndAgentLeg(agent.id, call.sid))
    state = state.with_agent(_release(agent, "withdraw", now))
    return state.with_call(replace(call, state=next_call_state(call.state, "hang_up"), agent_id=None))


def _tick(state: RoutingState, event: Tick, now: datetime, commands: list[Command]) -> RoutingState:
    if event.sid is not None:
        calls = [state.calls[event.sid]] if event.sid in state.calls else []
    else:
        calls = list(state.calls.values())
    for call in calls:
        rules = state.queues[call.queue]
        if (call.state is CallState.WAITING and rules.max_wait is not None
                and now - call.arrived_at >= rules.max_wait and rules.overflow is not None):
            waited = int((now - call.arrived_at).total_seconds())
            state = _divert(state, call, rules.overflow, f"waited {waited} s in {rules.name}", now, commands)
    return state


_HANDLERS = {
    CallArrived: _call_arrived,
    CallHungUp: _call_hung_up,
    OfferAccepted: _offer_accepted,
    OfferDeclined: _offer_declined,
    OfferExpired: _offer_expired,
    AgentLegFailed: _agent_leg_failed,
    AgentJoined: _agent_joined,
    PresenceChanged: _presence_changed,
    WrapUpFinished: _wrap_up_finished,
    CallbackRequested: _callback_requested,
    CallbackUnanswered: _callback_unanswered,
    ReleaseAgent: _release_agent,
    Tick: _tick,
    OutboundAnswered: _outbound_answered,
    OutboundMachine: _outbound_machine,
}


def _release(agent: Agent, trigger: str, now: datetime) -> Agent:
    """Free an agent from their call: back to idle, idle clock restarted, a pending break applied."""
    agent = replace(agent, work=next_work(agent.work, trigger), call_sid=None, idle_since=now)
    if agent.pending_presence is not None:
        agent = replace(agent, presence=agent.pending_presence, break_reason=agent.pending_reason,
                        pending_presence=None, pending_reason=None)
    return agent


def _return_to_queue(state: RoutingState, call: Call, trigger: str, now: datetime) -> RoutingState:
    """Put a call back in line after its agent declined, timed out or could not be reached."""
    assert call.agent_id is not None
    agent = _agent(state, call.agent_id)
    state = state.with_agent(_release(agent, trigger, now))
    waiting = replace(
        call,
        state=next_call_state(call.state, trigger),
        agent_id=None,
        offer_expires_at=None,
        tried=call.tried | {agent.id},
    )
    return state.with_call(waiting)


def _may_call_back(state: RoutingState, call: Call, now: datetime) -> bool:
    """A callback is placed only while its queue is open and inside the customer's calling hours."""
    return state.queues[call.queue].is_open(now) and within_calling_hours(call.zones, now, state.config.calling_window)


def _dispatch(state: RoutingState, now: datetime, commands: list[Command]) -> RoutingState:
    """Offer waiting calls, best place in line first, to free agents chosen by each queue's rules."""
    free = {a.id: a for a in state.agents.values() if a.is_free()}
    if not free:
        return state
    # only the lines a free agent could serve (now or after escalation) need sorting
    servable = {name for name, rules in state.queues.items() if any(rules.could_use(a) for a in free.values())}
    if not servable:
        return state
    waiting = heapq.merge(*(state.lines.get(name, ()) for name in servable))  # already in line order
    line_calls = state.calls
    for _, sid in waiting:
        call = line_calls[sid]
        if call.callback and not _may_call_back(state, call, now):
            commands.append(ScheduleTick(call.sid, _next_quarter_hour(now)))
            continue
        choice = choose(state, call, list(free.values()), now)
        if choice.agent is None:
            continue
        chosen = choice.agent
        rules = state.queues[call.queue]
        expires_at = now + rules.offer_timeout
        state = state.with_agent(replace(chosen, work=next_work(chosen.work, "offer"), call_sid=call.sid))
        offered = replace(
            call,
            state=next_call_state(call.state, "offer"),
            agent_id=chosen.id,
            offer_expires_at=expires_at,
            tried=frozenset() if choice.reset_tried else call.tried,
        )
        state = state.with_call(offered)
        state = replace(state, last_chosen={**state.last_chosen, rules.name: chosen.id})
        commands.append(SendOffer(chosen.id, call.sid, expires_at, choice.rule))
        commands.append(RecordTrace(explain(state, call, now, "offered", choice.rule, chosen.id)))
        del free[chosen.id]
        if not free:
            break
    return state
