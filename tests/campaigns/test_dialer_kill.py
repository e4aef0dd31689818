"""Kill -9 the dialer's worker again and again while a campaign runs: no lead is lost, no one is dialed twice.

Real worker processes (each with its RQ work-horse) are killed with SIGKILL at random moments and replaced;
the carrier simulator records every call it was asked to place. At the end every lead is settled, and the
carrier saw exactly one call per lead (every person answers, so nobody needs a second attempt).
"""
from __future__ import annotations

import os
import random
import signal
import time
from datetime import UTC, datetime

import pytest
import requests
from rq import Worker
from sqlalchemy import func, select

from campaigns.control import change_status
from campaigns.models import DialAttempt, Lead
from hub.db import transaction
from hub.jobs import process_stat
from hub.models import Agent
from hub.services import build_services
from simulator.bots import BotAccount, BotSwarm
from tests.campaigns.helpers import answering_stack, numbers, seed_campaign
from tests.conftest import _truncate_postgres, settings_env, wait_until
from tests.stack import PASSWORD

LEADS = 24
AGENTS = 4


def _kill_tree(pid: int) -> None:
    """SIGKILL a worker and its children: the work-horse of the job in progress and the scheduler. The worker is
    stopped first, so that it cannot fork a child between the look for its children and the kill (a child
    forked then would live on, an orphan scheduler or work-horse no kill ever reached)."""
    os.kill(pid, signal.SIGSTOP)
    wait_until(lambda: _process_state(pid) in ("T", "t", "Z", None), seconds=10, interval=0.01,
               message="the worker to stop")
    children = [int(entry) for entry in os.listdir("/proc") if entry.isdigit() and _parent(int(entry)) == pid]
    for target in [pid, *children]:
        try:
            os.kill(target, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _process_state(pid: int) -> str | None:
    stat = process_stat(pid)
    return stat[0] if stat else None


def _parent(pid: int) -> int | None:
    stat = process_stat(pid)
    return int(stat[1]) if stat else None


def _working(services, pid: int) -> bool:
    """The worker has registered with RQ: its start-up (seconds on a loaded machine) is over, it takes jobs."""
    return any(worker.pid == pid for worker in Worker.all(queue=services.jobs.queue))


@pytest.fixture
def stack(processes, postgres_database, redis_client):
    _truncate_postgres(postgres_database)
    stack = answering_stack(processes, postgres_database, talk_s=1.0, dial_cps=4.0)
    yield stack
    stack.stop()


def test_killing_workers_at_random_loses_no_lead_and_dials_no_one_twice(stack):
    rng = random.Random(7)
    logins = [f"bot{i}" for i in range(AGENTS)]
    stack.seed([(login, {}) for login in logins])
    # numbers whose every time zone is well inside the calling window for the next minutes, whatever the hour
    phones = numbers(True, LEADS, datetime.now(UTC))
    campaign_id = seed_campaign(stack.sessions, logins, [dict(phone=phone) for phone in phones], wrap_up_s=5)

    stack.start(workers=1)
    swarm = BotSwarm(stack.url(), [BotAccount(login, PASSWORD) for login in logins], seed=5,
                     accept_delay=(0.1, 0.3), wrap_delay=(0.2, 0.6))
    swarm.start()
    services = build_services(stack.settings)
    try:
        wait_until(lambda: _available(stack) == AGENTS, seconds=30, message="the bots to go available")
        change_status(services, campaign_id, "start")
        worker = stack.processes.children[-1][0]
        kills = 0
        deadline = time.monotonic() + 30
        while (time.monotonic() < deadline or kills < 5) and _settled(stack) < LEADS:
            # a random moment of the worker's work, not of its start-up: under load, a kill timed from the
            # start would only ever hit the interpreter loading modules
            wait_until(lambda: _working(services, worker.pid), seconds=60, message="the worker to start")
            time.sleep(rng.uniform(0.3, 3.0))
            _kill_tree(worker.pid)
            worker.wait()
            kills += 1
            worker = stack.processes.start(f"worker-k{kills}", ["worker"], settings_env(stack.settings))
        assert kills >= 5
        # the last worker stays: the reconciler settles whatever the kills left in flight
        try:
            wait_until(lambda: _settled(stack) == LEADS, seconds=120, interval=1, message="every lead settled")
        except AssertionError:
            raise AssertionError(f"not every lead settled after {kills} kills: {_state(stack)}") from None
    finally:
        swarm.stop()
        services.close()

    placed = requests.get(f"{stack.sim.url}/sim/calls", timeout=10).json()["calls"]
    with transaction(stack.sessions) as session:
        to_numbers = {sid: to for sid, to in session.execute(
            select(DialAttempt.call_sid, Lead.phone).join(Lead, DialAttempt.lead_id == Lead.id)
            .where(DialAttempt.call_sid.is_not(None)))}
        per_lead = dict(session.execute(select(DialAttempt.lead_id, func.count()).where(
            DialAttempt.outcome.is_not(None)).group_by(DialAttempt.lead_id)).all())
        leads = session.scalars(select(Lead)).all()
    to_leads = [c for c in placed if c["direction"] == "outbound-api" and c["role"] in ("person", "machine")]
    assert len(to_leads) == LEADS, f"the carrier placed {len(to_leads)} calls to leads for {LEADS} leads"
    assert sorted(to_numbers.values()) == sorted(phones)  # each number: one attempt tied to one carrier call
    assert all(n == 1 for n in per_lead.values()) and len(per_lead) == LEADS
    assert all(lead.status == "done" or lead.callback_at is not None for lead in leads)


def _available(stack) -> int:
    with transaction(stack.sessions) as session:
        return session.scalar(select(func.count()).select_from(Agent).where(Agent.presence == "available"))


def _settled(stack) -> int:
    """Leads whose call is over and dispositioned: done, or back on the list for a callback the agent booked."""
    with transaction(stack.sessions) as session:
        return session.scalar(select(func.count()).select_from(Lead).where(
            (Lead.status == "done") | ((Lead.status == "ready") & Lead.callback_at.is_not(None))))


def _state(stack) -> str:
    with transaction(stack.sessions) as session:
        leads = session.execute(select(Lead.status, Lead.skip_code, func.count()).group_by(
            Lead.status, Lead.skip_code)).all()
        attempts = session.execute(select(DialAttempt.status, DialAttempt.outcome, func.count()).group_by(
            DialAttempt.status, DialAttempt.outcome)).all()
        agents = session.execute(select(Agent.login, Agent.presence, Agent.work)).all()
    return f"leads {leads}; attempts {attempts}; agents {agents}"
