"""Complaints: opened by an agent at wrap-up, shown on the customer's screen pop until closed with a resolution.

A complaint is separate from the call's disposition (a call can be resolved and still carry one). On a
campaign call it also puts the number on the complaints do-not-call list, so no campaign calls it again.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.dnc import add_complaint
from hub.call_controls import Actor
from hub.customers import add_entry, identify_caller
from hub.db import transaction
from hub.effects import push
from hub.errors import FlowError
from hub.models import Call, Complaint
from hub.services import Services

log = logging.getLogger(__name__)

NO_DETAILS = "Complaint (no details given)"


def customer_number(call: Call) -> str | None:
    """The customer's number on a call: the caller's inbound, the called number outbound."""
    return call.from_number if call.direction == "inbound" else call.to_number


def open_complaint(session: Session, call: Call, agent_id: int | None, summary: str, now: datetime,
                   region: str = "US") -> Complaint:
    """Open a complaint for the call's customer and put it on their timeline; a campaign call's number also
    goes on the complaints do-not-call list.

    Raises:
        FlowError: 400 when the call has no customer and no number to find one by (a withheld number).
    """
    summary = " ".join((summary or "").split())[:300] or NO_DETAILS
    customer_id = call.customer_id
    number = customer_number(call)
    if customer_id is None and call.campaign_id is not None and number:
        customer_id = identify_caller(session, number).id  # a lead not yet on file: the complaint needs a person
    if customer_id is None:
        raise FlowError("the caller's number is withheld, so there is no customer to file a complaint for", 400)
    complaint = Complaint(customer_id=customer_id, call_id=call.id, opened_at=now, opened_by=agent_id,
                          summary=summary)
    session.add(complaint)
    session.flush()
    add_entry(session, customer_id, "complaint", f"Complaint opened: {summary}", now, call=call, agent_id=agent_id,
              details={"complaint_id": complaint.id})
    if call.campaign_id is not None and number:
        add_complaint(session, number, summary[:200], now, region)
    log.info("complaint %s opened on call %s", complaint.id, call.sid)
    return complaint


def close_complaint(services: Services, actor: Actor, complaint_id: int, resolution: str) -> None:
    """Close an open complaint with its resolution: a supervisor may close any, an agent only those they opened.

    Raises:
        FlowError: 400 without a resolution, 404 for an unknown complaint, 403 for someone else's, 409 when
            it is already closed.
    """
    resolution = (resolution or "").strip()[:2000]
    if not resolution:
        raise FlowError("write how the complaint was resolved", 400)
    now = services.clock()
    with transaction(services.sessions) as session:
        complaint = session.get(Complaint, complaint_id)
        if complaint is None:
            raise FlowError("no such complaint", 404)
        if not actor.supervisor and complaint.opened_by != actor.id:
            raise FlowError("only a supervisor or the agent who opened it may close this complaint", 403)
        if complaint.closed_at is not None:
            raise FlowError("that complaint is already closed", 409)
        complaint.closed_at, complaint.closed_by, complaint.resolution = now, actor.id, resolution
        add_entry(session, complaint.customer_id, "complaint", f"Complaint closed: {resolution[:200]}", now,
                  agent_id=actor.id, details={"complaint_id": complaint.id, "resolution": resolution})
        opener = complaint.opened_by
    push(services, {a for a in (actor.id, opener) if a is not None})  # their screen pops drop the complaint


def open_complaints(session: Session, customer_id: int, now: datetime) -> list[dict[str, Any]]:
    """The customer's open complaints for the screen pop, oldest first, each with its age in seconds."""
    rows = session.scalars(select(Complaint).where(Complaint.customer_id == customer_id,
                                                   Complaint.closed_at.is_(None))
                           .order_by(Complaint.opened_at, Complaint.id))
    return [{
        "id": c.id,
        "summary": c.summary,
        "opened_at": c.opened_at.isoformat(),
        "age_s": max(0, int((now - c.opened_at).total_seconds())),
        "opened_by": c.opener.name if c.opener else None,
        "opened_by_id": c.opened_by,
    } for c in rows]
