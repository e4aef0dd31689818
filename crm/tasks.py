"""RQ jobs of the CRM: the daily full recompute (it schedules its next run), and one customer's recompute
after an order arrives.

Jobs take ids, open their own sessions and call a flow. The full run can take minutes on a large base, so it
gets its own timeout instead of the hub's 30 s default.
"""
from __future__ import annotations

import logging
from datetime import UTC, datetime, time, timedelta

from rq import Retry

from crm import recompute
from hub.db import transaction
from hub.errors import FlowError
from hub.services import Services
from hub.tasks import current_services

log = logging.getLogger(__name__)

DAILY_JOB = "crm-daily-recompute"
DAILY_AT = time(2, 30)  # UTC: after midnight almost everywhere the hub's customers live
FULL_TIMEOUT_S = 3600


def next_daily_run(now: datetime) -> datetime:
    """The next DAILY_AT (UTC) strictly after `now`."""
    today = datetime.combine(now.astimezone(UTC).date(), DAILY_AT, tzinfo=UTC)
    return today if today > now else today + timedelta(days=1)


def schedule_daily(services: Services, when: datetime) -> None:
    """Plan the daily run. Its record must not expire while it waits: with a day's result_ttl it expired about
    when it was due, so a scheduler late by a minute (a killed worker's lock) dropped the chain for good."""
    services.jobs.periodic_at(when, "crm.tasks.recompute_all", job_id=DAILY_JOB, job_timeout=FULL_TIMEOUT_S,
                              retry=False)


def ensure_daily(services: Services) -> bool:
    """Schedule the daily recompute unless it is already waiting or running (a killed worker ends its chain)."""
    return services.jobs.ensure(next_daily_run(services.clock()), "crm.tasks.recompute_all", job_id=DAILY_JOB,
                                job_timeout=FULL_TIMEOUT_S, retry=False)


def enqueue_full(services: Services) -> str:
    """Run a full recompute on a worker as soon as one is free (e.g. after an import); return the job id."""
    job = services.jobs.queue.enqueue("crm.tasks.recompute_all", False, job_timeout=FULL_TIMEOUT_S,
                                      result_ttl=86400, failure_ttl=7 * 86400)
    return job.id


def enqueue_customer(services: Services, customer_id: int, event: str) -> None:
    """Recompute one customer on a worker (an order arrived)."""
    services.jobs.queue.enqueue("crm.tasks.recompute_customer", customer_id, event, job_timeout=60, result_ttl=60,
                                failure_ttl=86400, retry=Retry(max=3, interval=[1, 2, 5]))


def recompute_all(reschedule: bool = True) -> dict | None:
    """Recompute every customer; the daily run (reschedule=True) plans the next one whatever happens."""
    services = current_services()
    try:
        return recompute.recompute_all(services.sessions, services.clock()).as_dict()
    except FlowError as exc:
        log.warning("CRM recompute skipped: %s", exc.message)
        return None
    finally:
        if reschedule:
            schedule_daily(services, next_daily_run(services.clock()))


def recompute_customer(customer_id: int, event: str) -> dict | None:
    """Recompute one customer's tier, stage and figures with the last full run's models."""
    services = current_services()
    with transaction(services.sessions) as session:
        return recompute.recompute_customer(session, customer_id, services.clock(), event)
