"""Handoff of qualified leads to field sales: the rep of the lead's territory, a signed JSON webhook
delivered once (retried with backoff until accepted), and the outcome field sales report back.

Delivery is at least once on the wire and once in our books: a lease on the row keeps two workers from
sending the same handoff at the same time, a sent handoff is never sent again, and every request carries
`X-Switchboard-Delivery` (the handoff id) so the receiver can drop a repeat caused by a crash between its
2xx and our commit. The body is signed with HMAC-SHA256 over the raw bytes (`X-Switchboard-Signature:
sha256=<hex>`), keyed by SWITCHBOARD_HANDOFF_SECRET.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import datetime, timedelta
from typing import Any

import requests
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from campaigns.models import Campaign, Handoff, HandoffStatus, Lead
from hub.customers import add_entry, find_by_number
from hub.db import transaction
from hub.errors import FlowError
from hub.models import Agent, Customer, CustomerPhone
from hub.services import Services

log = logging.getLogger(__name__)

BACKOFF_S = (10, 60, 300, 1800, 3600, 6 * 3600)  # after attempt 1, 2, ...; then it is marked failed
LEASE = timedelta(seconds=60)  # a delivery in progress owns the row this long
TIMEOUT_S = 10


def territory_for(territories: dict[str, Any], state: str | None, postal_code: str | None) -> tuple[str | None, dict]:
    """The lead's territory: the longest postal-code prefix listed, else its state, else "*" (everyone else)."""
    postal = "".join(ch for ch in (postal_code or "") if ch.isalnum()).upper()
    for length in range(len(postal), 0, -1):
        if postal[:length] in territories:
            return postal[:length], territories[postal[:length]]
    if state and state.upper() in territories:
        return state.upper(), territories[state.upper()]
    if "*" in territories:
        return "*", territories["*"]
    return None, {}


def create_handoff(session: Session, lead: Lead, campaign: Campaign, agent_id: int | None, note: str,
                   now: datetime, default_url: str | None) -> Handoff:
    """Record the handoff of a qualified lead (once: a lead qualified again keeps its first handoff)."""
    existing = session.scalar(select(Handoff).where(Handoff.lead_id == lead.id))
    if existing is not None:
        return existing
    key, rep = territory_for(campaign.territories or {}, lead.state, lead.postal_code)
    agent = session.get(Agent, agent_id) if agent_id else None
    handoff = Handoff(lead_id=lead.id, campaign_id=campaign.id, agent_id=agent_id, territory=key,
                      rep_name=rep.get("rep") or rep.get("name"), rep_email=rep.get("email"),
                      webhook_url=rep.get("webhook_url") or default_url, payload={}, created_at=now,
                      status=HandoffStatus.PENDING.value)
    session.add(handoff)
    session.flush()
    handoff.payload = {
        "handoff_id": handoff.id,
        "campaign": campaign.name,
        "qualified_at": now.isoformat(),
        "territory": key,
        "rep": {"name": handoff.rep_name, "email": handoff.rep_email},
        "lead": {"id": lead.id, "first_name": lead.first_name, "last_name": lead.last_name, "phone": lead.phone,
                 "state": lead.state, "postal_code": lead.postal_code, "custom_fields": lead.custom_fields or {},
                 "customer_id": lead.customer_id},
        "answers": lead.answers or {},
        "note": note or None,
        "agent": agent.name if agent else None,
    }
    if handoff.webhook_url is None:
        handoff.status = HandoffStatus.LISTED.value
    if lead.customer_id is not None:
        add_entry(session, lead.customer_id, "handoff", f"Qualified in {campaign.name}: handed to "
                  f"{handoff.rep_name or 'field sales'}", now, agent_id=agent_id,
                  details={"handoff_id": handoff.id, "territory": key})
    return handoff


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _claim(session: Session, handoff_id: int, now: datetime) -> bool:
    """Take the lease on a due handoff; False if it is not due, already sent, or another worker has it."""
    claimed = session.execute(
        update(Handoff)
        .where(Handoff.id == handoff_id, Handoff.status == HandoffStatus.PENDING.value,
               (Handoff.next_attempt_at.is_(None)) | (Handoff.next_attempt_at <= now))
        .values(next_attempt_at=now + LEASE))
    return claimed.rowcount == 1


def deliver(services: Services, handoff_id: int) -> str:
    """Send one due handoff; return its status afterwards ('busy' when not due or leased elsewhere)."""
    now = services.clock()
    with transaction(services.sessions) as session:
        if not _claim(session, handoff_id, now):
            return "busy"
        handoff = session.get(Handoff, handoff_id)
        url, payload = handoff.webhook_url, handoff.payload
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "X-Switchboard-Delivery": str(handoff_id),
               "User-Agent": "Switchboard-Handoff/1"}
    secret = services.settings.handoff_secret
    if secret:
        headers["X-Switchboard-Signature"] = sign(secret, body)
    error = None
    try:
        response = requests.post(url, data=body, headers=headers, timeout=TIMEOUT_S)
        if not 200 <= response.status_code < 300:
            error = f"HTTP {response.status_code}"
    except requests.RequestException as exc:
        error = type(exc).__name__
    with transaction(services.sessions) as session:
        handoff = session.get(Handoff, handoff_id)
        handoff.attempts += 1
        if error is None:
            handoff.status, handoff.sent_at, handoff.next_attempt_at = HandoffStatus.SENT.value, services.clock(), None
            handoff.last_error = None
        elif handoff.attempts > len(BACKOFF_S):
            handoff.status, handoff.last_error, handoff.next_attempt_at = HandoffStatus.FAILED.value, error, None
            log.warning("handoff %s failed for good after %d attempts: %s", handoff_id, handoff.attempts, error)
        else:
            handoff.last_error = error
            handoff.next_attempt_at = services.clock() + timedelta(seconds=BACKOFF_S[handoff.attempts - 1])
            log.info("handoff %s attempt %d failed (%s); retrying later", handoff_id, handoff.attempts, error)
        return handoff.status


def deliver_due(services: Services, limit: int = 50) -> int:
    """Send every pending handoff whose time has come; return how many were tried."""
    now = services.clock()
    with transaction(services.sessions) as session:
        due = list(session.scalars(select(Handoff.id).where(
            Handoff.status == HandoffStatus.PENDING.value,
            (Handoff.next_attempt_at.is_(None)) | (Handoff.next_attempt_at <= now)).limit(limit)))
    for handoff_id in due:
        deliver(services, handoff_id)
    return len(due)


def record_outcome(session: Session, handoff_id: int, outcome: str, amount: float | None, reason: str | None,
                   now: datetime) -> Handoff:
    """Field sales report back: won (with the amount) or lost (with a reason). A repeat of the same report
    changes nothing; a different one is refused."""
    handoff = session.get(Handoff, handoff_id)
    if handoff is None:
        raise FlowError("no such handoff", 404)
    if outcome not in ("won", "lost"):
        raise FlowError("outcome must be won or lost", 400)
    if outcome == "won" and (not isinstance(amount, (int, float)) or isinstance(amount, bool) or amount < 0):
        raise FlowError("a won handoff needs its amount (a number of at least 0)", 400)
    reason = (reason or "").strip()[:300] or None
    if handoff.outcome is not None:
        if (handoff.outcome, handoff.amount, handoff.outcome_reason) == (outcome, amount if outcome == "won" else None, reason):
            return handoff
        raise FlowError(f"this handoff was already reported {handoff.outcome}", 409)
    handoff.outcome, handoff.outcome_at, handoff.outcome_reason = outcome, now, reason
    handoff.amount = float(amount) if outcome == "won" else None
    lead = session.get(Lead, handoff.lead_id)
    if outcome == "won" and lead.customer_id is None:
        lead.customer_id = _customer_for(session, lead).id  # a sale makes the lead a customer
    if lead.customer_id is not None:
        words = f"won, {handoff.amount:.2f}" if outcome == "won" else f"lost{': ' + reason if reason else ''}"
        add_entry(session, lead.customer_id, "handoff", f"Field sales: {words}", now,
                  details={"handoff_id": handoff.id, "outcome": outcome, "amount": handoff.amount})
    if outcome == "won":
        # the sale is an order (once: its external id is the handoff's), and its customer's tier and stage
        # follow at once, with the last full recompute's models (imported here: the models load scipy)
        from crm.orders import order_from_handoff
        from crm.recompute import recompute_customer

        campaign = session.get(Campaign, handoff.campaign_id)
        order, created = order_from_handoff(session, lead.customer_id, handoff.id, handoff.amount,
                                            campaign.name if campaign else None, now)
        if created:
            recompute_customer(session, lead.customer_id, now, f"field sales won handoff {handoff.id}")
    return handoff


def _customer_for(session: Session, lead: Lead) -> Customer:
    """The customer who owns the lead's number, or a new one named after the lead."""
    customer = find_by_number(session, lead.phone)
    if customer is None:
        name = " ".join(p for p in (lead.first_name, lead.last_name) if p) or "Customer from field sales"
        customer = Customer(name=name[:200], phones=[CustomerPhone(number=lead.phone, label="lead")])
        session.add(customer)
        session.flush()
    return customer


def handoff_dict(handoff: Handoff) -> dict[str, Any]:
    return {
        "id": handoff.id, "lead_id": handoff.lead_id, "campaign_id": handoff.campaign_id,
        "territory": handoff.territory, "rep": {"name": handoff.rep_name, "email": handoff.rep_email},
        "status": handoff.status, "attempts": handoff.attempts, "last_error": handoff.last_error,
        "created_at": handoff.created_at.isoformat(), "sent_at": handoff.sent_at.isoformat() if handoff.sent_at else None,
        "outcome": handoff.outcome, "amount": handoff.amount, "outcome_reason": handoff.outcome_reason,
        "payload": handoff.payload,
    }
