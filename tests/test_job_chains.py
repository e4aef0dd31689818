"""A worker killed with -9 must not end the hub's periodic jobs (the sweeper, the dial reconciler): their next
runs wait in records that never expire, and a new worker frees the dead scheduler's lock at once."""
from __future__ import annotations

import os
import socket
import subprocess

from rq.scheduler import SCHEDULER_KEY_TEMPLATE, SCHEDULER_LOCKING_KEY_TEMPLATE

from campaigns.tasks import RECONCILER_JOB
from hub.jobs import break_dead_scheduler_lock, process_stat
from hub.services import build_services
from tests.conftest import make_settings, settings_env, wait_until

PERIODIC = (RECONCILER_JOB, "sweeper")


def test_the_next_run_of_a_periodic_job_never_expires_while_it_waits_for_the_scheduler(processes, sqlite_url,
                                                                                        redis_client):
    # RQ drops a scheduled run whose record has expired. A killed worker's scheduler keeps its lock for a
    # minute when it cannot be freed at once: a next run whose record expired meanwhile ended its chain for
    # good (the reconciler's: dial intents a killed worker left were never settled)
    settings = make_settings(sqlite_url)
    services = build_services(settings)
    queue = services.jobs.queue
    try:
        worker = processes.start("worker", ["worker"], settings_env(settings))
        wait_until(lambda: all(_ran(queue, job_id) for job_id in PERIODIC), seconds=60,
                   message="a run of the sweeper and of the reconciler")
        worker.terminate()  # a warm shutdown: a run in progress ends and plans the next first
        worker.wait(timeout=30)
        for job_id in PERIODIC:
            planned = job_id in queue.scheduled_job_registry.get_job_ids() or job_id in queue.job_ids
            assert planned, f"{job_id}: no next run planned"
            assert services.redis.ttl(queue.job_class.key_for(job_id)) == -1, f"{job_id}: its next run expires"
    finally:
        services.close()


def _ran(queue, job_id: str) -> bool:
    job = queue.fetch_job(job_id)
    return job is not None and job.latest_result() is not None


def test_a_new_worker_frees_the_lock_of_a_scheduler_killed_but_not_yet_reaped(redis_client):
    # a scheduler killed with its worker is a zombie until init reaps it, seconds later; it no longer runs
    lock = SCHEDULER_LOCKING_KEY_TEMPLATE % "dialer"
    dead = subprocess.Popen(["true"])  # exits at once and stays a zombie until it is waited for
    try:
        wait_until(lambda: _process_state(dead.pid) == "Z", seconds=10, message="a zombie")
        _hold_lock(redis_client, lock, "killed", dead.pid)
        assert break_dead_scheduler_lock(redis_client, "dialer")
        assert redis_client.get(lock) is None
    finally:
        dead.wait()
    # a scheduler that runs keeps its lock
    _hold_lock(redis_client, lock, "running", os.getpid())
    assert not break_dead_scheduler_lock(redis_client, "dialer")
    assert redis_client.get(lock) == b"running"


def _hold_lock(redis, lock: str, name: str, pid: int) -> None:
    """The lock and the record RQ's scheduler `name` writes, as process `pid` of this host."""
    redis.hset(SCHEDULER_KEY_TEMPLATE % name, mapping={"name": name, "hostname": socket.gethostname(),
                                                       "pid": str(pid)})
    redis.set(lock, name, ex=60)


def _process_state(pid: int) -> str | None:
    stat = process_stat(pid)
    return stat[0] if stat else None


def test_the_daily_crm_run_waits_in_a_record_that_never_expires_and_a_lost_one_is_planned_again(sqlite_url,
                                                                                                redis_client):
    from crm.tasks import DAILY_JOB, ensure_daily, next_daily_run, schedule_daily

    services = build_services(make_settings(sqlite_url))
    queue, key = services.jobs.queue, services.jobs.queue.job_class.key_for(DAILY_JOB)
    try:
        assert ensure_daily(services)  # nothing planned yet
        services.redis.expire(key, 86_400)  # what the run ending today leaves on the record it shares
        schedule_daily(services, next_daily_run(services.clock()))  # the run plans tomorrow's as it ends
        assert services.redis.ttl(key) == -1 and DAILY_JOB in queue.scheduled_job_registry.get_job_ids()
        assert not ensure_daily(services)  # planned: left alone
        queue.scheduled_job_registry.remove(DAILY_JOB, delete_job=True)  # lost, as with an expired record
        assert ensure_daily(services) and DAILY_JOB in queue.scheduled_job_registry.get_job_ids()
    finally:
        services.close()
