"""The sweeper: finds states that should not last and repairs them, against the database and the carrier.

It routes an incoming call or a hang-up whose web process died before routing it (hub.deferred_routing),
and repairs an offer past its timeout, an agent offered or on a call that is no longer live, a wrap-up past
its end, a call in line whose leg the carrier says is over, and an agent whose consoles stopped sending
heartbeats without closing (their web process died). Each repair goes through the routing
engine like any other event, and is logged.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from hub.deferred_routing import route_deferred
from hub.consoles import expired_consoles, has_console
from hub.db import lock_routing, transaction
from hub.effects import carry_out
from hub.models import Agent, Call, Leg
from hub.routing_store import ACTIVE_CALL_STATES, decide_and_store
from hub.scheduled_callbacks import overdue_callbacks, route_due_callback
from hub.services import Services
from hub.telephony import TelephonyError
from routing import engine
from routing.states import FINAL_STATUSES, Presence

log = logging.getLogger(__name__)

GRACE = timedelta(seconds=5)  # let the regular timer act first
QUIET_LEG = timedelta(seconds=60)  # how long a live call may go without news before we ask the carrier


def sweep(services: Services) -> list[str]:
    """Repair stuck states once; return a line per repair."""
    now = services.clock()
    events: list[tuple[engine.Event, str]] = []
    with transaction(services.sessions) as session:
        for call in session.scalars(select(Call).where(Call.routing_state == "offered",
                                                       Call.offer_expires_at < now - GRACE)):
            events.append((engine.OfferExpired(call.sid, call.agent_id, call.offer_expires_at),
                           f"offer of call {call.sid} to agent {call.agent_id} was past its timeout"))
        live = set(session.scalars(select(Call.sid).where(Call.leg == Leg.CUSTOMER.value,
                                                          Call.routing_state.in_(ACTIVE_CALL_STATES))))
        for agent in session.scalars(select(Agent).where(Agent.work.in_(["offered", "on_call"]))):
            if agent.call_sid not in live:
                events.append((engine.ReleaseAgent(agent.id),
                               f"agent {agent.id} was {agent.work} for call {agent.call_sid}, which is not live"))
        for agent, call in session.execute(
            select(Agent, Call).join(Call, Call.sid == Agent.call_sid)
            .where(Agent.work == "wrap_up", Call.wrap_up_until < now - GRACE)
        ):
            events.append((engine.WrapUpFinished(agent.id, call.sid),
                           f"agent {agent.id}'s wrap-up of call {call.sid} was past its end"))
        gone = list(session.scalars(select(Agent.id).where(Agent.presence != "offline")))
        overdue = overdue_callbacks(session, now, GRACE)
        quiet = list(session.execute(select(Call.sid, Call.parent_sid, Call.transfer_kind).where(
            Call.leg == Leg.CUSTOMER.value, Call.routing_state.in_(ACTIVE_CALL_STATES),
            Call.callback.is_(False),  # a callback's own leg is over by design
            Call.created_at < now - QUIET_LEG)))
    for sid, parent_sid, transfer_kind in quiet:
        try:
            # a transfer row (hub.transfers) has no leg of its own: the customer's call is the one to ask about
            status = services.telephony.fetch_status(parent_sid if transfer_kind and parent_sid else sid)
        except TelephonyError:
            log.warning("sweeper could not ask the carrier about call %s", sid)
            continue
        if status is None or status in FINAL_STATUSES:
            events.append((engine.CallHungUp(sid), f"call {sid} was in line but the carrier says {status or 'unknown'}"))
    for agent_id in gone:
        if expired_consoles(services, agent_id) and not has_console(services, agent_id):
            events.append((engine.PresenceChanged(agent_id, Presence.OFFLINE),
                           f"agent {agent_id}'s consoles stopped answering: logged off"))
    repairs = []
    left = route_deferred(services, older_than=GRACE)  # their web process died before routing them
    if left:
        why = f"{left} incoming call(s) or hang-up(s) recorded but never routed"
        log.warning("sweeper repaired: %s", why)
        repairs.append(why)
    for callback_id in overdue:  # the database, not Redis, is the source of truth for a booked callback
        if route_due_callback(services, callback_id) is not None:
            why = f"booked callback {callback_id} was past its due time and not routed"
            log.warning("sweeper repaired: %s", why)
            repairs.append(why)
    for event, why in events:
        with transaction(services.sessions) as session:
            lock_routing(session)
            if isinstance(event, engine.CallHungUp):
                call = session.scalar(select(Call).where(Call.sid == event.sid))
                call.ended_at = call.ended_at or now
                call.routing_outcome = call.routing_outcome or "repaired"
            stored = decide_and_store(session, event, now, services.routing_config)
        carry_out(services, stored)
        log.warning("sweeper repaired: %s", why)
        repairs.append(why)
    return repairs
