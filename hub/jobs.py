"""The job queue seam: RQ on Redis, JSON-serialised, one queue name from settings."""
from __future__ import annotations

from datetime import datetime, timedelta

from redis import Redis
from rq import Queue, Retry
from rq.serializers import JSONSerializer


def make_queue(redis: Redis, name: str) -> Queue:
    return Queue(name, connection=redis, serializer=JSONSerializer)


class Jobs:
    """Schedule the hub's background jobs."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue

    def at(self, when: datetime, func, *args, job_id: str | None = None) -> None:
        """Run `func(*args)` on a worker at `when` (UTC) or up to about a second later, never earlier."""
        # RQ's scheduler keeps whole seconds (it truncates): round up so a timer never fires early.
        if when.microsecond:
            when = when.replace(microsecond=0) + timedelta(seconds=1)
        self.queue.enqueue_at(when, func, *args, job_id=job_id, job_timeout=30, result_ttl=60,
                              failure_ttl=86400, retry=Retry(max=3, interval=[1, 2, 5]))

    def ensure(self, when: datetime, func, *args, job_id: str) -> bool:
        """Schedule `func(*args)` at `when` under `job_id` unless that job is already waiting or running.

        Periodic jobs reschedule themselves when they finish; one whose worker was killed mid-run never
        does. Each periodic job ensures the others, so the chains heal as long as one of them runs.
        """
        job = self.queue.fetch_job(job_id)
        if job is not None and job.get_status(refresh=False) in ("scheduled", "queued", "started", "deferred"):
            return False
        self.at(when, func, *args, job_id=job_id)
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
    import os
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
    if pid > 0:
        try:
            os.kill(pid, 0)
            return False  # alive: its lock is its own
        except ProcessLookupError:
            pass
        except PermissionError:
            return False
    return bool(redis.eval(_RELEASE_IF_HOLDER, 1, lock_key, holder))
