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

    def now(self, func, *args) -> None:
        """Run `func(*args)` on a worker as soon as one is free."""
        self.queue.enqueue(func, *args, job_timeout=30, result_ttl=60, failure_ttl=86400,
                           retry=Retry(max=3, interval=[1, 2, 5]))
