"""The composition root's container: every outside service the flows use, chosen once."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time

from redis import Redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings
from hub.columns import utcnow
from hub.db import make_engine, make_session_factory
from hub.jobs import Jobs, make_queue
from hub.notifier import Notifier
from hub.telephony import Telephony
from routing.model import RoutingConfig


@dataclass
class Services:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    redis: Redis
    telephony: Telephony
    notifier: Notifier
    jobs: Jobs
    clock: Callable[[], datetime] = field(default=utcnow)
    _closers: list[Callable[[], None]] = field(default_factory=list)

    def on_close(self, closer: Callable[[], None]) -> None:
        """Run `closer` when the services close (background threads stop with them)."""
        self._closers.append(closer)

    @property
    def routing_config(self) -> RoutingConfig:
        start, end = self.settings.calling_hours.split("-")
        return RoutingConfig(calling_window=(time.fromisoformat(start), time.fromisoformat(end)))

    def close(self) -> None:
        for closer in self._closers:
            closer()
        self.engine.dispose()
        self.redis.close()


def build_services(settings: Settings, *, telephony: Telephony | None = None) -> Services:
    """Wire the database, Redis, the job queue, the notifier and the telephony port from settings."""
    engine = make_engine(settings.database_url, pool_size=settings.db_pool_size)
    redis = Redis.from_url(settings.redis_url)
    return Services(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine, check_routing_cache=settings.check_routing_cache),
        redis=redis,
        telephony=telephony or Telephony(settings),
        notifier=Notifier(settings.redis_url, settings.socketio_channel),
        jobs=Jobs(make_queue(redis, settings.rq_queue)),
    )
