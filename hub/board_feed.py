"""The wallboard feed: whoever changes something marks the board dirty; the web processes' feed threads
publish a fresh board at most twice a second between them (one process builds it, the Socket.IO message
queue carries it to every process's supervisors). Rebuilding the whole board on every event, inside the
request that caused it, cost more than the routing itself."""
from __future__ import annotations

import logging
import threading

from hub.db import transaction
from hub.services import Services
from hub.snapshots import board

log = logging.getLogger(__name__)

INTERVAL_S = 0.5


def _dirty_key(services: Services) -> str:
    return f"switchboard:{services.settings.socketio_channel}:board-dirty"


def _turn_key(services: Services) -> str:
    return f"switchboard:{services.settings.socketio_channel}:board-turn"


def mark_board_dirty(services: Services) -> None:
    """Ask for a wallboard refresh; many marks before the next publish make one refresh."""
    services.redis.set(_dirty_key(services), 1)


def publish_board(services: Services) -> None:
    with transaction(services.sessions) as session:
        data = board(session, services.clock())
    services.notifier.to_supervisors("board", data)


def take_turn(services: Services, interval: float = INTERVAL_S) -> bool:
    """Whether this process builds the board now: it is dirty, and no process has built one in the last
    `interval` seconds. Several processes ticking out of step would otherwise each build one per tick."""
    redis = services.redis
    if not redis.exists(_dirty_key(services)):
        return False
    if not redis.set(_turn_key(services), 1, nx=True, px=max(1, int(interval * 1000))):
        return False
    return bool(redis.getdel(_dirty_key(services)))


class BoardFeed(threading.Thread):
    """Publish the wallboard when it is dirty, at most once per `interval` across all web processes."""

    def __init__(self, services: Services, interval: float = INTERVAL_S) -> None:
        super().__init__(name="board-feed", daemon=True)
        self.services, self.interval = services, interval
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                if take_turn(self.services, self.interval):
                    publish_board(self.services)
            except Exception:  # keep feeding: a missed round is tried again at the next one
                log.exception("publishing the wallboard failed; trying again")
                try:
                    mark_board_dirty(self.services)
                except Exception:  # noqa: BLE001 - Redis itself is down: the next change marks it
                    pass

    def stop(self) -> None:
        self._stopped.set()
