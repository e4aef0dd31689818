"""Load the routing engine's state from the database and write its decisions back.

`decide_and_store` is the only way routing state changes: lock, load, decide, persist, all in the
caller's transaction. The commands it returns are carried out by the caller after the commit.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, lazyload

from campaigns.models import Campaign
from crm.models import CustomerValue
from hub import routing_cache
from hub.db import lock_routing
from hub.models import Agent as AgentRow
from hub.models import AgentSkill
from hub.models import Call as CallRow
from hub.models import Leg
from hub.models import Queue as QueueRow
from hub.models import RoutingTrace
from routing import engine
from routing.model import BusinessHours, Divert, Diversion, EscalationStep, Strategy
from routing.states import CallState, Presence, Work

ACTIVE_CALL_STATES = [s.value for s in CallState if s is not CallState.ENDED]


def lifetime_value(session: Session, customer_id: int | None) -> float | None:
    """The customer's expected lifetime value from the CRM's last recompute (None: never computed), which gives
    the caller a head start in line within their tier (routing.model.RoutingConfig.head_start)."""
    if customer_id is None:
        return None
    cents = session.scalar(select(CustomerValue.clv_cents).where(CustomerValue.customer_id == customer_id))
    return cents / 100 if cents else None


@dataclass(frozen=True)
class StoredDecision:
    commands: list[engine.Command]
    changed_agents: set[int]
    changed_calls: set[str]
    freed_agents: set[int] = field(default_factory=set)  # free for work now, and were not before


def merge_decisions(decisions: list[StoredDecision]) -> StoredDecision | None:
    """Several decisions of one transaction as one, to carry out together (None: there were none)."""
    if len(decisions) <= 1:
        return decisions[0] if decisions else None
    return StoredDecision([c for d in decisions for c in d.commands],
                          set().union(*(d.changed_agents for d in decisions)),
                          set().union(*(d.changed_calls for d in decisions)),
                          set().union(*(d.freed_agents for d in decisions)))


def _diversion(action: str | None, queue: str | None) -> Diversion | None:
    if not action:
        return None
    return Diversion(Divert(action), queue)


def _hours(data: dict | None) -> BusinessHours | None:
    if not data:
        return None
    days = {int(day): (time.fromisoformat(span[0]), time.fromisoformat(span[1]))
            for day, span in (data.get("days") or {}).items()}
    return BusinessHours(data["timezone"], days)


def queue_is_open(q: QueueRow, now: datetime) -> bool:
    """The engine's own test (QueueRules.is_open) on a stored queue, without building all its rules."""
    hours = _hours(q.hours)
    return hours is None or hours.is_open(now)


def queue_rules(q: QueueRow) -> engine.QueueRules:
    """Translate a queue's stored settings into the engine's rules."""
    return engine.QueueRules(
        name=q.name,
        skills=q.skill_levels,
        offer_timeout=timedelta(seconds=q.offer_timeout_s),
        wrap_up=timedelta(seconds=q.wrap_up_s),
        strategy=Strategy(q.strategy),
        preferred_window=timedelta(seconds=q.preferred_window_s),
        escalation=tuple(EscalationStep(timedelta(seconds=step["after_s"]), dict(step["skills"]))
                         for step in (q.escalation or [])),
        max_wait=timedelta(seconds=q.max_wait_s) if q.max_wait_s else None,
        overflow=_diversion(q.overflow_action, q.overflow_queue),
        hours=_hours(q.hours),
        after_hours=_diversion(q.after_hours_action, q.after_hours_queue) or Diversion(Divert.VOICEMAIL),
        service_level_target=timedelta(seconds=q.service_level_s),
    )


def campaign_queue(campaign_id: int) -> str:
    """The routing queue of a campaign's answered calls (its wrap-up applies; nobody waits in it)."""
    return f"campaign:{campaign_id}"


def _campaign_rules(session: Session) -> dict[str, engine.QueueRules]:
    return {
        campaign_queue(cid): engine.QueueRules(name=campaign_queue(cid), skills={},
                                               wrap_up=timedelta(seconds=wrap_up_s))
        for cid, wrap_up_s in session.execute(select(Campaign.id, Campaign.wrap_up_s))
    }


def _calls_today(session: Session, now: datetime) -> dict[int, int]:
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    rows = session.execute(
        select(CallRow.agent_id, func.count(CallRow.id))
        .where(CallRow.leg == Leg.CUSTOMER.value, CallRow.connected_at >= start, CallRow.agent_id.is_not(None))
        .group_by(CallRow.agent_id)
    )
    return {agent_id: n for agent_id, n in rows}


def load_state(session: Session, now: datetime, config: engine.RoutingConfig) -> engine.RoutingState:
    """Read agents, active customer calls and queue rules into the engine's state.

    Plain column selects, no ORM objects: this runs under the routing lock on every event.
    """
    queue_rows = list(session.scalars(select(QueueRow)))
    queues = {q.name: queue_rules(q) for q in queue_rows}
    queues.update(_campaign_rules(session))
    last_chosen = {q.name: q.last_agent_id for q in queue_rows if q.last_agent_id is not None}
    calls_today = _calls_today(session, now)
    skills: dict[int, dict[str, int]] = {}
    for agent_id, skill, level in session.execute(select(AgentSkill.agent_id, AgentSkill.skill, AgentSkill.level)):
        skills.setdefault(agent_id, {})[skill] = level
    agents = {
        row.id: engine.Agent(
            id=row.id,
            presence=Presence(row.presence),
            work=Work(row.work),
            idle_since=row.idle_since,
            skills=skills.get(row.id, {}),
            call_sid=row.call_sid,
            break_reason=row.break_reason,
            pending_presence=Presence(row.pending_presence) if row.pending_presence else None,
            pending_reason=row.pending_reason,
            missed_offers=row.missed_offers,
            calls_today=calls_today.get(row.id, 0),
        )
        for row in session.execute(
            select(AgentRow.id, AgentRow.presence, AgentRow.work, AgentRow.idle_since, AgentRow.call_sid,
                   AgentRow.break_reason, AgentRow.pending_presence, AgentRow.pending_reason,
                   AgentRow.missed_offers).order_by(AgentRow.id))
    }
    calls = {
        row.sid: engine.Call(
            sid=row.sid,
            queue=row.name if row.name is not None else campaign_queue(row.campaign_id),
            arrived_at=row.created_at,
            state=CallState(row.routing_state),
            agent_id=row.agent_id,
            offer_expires_at=row.offer_expires_at,
            tried=frozenset(row.tried_agent_ids or ()),
            priority=timedelta(seconds=row.priority_s),
            preferred=tuple(row.preferred_agent_ids or ()),
            callback=row.callback,
            zones=tuple(row.customer_zones or ()),
        )
        for row in session.execute(
            select(CallRow.sid, QueueRow.name, CallRow.campaign_id, CallRow.created_at, CallRow.routing_state,
                   CallRow.agent_id, CallRow.offer_expires_at, CallRow.tried_agent_ids, CallRow.priority_s,
                   CallRow.preferred_agent_ids, CallRow.callback, CallRow.customer_zones)
            .outerjoin(QueueRow, CallRow.queue_id == QueueRow.id)
            .where(CallRow.leg == Leg.CUSTOMER.value, CallRow.routing_state.in_(ACTIVE_CALL_STATES),
                   (CallRow.queue_id.is_not(None)) | (CallRow.campaign_id.is_not(None))))
    }
    return engine.RoutingState(agents=agents, calls=calls, queues=queues, config=config, last_chosen=last_chosen)


def _state_before(session: Session, now: datetime, config: engine.RoutingConfig) -> engine.RoutingState:
    """The state a round starts from: the last round's when the database says nothing changed since
    (hub.routing_cache), else a full load. Call with the routing lock held."""
    cache = routing_cache.cache_of(session)
    if cache is None:
        return load_state(session, now, config)
    reused = cache.recall(session, routing_cache.routing_version(session), now.date(), config)
    if reused is None:
        return load_state(session, now, config)
    if cache.check:
        routing_cache.check(load_state(session, now, config), reused)
    return reused


def decide_and_store(session: Session, event: engine.Event, now: datetime,
                     config: engine.RoutingConfig) -> StoredDecision:
    """Run one event through the engine inside the caller's transaction and persist the result."""
    return decide_and_store_many(session, [event], now, config)


def decide_and_store_many(session: Session, events: list[engine.Event], now: datetime,
                          config: engine.RoutingConfig) -> StoredDecision:
    """Run events one after the other through the engine, then persist the end state once.

    One lock, one load and one write for the whole batch: this is what lets arrivals keep up with a burst
    (hub.arrivals). An event the engine refuses raises, and nothing of the batch is stored.
    """
    lock_routing(session)
    before = _state_before(session, now, config)
    state, commands = before, []
    for event in events:
        decision = engine.decide(state, event, now)
        state = decision.state
        commands.extend(decision.commands)
    changed_agents = _store_agents(session, before, state, now)
    changed_calls, created = _store_calls(session, before, state, commands)
    _store_round_robin(session, before, state)
    if routing_cache.cache_of(session) is not None:
        routing_cache.remember(session, now.date(), config, routing_cache.as_stored(before, state, created))
    for command in commands:
        if isinstance(command, engine.RecordTrace):
            trace = command.trace
            session.add(RoutingTrace(call_sid=trace.sid, at=trace.at, outcome=trace.outcome, rule=trace.rule[:300],
                                     chosen_agent_id=trace.chosen, data=trace.as_dict()))
    # an agent's console shows their call, so a change to the call is a change for its agent
    for sid in changed_calls:
        for each in (before, state):
            call = each.calls.get(sid)
            if call is not None and call.agent_id is not None:
                changed_agents.add(call.agent_id)
    freed = {aid for aid in changed_agents if aid in state.agents and state.agents[aid].is_free()
             and not (aid in before.agents and before.agents[aid].is_free())}
    return StoredDecision(commands, changed_agents, changed_calls, freed)


def _store_agents(session: Session, before: engine.RoutingState, after: engine.RoutingState, now: datetime) -> set[int]:
    changed = {aid for aid, agent in after.agents.items() if before.agents.get(aid) != agent}
    rows = ({a.id: a for a in session.scalars(select(AgentRow).options(lazyload("*")).where(AgentRow.id.in_(changed)))}
            if changed else {})
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
        row.pending_presence = new.pending_presence.value if new.pending_presence else None
        row.pending_reason = new.pending_reason
        row.missed_offers = new.missed_offers
    session.flush()
    return changed


def _store_round_robin(session: Session, before: engine.RoutingState, after: engine.RoutingState) -> None:
    for name, agent_id in after.last_chosen.items():
        if before.last_chosen.get(name) != agent_id:
            session.query(QueueRow).filter(QueueRow.name == name).update({"last_agent_id": agent_id})


def _store_calls(
    session: Session, before: engine.RoutingState, after: engine.RoutingState, commands: list[engine.Command]
) -> tuple[set[str], dict[str, datetime]]:
    """Write the calls that changed; return their sids, and when each was created (which `load_state` reads
    as its arrival, though a decision may have put it in line as of another moment)."""
    changed = {sid for sid, call in after.calls.items() if before.calls.get(sid) != call}
    wrap_ups = {c.sid: c.until for c in commands if isinstance(c, engine.StartWrapUp)}
    diverted = {c.sid: c.action.value + ("_after_hours" if c.after_hours else "")
                for c in commands if isinstance(c, engine.DivertCall)}
    created: dict[str, datetime] = {}
    if not changed:
        return changed, created
    queue_ids = {name: qid for qid, name in session.execute(select(QueueRow.id, QueueRow.name))}
    for row in session.scalars(select(CallRow).options(lazyload("*")).where(CallRow.sid.in_(changed))):
        new = after.calls[row.sid]
        created[row.sid] = row.created_at
        row.routing_state = new.state.value
        row.agent_id = new.agent_id
        row.offer_expires_at = new.offer_expires_at
        row.tried_agent_ids = sorted(new.tried)
        row.priority_s = int(new.priority.total_seconds())
        row.preferred_agent_ids = list(new.preferred)
        row.callback = new.callback
        row.customer_zones = list(new.zones)
        row.queue_id = queue_ids.get(new.queue, row.queue_id)
        if row.sid in wrap_ups:
            row.wrap_up_until = wrap_ups[row.sid]
        if row.sid in diverted:
            row.routing_outcome = diverted[row.sid]
    session.flush()
    return changed, created
