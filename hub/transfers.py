"""Warm and cold transfers, through the routing engine's existing events.

The engine has no transfer event, and one call is held by at most one agent (a unique index). So a transfer
is a new routed row for the same customer: a "transfer row" with its own id (`TR...`, never a carrier
SID), `parent_sid` naming the customer's call, the customer's arrival time (its place in line) and value
tier (its priority). It enters routing with `CallArrived`, preferring the chosen agent if there is one, and
is offered, accepted and joined like any call: the new agent's leg joins the customer's conference.

- Cold: the transferring agent's part ends at once (`CallHungUp` on their call: wrap-up as usual); the
  customer is held with the hold music until the next agent joins, and the agent's leg leaves without
  ending the conference.
- Warm: the transferring agent stays with the customer while the target is offered the call and joins;
  then they complete the transfer (leave, and wrap up) or cancel it.

When the customer hangs up, the open transfer ends with them (`end_with_customer`).
"""
from __future__ import annotations

import logging
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.call_controls import Actor, live_call
from hub.customers import add_entry
from hub.db import lock_routing, transaction
from hub.effects import carry_out, push
from hub.errors import FlowError
from hub.in_call import agent_leg, customer_leg_sid, open_transfer, root_call
from hub.models import Agent, Call, Leg, Queue
from hub.routing_store import StoredDecision, decide_and_store, lifetime_value
from hub.services import Services
from routing import engine

log = logging.getLogger(__name__)

KINDS = ("warm", "cold")


def _transfer_sid() -> str:
    return "TR" + secrets.token_hex(16)


def _target_queue(session: Session, call: Call, queue_name: str | None) -> Queue:
    if queue_name:
        queue = session.scalar(select(Queue).where(Queue.name == queue_name))
        if queue is None:
            raise FlowError(f"there is no queue {queue_name!r}", 400)
        return queue
    if call.queue is None:
        raise FlowError("this call has no queue to transfer within", 400)
    return call.queue


def _target_agent(session: Session, agent_id: int | None, queue: Queue, actor_agent: int | None,
                  kind: str) -> Agent | None:
    if agent_id is None:
        if kind == "warm":
            raise FlowError("a warm transfer goes to one agent: choose who", 400)
        return None
    agent = session.get(Agent, agent_id)
    if agent is None:
        raise FlowError("there is no such agent", 400)
    if agent.id == actor_agent:
        raise FlowError("you cannot transfer a call to yourself", 400)
    if any(agent.skill_levels.get(s, 0) < level for s, level in queue.skill_levels.items()):
        raise FlowError(f"{agent.name} lacks the skills for {queue.name}", 400)
    if kind == "warm" and not (agent.presence == "available" and agent.work == "idle"):
        raise FlowError(f"{agent.name} is not free to take a call now", 409)
    return agent


def transfer(services: Services, actor: Actor, call_sid: str, kind: str, *, agent_id: int | None = None,
             queue_name: str | None = None) -> str:
    """Transfer the call to an agent or a queue, warm or cold. Returns the transfer row's id."""
    if kind not in KINDS:
        raise FlowError("a transfer is warm or cold", 400)
    now = services.clock()
    with transaction(services.sessions) as session:
        call = live_call(session, actor, call_sid)
        if call.campaign_id is not None:
            raise FlowError("campaign calls cannot be transferred", 400)
        root = root_call(session, call)
        if open_transfer(session, root) not in (None, call):
            raise FlowError("a transfer of this call is already under way")
        queue = _target_queue(session, call, queue_name)
        target = _target_agent(session, agent_id, queue, call.agent_id, kind)
        leaving = agent_leg(session, call)
        conference, customer = root.conference_sid, customer_leg_sid(session, root)
        if conference is None or customer is None or leaving is None:
            raise FlowError("the call is still being connected; try again in a moment")
        plan = (conference, customer, leaving.sid, root.sid)
    if kind == "cold":
        # Before anything is decided: the agent's leaving must not end the conference, and the customer hears
        # the hold music meanwhile. Both are harmless to repeat, and nothing is committed if they fail.
        services.telephony.update_participant(conference, leaving.sid, end_conference_on_exit=False)
        services.telephony.update_participant(conference, customer, hold=True,
                                              hold_url=services.telephony.url(f"/webhooks/voice/hold-music?call={root.sid}"))
    decisions: list[StoredDecision] = []
    with transaction(services.sessions) as session:
        lock_routing(session)
        call = live_call(session, actor, call_sid)  # again, under the lock: it may have ended meanwhile
        root = root_call(session, call)
        if kind == "cold":
            root.on_hold = True
            decisions.append(decide_and_store(session, engine.CallHungUp(call.sid), now, services.routing_config))
        row = Call(sid=_transfer_sid(), leg=Leg.CUSTOMER.value, parent_sid=root.sid, direction=root.direction,
                   from_number=root.from_number, to_number=root.to_number, customer_id=root.customer_id,
                   queue_id=queue.id, status=root.status, routing_state="waiting", created_at=root.created_at,
                   tried_agent_ids=[], transfer_kind=kind, transferred_by=call.agent_id)
        session.add(row)
        session.flush()
        tier = root.customer.value_tier if root.customer else None
        preferred = (target.id,) if target else ()
        arrived = engine.CallArrived(row.sid, queue.name, tier, preferred, lifetime_value(session, root.customer_id))
        decisions.append(decide_and_store(session, arrived, now, services.routing_config))
        if root.customer_id is not None:
            sender = session.get(Agent, call.agent_id)
            towards = f"{target.name} in {queue.name}" if target else queue.name
            add_entry(session, root.customer_id, "transfer",
                      f"{kind.capitalize()} transfer to {towards} by {sender.name if sender else 'an agent'}", now,
                      call=call, agent_id=call.agent_id,
                      details={"kind": kind, "queue": queue.name, "to_agent": target.name if target else None})
        new_sid = row.sid
    if kind == "cold":
        services.telephony.hang_up(plan[2])
    for decision in decisions:
        carry_out(services, decision)
    push(services, {actor.id})  # the sender's console shows the transfer under way
    log.info("call %s: %s transfer %s to queue %s", call_sid, kind, new_sid, queue.name)
    return new_sid


def complete_transfer(services: Services, actor: Actor, call_sid: str) -> None:
    """Warm transfer: the new agent has joined, so the transferring agent leaves and wraps up."""
    now = services.clock()
    with transaction(services.sessions) as session:
        call = live_call(session, actor, call_sid)
        root = root_call(session, call)
        pending = open_transfer(session, root)
        if pending is None or pending.sid == call.sid or pending.transfer_kind != "warm":
            raise FlowError("there is no warm transfer to complete")
        if pending.routing_state != "connected":
            raise FlowError("wait until the other agent has joined the call")
        leaving = agent_leg(session, call)
        conference = root.conference_sid
    if leaving is not None and conference is not None:
        services.telephony.update_participant(conference, leaving.sid, end_conference_on_exit=False)
    with transaction(services.sessions) as session:
        lock_routing(session)
        live_call(session, actor, call_sid)
        decision = decide_and_store(session, engine.CallHungUp(call_sid), now, services.routing_config)
    if leaving is not None:
        services.telephony.hang_up(leaving.sid)
    carry_out(services, decision)


def cancel_transfer(services: Services, actor: Actor, call_sid: str) -> None:
    """Warm transfer: call it off; the other agent is released (and their leg leaves, if it joined)."""
    now = services.clock()
    with transaction(services.sessions) as session:
        call = live_call(session, actor, call_sid)
        root = root_call(session, call)
        pending = open_transfer(session, root)
        if pending is None or pending.sid == call.sid or pending.transfer_kind != "warm":
            raise FlowError("there is no warm transfer to cancel")
        other = agent_leg(session, pending)
        conference, pending_sid = root.conference_sid, pending.sid
    if other is not None and conference is not None and pending.routing_state == "connected":
        services.telephony.update_participant(conference, other.sid, end_conference_on_exit=False)
    with transaction(services.sessions) as session:
        lock_routing(session)
        row = session.scalar(select(Call).where(Call.sid == pending_sid))
        row.routing_outcome = "transfer_cancelled"
        row.ended_at = now
        decision = decide_and_store(session, engine.CallHungUp(pending_sid), now, services.routing_config)
    if other is not None:
        services.telephony.hang_up(other.sid)
    carry_out(services, decision)
    push(services, {actor.id})


def resume_after_transfer(services: Services, transfer_sid: str) -> None:
    """The agent of a transfer joined: a customer held for the transfer is taken off hold, and the agent who
    transferred (still on the call in a warm transfer) sees that they may now leave."""
    with transaction(services.sessions) as session:
        row = session.scalar(select(Call).where(Call.sid == transfer_sid))
        if row is None or not row.transfer_kind:
            return
        root = root_call(session, row)
        sender = row.transferred_by
        held = root.on_hold and root.conference_sid is not None
        conference, customer, root_sid = root.conference_sid, customer_leg_sid(session, root), root.sid
    if held and customer is not None:
        answered = services.telephony.update_participant(conference, customer, hold=False)
        with transaction(services.sessions) as session:
            session.scalar(select(Call).where(Call.sid == root_sid)).on_hold = answered.hold
    push(services, {sender} if sender else set())


def end_with_customer(session: Session, root: Call, ended_at: datetime, now: datetime,
                      config: engine.RoutingConfig) -> list[StoredDecision]:
    """The customer's leg ended: end the transfers still routing them, and put each on the timeline."""
    decisions = []
    rows = session.scalars(select(Call).where(Call.parent_sid == root.sid, Call.transfer_kind.is_not(None),
                                              Call.routing_state.in_(("waiting", "offered", "connecting", "connected"))))
    for row in list(rows):
        row.status = root.status
        row.ended_at = ended_at
        started = row.connected_at or row.created_at
        row.duration_s = max(0, int((ended_at - started).total_seconds()))
        decisions.append(decide_and_store(session, engine.CallHungUp(row.sid), now, config))
        if row.customer_id is not None:
            queue = row.queue.name if row.queue else "a queue"
            if row.connected_at is not None:
                who = row.agent.name if row.agent else "an agent"
                summary, outcome = f"Transferred call in {queue}, answered by {who}, {row.duration_s} s", "answered"
            else:
                summary, outcome = f"Transferred call in {queue}: the caller hung up before an agent answered", "abandoned"
            add_entry(session, row.customer_id, "call", summary, now, call=row,
                      agent_id=row.agent_id if row.connected_at else None,
                      details={"outcome": outcome, "queue": queue, "transfer": row.transfer_kind})
    return decisions
