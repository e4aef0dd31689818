"""The job queue seam: RQ on Redis, JSON-serialised, one queue name from settings."""
from __future__ import annotations

import os
from datetime import datetime, timedelta

from redis import Redis
from rq import Queue, Retry
from rq.serializers import JSONSerializer


def make_queue(redis: Redis, name: str) -> Queue:
    return Queue(name, connection=redis, serializer=JSONSerializer)


def _whole_second(when: datetime) -> datetime:
    """RQ's scheduler keeps whole seconds (it truncates): round up, so that a timer never fires early."""
    return when.replace(microsecond=0) + timedelta(seconds=1) if when.microsecond else when


class Jobs:
    """Schedule the hub's background jobs."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue

    def at(self, when: datetime, func, *args, job_id: str | None = None) -> None:
        """Run `func(*args)` on a worker at `when` (UTC) or up to about a second later, never earlier."""
        self.queue.enqueue_at(_whole_second(when), func, *args, job_id=job_id, job_timeout=30, result_ttl=60,
                              failure_ttl=86400, retry=Retry(max=3, interval=[1, 2, 5]))

    def periodic_at(self, when: datetime, func, *args, job_id: str, job_timeout: int = 30,
                    retry: bool = True) -> None:
        """Plan the next run of a periodic job, one that reschedules itself under a fixed `job_id` (the sweeper,
        the dial reconciler, the CRM's daily recompute): as `at`, except that the job's record in Redis never
        expires. `job_timeout`: seconds a run may take; `retry`: a failed run is tried again after 1, 2, 5 s.

        RQ expires a job's record `result_ttl` after a run ends, and by then a periodic run has already
        rescheduled itself under the same id: the next run's record would carry that expiry. Should that run
        wait for the scheduler past it (a worker killed with -9 leaves its scheduler's lock held for a minute),
        its record expires while it waits, the scheduler drops it, and the chain ends for good, with the
        chains it heals (a killed worker's dial intents would never be settled).
        """
        with self.queue.connection.pipeline() as pipeline:
            self.queue.enqueue_at(_whole_second(when), func, *args, job_id=job_id, job_timeout=job_timeout,
                                  result_ttl=-1, failure_ttl=86400,
                                  retry=Retry(max=3, interval=[1, 2, 5]) if retry else None, pipeline=pipeline)
            pipeline.persist(self.queue.job_class.key_for(job_id))  # and drop a failed run's failure_ttl
            pipeline.execute()

    def ensure(self, when: datetime, func, *args, job_id: str, job_timeout: int = 30, retry: bool = True) -> bool:
        """Plan the periodic job `func(*args)` at `when` under `job_id` unless it is already waiting or running.

        Periodic jobs reschedule themselves when they finish; one whose worker was killed mid-run never
        does. Each periodic job ensures the others, so the chains heal as long as one of them runs.
        """
        job = self.queue.fetch_job(job_id)
        if job is not None and job.get_status(refresh=False) in ("scheduled", "queued", "started", "deferred"):
            return False
        self.periodic_at(when, func, *args, job_id=job_id, job_timeout=job_timeout, retry=retry)
        return True

    def now(self, func, *args) -> None:
        """Run `func(*args)` on a worker as soon as one is free."""
        self.queue.enqueue(func, *args, job_timeout=30, result_ttl=60, failure_ttl=86400,
                           retry=Retry(max=3, interval=[1, 2, 5]))


# Compare-and-delete: remove the scheduler lock only if the dead scheduler still holds it.
_RELEASE_IF_HOLDER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def break_dead_scheduler_lock(redis: Redis, queue_name: str, hostname: str | None = None) -> bool:
    """Free RQ's scheduler lock of `queue_name` when the scheduler holding it died on this host.

    RQ's scheduler holds its lock for about a minute after a crash (kill -9), and other workers retry it
    only at their maintenance interval: until then no timer fires (offer expiry, wrap-up, the dialer's
    pacing). A worker starting after a crash calls this first. Schedulers on other hosts are left alone.
    """
    import socket

    from rq.scheduler import SCHEDULER_KEY_TEMPLATE, SCHEDULER_LOCKING_KEY_TEMPLATE

    lock_key = SCHEDULER_LOCKING_KEY_TEMPLATE % queue_name
    holder = redis.get(lock_key)
    if holder is None:
        return False
    holder = holder.decode() if isinstance(holder, bytes) else holder
    info = {k.decode(): v.decode() for k, v in redis.hgetall(SCHEDULER_KEY_TEMPLATE % holder).items()}
    if info.get("hostname") != (hostname or socket.gethostname()) or not info.get("pid", "0").isdigit():
        return False
    pid = int(info["pid"])
    if pid > 0 and _runs(pid):
        return False  # alive: its lock is its own
    return bool(redis.eval(_RELEASE_IF_HOLDER, 1, lock_key, holder))


def _runs(pid: int) -> bool:
    """Whether process `pid` of this host still runs. A zombie does not: a scheduler killed with its worker
    is one until its new parent (init) reaps it, which can take seconds, yet signal 0 still reaches it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = process_stat(pid)
    return stat is None or stat[0] != "Z"  # no /proc to tell: alive, as signal 0 says


def process_stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command's name (state, parent pid, ...); None when there is no
    such process or no /proc to read."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
