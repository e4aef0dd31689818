"""RQ jobs: timers that the routing engine asked for. They take ids, open their own session, call a flow."""
from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta

from config.settings import load_settings
from hub.effects import route
from hub.services import Services, build_services
from routing import engine

log = logging.getLogger(__name__)

_services: Services | None = None
_pid: int | None = None


def install(services: Services) -> None:
    """Give this worker process its services (done once by `python -m hub worker`)."""
    global _services, _pid
    _services, _pid = services, os.getpid()


def _current() -> Services:
    global _pid
    if _services is None:
        install(build_services(load_settings(os.environ)))
    elif _pid != os.getpid():
        # RQ forks a work horse per job: never share the parent's database connections across the fork
        _services.engine.dispose(close=False)
        _pid = os.getpid()
    return _services


def current_services() -> Services:
    """This worker process's services (for other domains' jobs)."""
    return _current()


def _decide(event: engine.Event) -> None:
    route(_current(), event)


def expire_offer(call_sid: str, agent_id: int, expires_at: str) -> None:
    """Take an unanswered offer back from the agent and offer the call to the next one."""
    _decide(engine.OfferExpired(call_sid, agent_id, datetime.fromisoformat(expires_at)))


def end_wrap_up(agent_id: int, call_sid: str) -> None:
    """End an agent's wrap-up when its time is up."""
    _decide(engine.WrapUpFinished(agent_id, call_sid))


SWEEP_EVERY = timedelta(seconds=30)


def sweep() -> None:
    """Repair stuck states, then schedule the next sweep (one schedule however many workers run)."""
    from hub.sweeper import sweep as run_sweep

    from campaigns.tasks import ensure_reconcile
    from crm.tasks import ensure_daily

    services = _current()
    try:
        run_sweep(services)
        ensure_reconcile(services)
        ensure_daily(services)  # a chain a killed worker ended heals here, not only at the next worker start
    finally:
        schedule_sweep(services, services.clock() + SWEEP_EVERY)


def schedule_sweep(services: Services, when: datetime) -> None:
    services.jobs.periodic_at(when, "hub.tasks.sweep", job_id="sweeper")


def ensure_sweep(services: Services) -> None:
    """Schedule the sweeper unless it is already scheduled or running (its chain died with a killed worker)."""
    services.jobs.ensure(services.clock() + SWEEP_EVERY, "hub.tasks.sweep", job_id="sweeper")


def log_off_if_gone(agent_id: int) -> None:
    """A console closed a grace period ago: log its agent off unless they came back."""
    from hub.agent_flows import log_off_if_gone as flow

    flow(_current(), agent_id)


def tick(call_sid: str | None = None) -> None:
    """Apply the waiting rules that changed with time: overflow, escalation, preferred-agent windows."""
    _decide(engine.Tick(call_sid))
