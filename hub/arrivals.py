"""Putting incoming calls in line after their TwiML has gone out.

The incoming-call webhook only records the call (routing state "arriving") and answers with the TwiML that
holds the caller; routing it needs the routing lock and the whole routing state, which would put every
caller's first ring behind every other decision. `route_arrivals` then takes every call still arriving and
runs them through the engine as one batch: one lock, one load and one write however many came in meanwhile.
The web process calls it once the answer is sent (webhooks.views), and the sweeper calls it for arrivals a
dead process left behind, so a call is never left out of line.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select

from crm.models import CustomerValue
from hub.db import lock_routing, transaction
from hub.effects import carry_out
from hub.models import Call, Customer, Leg, Queue
from hub.routing_store import StoredDecision, decide_and_store_many
from hub.services import Services
from routing import engine
from routing.states import FINAL_STATUSES

log = logging.getLogger(__name__)

ARRIVING = "arriving"  # recorded by the webhook, not yet seen by the routing engine
BATCH = 500


def _pending(session, older_than: datetime | None):
    query = (
        select(Call.sid, Queue.name, Call.created_at, Call.status, Call.preferred_agent_ids, Customer.value_tier,
               CustomerValue.clv_cents)
        .join(Queue, Call.queue_id == Queue.id)
        .outerjoin(Customer, Call.customer_id == Customer.id)
        .outerjoin(CustomerValue, CustomerValue.customer_id == Call.customer_id)
        .where(Call.routing_state == ARRIVING, Call.leg == Leg.CUSTOMER.value)
        .order_by(Call.created_at, Call.id)
        .limit(BATCH)
    )
    if older_than is not None:
        query = query.where(Call.created_at < older_than)
    return list(session.execute(query))


def _events(rows) -> list[engine.Event]:
    events: list[engine.Event] = []
    for sid, queue, created_at, status, preferred, tier, clv_cents in rows:
        events.append(engine.CallArrived(sid, queue, tier, tuple(preferred or ()),
                                         clv_cents / 100 if clv_cents else None, arrived_at=created_at))
        if status in FINAL_STATUSES:  # the caller hung up before routing saw the call
            events.append(engine.CallHungUp(sid))
    return events


def has_arrivals(services: Services) -> bool:
    with transaction(services.sessions) as session:
        return session.scalar(select(Call.id).where(Call.routing_state == ARRIVING).limit(1)) is not None


def route_arrivals(services: Services, older_than: timedelta | None = None) -> int:
    """Put every arriving call in line (only those older than `older_than`, for the sweeper); return how many."""
    routed = 0
    while has_arrivals(services):
        now = services.clock()
        with transaction(services.sessions) as session:
            lock_routing(session)  # before reading the rows: two processes never route one call twice
            rows = _pending(session, now - older_than if older_than is not None else None)
            if not rows:
                return routed
            stored: StoredDecision = decide_and_store_many(session, _events(rows), now, services.routing_config)
        routed += len(rows)
        carry_out(services, stored)
        if len(rows) < BATCH:
            break
    return routed
