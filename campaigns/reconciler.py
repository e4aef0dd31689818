"""Settle dial intents that a killed worker or a lost answer left in flight, against the carrier.

An intent with no call after a grace period: the carrier is asked for calls to that number since the
intent was written. Found: the call is tied to the intent (its callbacks settle it). Not found: it was
never placed, and the lead goes back to its list. A dialed call with no final status long after its ring
time: its status is read from the carrier and applied as a status callback would be.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from campaigns.dialer import mark_not_placed, attach_call
from campaigns.models import AttemptStatus, Campaign, DialAttempt, Lead
from hub import call_flows
from hub.db import transaction
from hub.services import Services
from hub.telephony import TelephonyError
from routing.states import FINAL_STATUSES

log = logging.getLogger(__name__)

INTENT_GRACE = timedelta(seconds=20)  # longer than any REST request to the carrier may take
DIALED_GRACE = timedelta(minutes=2)  # past the ring time, a dialed call should have a status
ANSWERED_GRACE = timedelta(hours=2)


def reconcile(services: Services) -> dict[str, int]:
    """Settle stuck attempts; return how many were tied to a call, not placed, or ended."""
    now = services.clock()
    counts = {"tied": 0, "not_placed": 0, "ended": 0}
    with transaction(services.sessions) as session:
        stuck = [(a.id, a.created_at, lead.phone, campaign.caller_id) for a, lead, campaign in session.execute(
            select(DialAttempt, Lead, Campaign).join(Lead, DialAttempt.lead_id == Lead.id)
            .join(Campaign, DialAttempt.campaign_id == Campaign.id)
            .where(DialAttempt.status == AttemptStatus.INTENT.value, DialAttempt.created_at < now - INTENT_GRACE))]
        dialed = [(a.id, a.call_sid, a.status) for a in session.scalars(
            select(DialAttempt).where(
                ((DialAttempt.status == AttemptStatus.DIALED.value) & (DialAttempt.created_at < now - DIALED_GRACE))
                | ((DialAttempt.status == AttemptStatus.ANSWERED.value) & (DialAttempt.answered_at < now - ANSWERED_GRACE))))]
    for attempt_id, created_at, phone, caller_id in stuck:
        try:
            calls = services.telephony.find_calls(phone, caller_id, created_at - timedelta(seconds=5))
        except TelephonyError:
            log.warning("reconciler: could not list calls for intent %s; will try again", attempt_id)
            continue
        with transaction(services.sessions) as session:
            attempt = session.get(DialAttempt, attempt_id)
            if attempt.status != AttemptStatus.INTENT.value:
                continue  # a callback settled it meanwhile
            taken = set(session.scalars(select(DialAttempt.call_sid).where(
                DialAttempt.call_sid.in_([c.sid for c in calls]))))
            found = [c for c in calls if c.sid not in taken]
            if found:
                attach_call(session, attempt, found[0].sid, found[0].status, now)
                dialed.append((attempt_id, found[0].sid, AttemptStatus.DIALED.value))
                counts["tied"] += 1
                log.info("reconciler: intent %s was placed as %s", attempt_id, found[0].sid)
            else:
                mark_not_placed(session, attempt, session.get(Lead, attempt.lead_id), "never placed (reconciler)")
                counts["not_placed"] += 1
                log.info("reconciler: intent %s was never placed; its lead is back on the list", attempt_id)
    for attempt_id, sid, _ in dialed:
        if sid is None:
            continue
        try:
            status = services.telephony.fetch_status(sid)
        except TelephonyError:
            continue
        if status in FINAL_STATUSES:
            call_flows.record_status(services, {"CallSid": sid, "CallStatus": status},
                                     idempotency_token=f"reconciler-{sid}-{status}")
            counts["ended"] += 1
    return counts
