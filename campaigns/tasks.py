"""RQ jobs of the dialer: the pacing loop of each running campaign, and the reconciler.

Jobs take ids, open their own session through the flows, and reschedule themselves; the database (not
Redis) holds every dial intent, so a lost or repeated job never loses a lead or dials one twice.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select

from campaigns import dialer, handoff, preview, reconciler
from campaigns.pace_requests import soon_key
from campaigns.models import Campaign, CampaignStatus
from hub.db import transaction
from hub.effects import push
from hub.services import Services
from hub.tasks import current_services, ensure_sweep

log = logging.getLogger(__name__)

PACE_EVERY = timedelta(seconds=1)
RECONCILE_EVERY = timedelta(seconds=15)
RECONCILER_JOB = "dial-reconciler"


def schedule_pace(services: Services, campaign_id: int, when: datetime) -> None:
    """Plan the campaign's next pacing step at `when` (one job per campaign and second, however many ask)."""
    second = int(when.timestamp()) + (1 if when.microsecond else 0)
    services.jobs.at(when, "campaigns.tasks.pace", campaign_id, job_id=f"pace-{campaign_id}-{second}")


def _alive_key(campaign_id: int) -> str:
    return f"switchboard:pacing-alive:{campaign_id}"


def pace(campaign_id: int) -> None:
    """One pacing step: write the intents, place the calls, then plan the next step while the campaign runs."""
    services = current_services()
    services.redis.set(_alive_key(campaign_id), "1", ex=10)
    services.redis.delete(soon_key(campaign_id))  # an event from now on asks for a step after this one
    result = dialer.pace(services, campaign_id)
    try:
        for attempt_id in result.intents:
            dialer.place(services, attempt_id)
        if result.preview:
            push(services, preview.step(services, campaign_id))
    finally:
        if result.running:
            schedule_pace(services, campaign_id, services.clock() + PACE_EVERY)


def send_handoff(handoff_id: int) -> None:
    """Deliver one handoff now; a failure is retried by the reconciler's round at its backoff time."""
    handoff.deliver(current_services(), handoff_id)


def schedule_reconcile(services: Services, when: datetime) -> None:
    services.jobs.periodic_at(when, "campaigns.tasks.reconcile", job_id=RECONCILER_JOB)


def ensure_reconcile(services: Services) -> None:
    """Schedule the reconciler unless it is already scheduled or running (its chain died with a killed worker)."""
    services.jobs.ensure(services.clock() + RECONCILE_EVERY, "campaigns.tasks.reconcile", job_id=RECONCILER_JOB)


def reconcile() -> None:
    """Settle dial intents stuck in flight, restart lost pacing loops, deliver due handoffs; then schedule
    the next round."""
    services = current_services()
    try:
        reconciler.reconcile(services)
        restart_lost_loops(services)
        handoff.deliver_due(services)
        ensure_sweep(services)
    finally:
        schedule_reconcile(services, services.clock() + RECONCILE_EVERY)


def restart_lost_loops(services: Services) -> list[int]:
    """Start the pacing loop again for a running campaign whose loop died (its Redis job was lost)."""
    with transaction(services.sessions) as session:
        running = list(session.scalars(select(Campaign.id).where(Campaign.status == CampaignStatus.RUNNING.value)))
    restarted = [cid for cid in running if not services.redis.exists(_alive_key(cid))]
    for cid in restarted:
        log.warning("pacing loop of campaign %s was not running: restarted", cid)
        schedule_pace(services, cid, services.clock())
    return restarted
