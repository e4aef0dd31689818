"""Callbacks booked at an inbound call's wrap-up: a time picked in the customer's time zone, inside the calling
window in every zone the number may be in, owned by the agent ("me") or their queue.

At the due time an RQ job (`route_due_callback`) puts it into routing the way a transfer enters it: a new
routed row (`SC...`, never a carrier SID) for the customer, through the engine's `CallArrived`, preferring the
owner, then `CallbackRequested` so the engine treats it as a callback: when an agent accepts, the hub dials
the agent and the customer (`hub.effects.dial_customer`), and the customer's answered leg joins the agent
(`hub.call_flows.plan_callback_leg`).
"""
from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.call_flows import customer_time_zones
from hub.customers import add_entry
from hub.db import lock_routing, transaction
from hub.effects import carry_out
from hub.errors import FlowError
from hub.models import Call, Leg, ScheduledCallback
from hub.routing_store import StoredDecision, decide_and_store, lifetime_value, queue_rules
from hub.services import Services
from routing import engine
from routing.model import within_calling_hours

log = logging.getLogger(__name__)

OWNERS = ("me", "queue")


def callback_zone(number: str | None) -> str | None:
    """The zone a callback time is picked in: the first candidate zone of the customer's number, if any."""
    zones = customer_time_zones(number)
    return zones[0] if zones else None


def due_time(picked: object, zones: tuple[str, ...], window: tuple[time, time], now: datetime) -> datetime:
    """Turn the wall-clock time the agent picked (in the first zone) into UTC, checked against the window.

    Args:
        picked: "YYYY-MM-DDTHH:MM[:SS]" in `zones[0]` (or with an explicit offset).
        zones: every time zone the customer's number may be in.
        window: the calling window (local start, end), e.g. 08:00-21:00.
        now: the current time (UTC).
    Returns:
        The due time in UTC.
    Raises:
        FlowError: 400 when the zone is unknown, the time unreadable, past, or outside the window anywhere.
    """
    if not zones:
        raise FlowError("the customer's time zone is unknown, so no callback can be booked", 400)
    try:
        local = datetime.fromisoformat(str(picked or ""))
    except ValueError:
        raise FlowError("pick the date and time to call back", 400) from None
    at = local.replace(tzinfo=ZoneInfo(zones[0])) if local.tzinfo is None else local
    at = at.astimezone(UTC)
    if at <= now:
        raise FlowError("pick a callback time in the future", 400)
    if not within_calling_hours(zones, at, window):
        hours = f"{window[0]:%H:%M}-{window[1]:%H:%M}"
        raise FlowError(f"{local:%a %d %b %H:%M} ({zones[0]}) is outside the customer's calling hours "
                        f"({hours} in {', '.join(zones)})", 400)
    return at


def book_callback(session: Session, call: Call, agent_id: int, callback: Mapping[str, object], now: datetime,
                  window: tuple[time, time]) -> ScheduledCallback:
    """Book the customer's callback for the inbound call being wrapped up (the caller commits, then schedules).

    Raises:
        FlowError: 400 for an unknown owner, a call without a queue, a time refused by `due_time`, or a time
            when the queue is closed.
    """
    owner = callback.get("owner", "me")
    if owner not in OWNERS:
        raise FlowError("a callback is owned by you (me) or your queue (queue)", 400)
    if call.queue_id is None:
        raise FlowError("this call has no queue to call back from", 400)
    zones = customer_time_zones(call.from_number)
    due = due_time(callback.get("at"), zones, window, now)
    if not queue_rules(call.queue).is_open(due):  # routing would send it to voicemail, with nobody on the line
        raise FlowError(f"{call.queue.name} is closed at that time: pick a time in its opening hours", 400)
    booked = ScheduledCallback(customer_id=call.customer_id, call_id=call.id, queue_id=call.queue_id,
                               phone=call.from_number, due_at=due, zone=zones[0],
                               owner_agent_id=agent_id if owner == "me" else None, booked_by=agent_id,
                               booked_at=now, status="scheduled")
    session.add(booked)
    session.flush()
    if call.customer_id is not None:
        who = "you" if owner == "me" else "the queue"
        add_entry(session, call.customer_id, "callback",
                  f"Callback booked for {due.astimezone(ZoneInfo(zones[0])):%a %d %b %H:%M} ({zones[0]}), by {who}",
                  now, call=call, agent_id=agent_id, details={"outcome": "booked", "due_at": due.isoformat()})
    return booked


def schedule(services: Services, callback_id: int, due: datetime) -> None:
    """Ask a worker to route the booked callback at its due time."""
    services.jobs.at(due, "hub.scheduled_callbacks.run_due_callback", callback_id,
                     job_id=f"scheduled-callback-{callback_id}")


def route_due_callback(services: Services, callback_id: int) -> str | None:
    """Put a due callback into routing, offered to its owner first. Returns the routed row's id; None when it
    was already routed (a repeated job) or is unknown."""
    now = services.clock()
    decisions: list[StoredDecision] = []
    with transaction(services.sessions) as session:
        lock_routing(session)
        booked = session.get(ScheduledCallback, callback_id)
        if booked is None or booked.status != "scheduled" or booked.queue is None:
            return None
        row = Call(sid="SC" + secrets.token_hex(16), leg=Leg.CUSTOMER.value, direction="inbound",
                   from_number=booked.phone, to_number=booked.queue.phone_number or "",
                   customer_id=booked.customer_id, queue_id=booked.queue_id, status="completed",
                   routing_state="waiting", created_at=now, tried_agent_ids=[])
        session.add(row)
        session.flush()
        customer = row.customer
        preferred = (booked.owner_agent_id,) if booked.owner_agent_id else ()
        decisions.append(decide_and_store(session, engine.CallArrived(
            row.sid, booked.queue.name, customer.value_tier if customer else None, preferred,
            lifetime_value(session, booked.customer_id)), now, services.routing_config))
        decisions.append(decide_and_store(session, engine.CallbackRequested(row.sid, customer_time_zones(booked.phone)),
                                          now, services.routing_config))
        booked.status, booked.routed_sid = "routed", row.sid
        sid = row.sid
    for decision in decisions:
        carry_out(services, decision)
    log.info("scheduled callback %s routed as %s", callback_id, sid)
    return sid


def overdue_callbacks(session: Session, now: datetime, grace) -> list[int]:
    """Booked callbacks whose due time passed `grace` ago and that were never routed: their job was lost (Redis
    keeps nothing on disk) or the process died between the booking's commit and scheduling it."""
    return list(session.scalars(select(ScheduledCallback.id).where(
        ScheduledCallback.status == "scheduled", ScheduledCallback.due_at < now - grace)))


def run_due_callback(callback_id: int) -> str | None:
    """RQ job: route a booked callback that is due."""
    from hub.tasks import current_services

    return route_due_callback(current_services(), callback_id)


def waiting_callbacks(session: Session, customer_id: int) -> list[ScheduledCallback]:
    """The customer's booked callbacks not yet routed, soonest first."""
    return list(session.scalars(select(ScheduledCallback).where(
        ScheduledCallback.customer_id == customer_id, ScheduledCallback.status == "scheduled")
        .order_by(ScheduledCallback.due_at)))
