"""Load the routing engine's state from the database and write its decisions back.

`decide_and_store` is the only way routing state changes: lock, load, decide, persist, all in the
caller's transaction. The commands it returns are carried out by the caller after the commit.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.db import lock_routing
from hub.models import Agent as AgentRow
from hub.models import Call as CallRow
from hub.models import Leg
from hub.models import Queue as QueueRow
from routing import engine
from routing.states import CallState, Presence, Work

ACTIVE_CALL_STATES = [s.value for s in CallState if s is not CallState.ENDED]


@dataclass(frozen=True)
class StoredDecision:
    commands: list[engine.Command]
    changed_agents: set[int]
    changed_calls: set[str]


def load_state(session: Session) -> engine.RoutingState:
    """Read agents, active customer calls and queue rules into the engine's state."""
    queues = {
        q.name: engine.QueueRules(
            name=q.name,
            skills=q.skill_levels,
            offer_timeout=timedelta(seconds=q.offer_timeout_s),
            wrap_up=timedelta(seconds=q.wrap_up_s),
        )
        for q in session.scalars(select(QueueRow))
    }
    agents = {
        a.id: engine.Agent(
            id=a.id,
            presence=Presence(a.presence),
            work=Work(a.work),
            idle_since=a.idle_since,
            skills=a.skill_levels,
            call_sid=a.call_sid,
            break_reason=a.break_reason,
        )
        for a in session.scalars(select(AgentRow))
    }
    calls = {
        c.sid: engine.Call(
            sid=c.sid,
            queue=c.queue.name,
            arrived_at=c.created_at,
            state=CallState(c.routing_state),
            agent_id=c.agent_id,
            offer_expires_at=c.offer_expires_at,
            tried=frozenset(c.tried_agent_ids or ()),
        )
        for c in session.scalars(
            select(CallRow).where(
                CallRow.leg == Leg.CUSTOMER.value, CallRow.routing_state.in_(ACTIVE_CALL_STATES)
            )
        )
        if c.queue is not None
    }
    return engine.RoutingState(agents=agents, calls=calls, queues=queues)


def decide_and_store(session: Session, event: engine.Event, now: datetime) -> StoredDecision:
    """Run one event through the engine inside the caller's transaction and persist the result."""
    lock_routing(session)
    before = load_state(session)
    decision = engine.decide(before, event, now)
    changed_agents = _store_agents(session, before, decision.state, now)
    changed_calls = _store_calls(session, before, decision.state, decision.commands)
    # an agent's console shows their call, so a change to the call is a change for its agent
    for sid in changed_calls:
        for state in (before, decision.state):
            call = state.calls.get(sid)
            if call is not None and call.agent_id is not None:
                changed_agents.add(call.agent_id)
    return StoredDecision(decision.commands, changed_agents, changed_calls)


def _store_agents(session: Session, before: engine.RoutingState, after: engine.RoutingState, now: datetime) -> set[int]:
    changed = {aid for aid, agent in after.agents.items() if before.agents.get(aid) != agent}
    rows = {a.id: a for a in session.scalars(select(AgentRow).where(AgentRow.id.in_(changed)))} if changed else {}
    # Release calls first, then take them: the unique index on call_sid must hold after every statement.
    releasing = [rows[aid] for aid in changed if rows[aid].call_sid and rows[aid].call_sid != after.agents[aid].call_sid]
    for row in releasing:
        row.call_sid = None
    if releasing:
        session.flush()
    for aid in changed:
        new, row = after.agents[aid], rows[aid]
        if row.presence != new.presence.value or row.work != new.work.value:
            row.state_since = now
        row.presence = new.presence.value
        row.break_reason = new.break_reason
        row.work = new.work.value
        row.idle_since = new.idle_since
        row.call_sid = new.call_sid
    session.flush()
    return changed


def _store_calls(
    session: Session, before: engine.RoutingState, after: engine.RoutingState, commands: list[engine.Command]
) -> set[str]:
    changed = {sid for sid, call in after.calls.items() if before.calls.get(sid) != call}
    wrap_ups = {c.sid: c.until for c in commands if isinstance(c, engine.StartWrapUp)}
    if not changed:
        return changed
    for row in session.scalars(select(CallRow).where(CallRow.sid.in_(changed))):
        new = after.calls[row.sid]
        row.routing_state = new.state.value
        row.agent_id = new.agent_id
        row.offer_expires_at = new.offer_expires_at
        row.tried_agent_ids = sorted(new.tried)
        if row.sid in wrap_ups:
            row.wrap_up_until = wrap_ups[row.sid]
    session.flush()
    return changed
