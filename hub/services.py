"""The composition root's container: every outside service the flows use, chosen once."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from redis import Redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings
from hub.columns import utcnow
from hub.db import make_engine, make_session_factory
from hub.jobs import Jobs, make_queue
from hub.notifier import Notifier
from hub.telephony import Telephony


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

    def close(self) -> None:
        self.engine.dispose()
        self.redis.close()


def build_services(settings: Settings, *, telephony: Telephony | None = None) -> Services:
    """Wire the database, Redis, the job queue, the notifier and the telephony port from settings."""
    engine = make_engine(settings.database_url)
    redis = Redis.from_url(settings.redis_url)
    return Services(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        redis=redis,
        telephony=telephony or Telephony(settings),
        notifier=Notifier(settings.redis_url, settings.socketio_channel),
        jobs=Jobs(make_queue(redis, settings.rq_queue)),
    )
