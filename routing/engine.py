"""The routing engine: a pure core that matches waiting calls to agents.

Events go in with the current state and `now`; a new state and a list of commands come out. The engine
reads no clock, opens no connection and imports nothing from the web, database or telephony layers, so the
same code runs in the hub, in tests without fixtures, and inside a simulator at any speed.

First cut: one offer at a time, to the longest-idle available agent who has the queue's skills; on
timeout, decline or a failed agent leg, the next agent; wrap-up after every connected call.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from routing.states import CallState, Presence, RoutingError, Work, next_call_state, next_work


class OfferNotOpen(RoutingError):
    """An agent answered an offer that is no longer theirs (expired, withdrawn or never made)."""


class UnknownAgent(RoutingError):
    """An event names an agent the engine does not know."""


# ---------------------------------------------------------------- state


@dataclass(frozen=True)
class QueueRules:
    name: str
    skills: Mapping[str, int] = field(default_factory=dict)  # required skill -> minimum level
    offer_timeout: timedelta = timedelta(seconds=15)
    wrap_up: timedelta = timedelta(seconds=60)


@dataclass(frozen=True)
class Agent:
    id: int
    presence: Presence
    work: Work
    idle_since: datetime
    skills: Mapping[str, int] = field(default_factory=dict)
    call_sid: str | None = None
    break_reason: str | None = None

    def is_free(self) -> bool:
        return self.presence is Presence.AVAILABLE and self.work is Work.IDLE

    def qualifies_for(self, rules: QueueRules) -> bool:
        return all(self.skills.get(skill, 0) >= level for skill, level in rules.skills.items())


@dataclass(frozen=True)
class Call:
    sid: str
    queue: str
    arrived_at: datetime
    state: CallState = CallState.WAITING
    agent_id: int | None = None
    offer_expires_at: datetime | None = None
    tried: frozenset[int] = frozenset()


@dataclass(frozen=True)
class RoutingState:
    agents: Mapping[int, Agent]
    calls: Mapping[str, Call]
    queues: Mapping[str, QueueRules]

    def with_agent(self, agent: Agent) -> "RoutingState":
        return replace(self, agents={**self.agents, agent.id: agent})

    def with_call(self, call: Call) -> "RoutingState":
        return replace(self, calls={**self.calls, call.sid: call})


# ---------------------------------------------------------------- events


@dataclass(frozen=True)
class CallArrived:
    sid: str
    queue: str


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


Event = (
    CallArrived | CallHungUp | OfferAccepted | OfferDeclined | OfferExpired | AgentLegFailed | AgentJoined
    | PresenceChanged | WrapUpFinished
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
class StartWrapUp:
    agent_id: int
    sid: str
    until: datetime


Command = SendOffer | WithdrawOffer | DialAgent | StartWrapUp


@dataclass(frozen=True)
class Decision:
    state: RoutingState
    commands: list[Command]


# ---------------------------------------------------------------- the engine


def decide(state: RoutingState, event: Event, now: datetime) -> Decision:
    """Apply one event, then offer waiting calls to free agents.

    Args:
        state: the current agents, active calls and queue rules.
        event: what happened.
        now: the current time (UTC, timezone-aware).

    Returns:
        The new state and the commands the caller must carry out after persisting it.

    Raises:
        OfferNotOpen: an agent accepted or declined an offer that is not (or no longer) theirs.
        UnknownAgent: the event names an agent missing from `state`.
        IllegalTransition: a presence or work change that the state tables forbid.
    """
    commands: list[Command] = []
    handler = _HANDLERS[type(event)]
    state = handler(state, event, now, commands)
    state = _dispatch(state, now, commands)
    return Decision(state, commands)


def _agent(state: RoutingState, agent_id: int) -> Agent:
    try:
        return state.agents[agent_id]
    except KeyError:
        raise UnknownAgent(f"agent {agent_id} is not known to routing") from None


def _call_arrived(state: RoutingState, event: CallArrived, now: datetime, commands: list[Command]) -> RoutingState:
    if event.sid in state.calls:
        return state  # the carrier retried the incoming webhook
    return state.with_call(Call(sid=event.sid, queue=event.queue, arrived_at=now))


def _call_hung_up(state: RoutingState, event: CallHungUp, now: datetime, commands: list[Command]) -> RoutingState:
    call = state.calls.get(event.sid)
    if call is None or call.state is CallState.ENDED:
        return state
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
    state = state.with_agent(replace(agent, work=next_work(agent.work, "accept")))
    commands.append(DialAgent(agent.id, call.sid))
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
    return _return_to_queue(state, call, "expire", now)


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
    becomes_available = event.presence is Presence.AVAILABLE and agent.presence is not Presence.AVAILABLE
    agent = replace(
        agent,
        presence=event.presence,
        break_reason=reason,
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
}


def _release(agent: Agent, trigger: str, now: datetime) -> Agent:
    """Free an agent from their call: back to idle, idle clock restarted."""
    return replace(agent, work=next_work(agent.work, trigger), call_sid=None, idle_since=now)


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


def _dispatch(state: RoutingState, now: datetime, commands: list[Command]) -> RoutingState:
    """Offer each waiting call, oldest first, to the longest-idle free agent with the queue's skills."""
    waiting = sorted(
        (c for c in state.calls.values() if c.state is CallState.WAITING),
        key=lambda c: (c.arrived_at, c.sid),
    )
    for call in waiting:
        rules = state.queues[call.queue]
        qualified = [a for a in state.agents.values() if a.is_free() and a.qualifies_for(rules)]
        if not qualified:
            continue
        untried = [a for a in qualified if a.id not in call.tried]
        tried = call.tried
        if not untried:  # everyone had a turn: go round again
            untried, tried = qualified, frozenset()
        chosen = min(untried, key=lambda a: (a.idle_since, a.id))
        expires_at = now + rules.offer_timeout
        reason = f"longest idle of {len(untried)} free agent(s) with the skills of {rules.name}"
        state = state.with_agent(replace(chosen, work=next_work(chosen.work, "offer"), call_sid=call.sid))
        state = state.with_call(
            replace(
                call,
                state=next_call_state(call.state, "offer"),
                agent_id=chosen.id,
                offer_expires_at=expires_at,
                tried=tried,
            )
        )
        commands.append(SendOffer(chosen.id, call.sid, expires_at, reason))
    return state
