"""The wallboard feed: whoever changes something marks the board dirty; each web process's feed thread
publishes a fresh board at most twice a second. Rebuilding the whole board on every event, inside the
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


def mark_board_dirty(services: Services) -> None:
    """Ask for a wallboard refresh; many marks before the next publish make one refresh."""
    services.redis.set(_dirty_key(services), 1)


def publish_board(services: Services) -> None:
    with transaction(services.sessions) as session:
        data = board(session, services.clock())
    services.notifier.to_supervisors("board", data)


class BoardFeed(threading.Thread):
    """Publish the wallboard when it is dirty; with several web processes, one of them wins each round."""

    def __init__(self, services: Services, interval: float = INTERVAL_S) -> None:
        super().__init__(name="board-feed", daemon=True)
        self.services, self.interval = services, interval
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                if self.services.redis.getdel(_dirty_key(self.services)):
                    publish_board(self.services)
            except Exception:  # keep feeding: a missed round is tried again at the next one
                log.exception("publishing the wallboard failed; trying again")
                try:
                    mark_board_dirty(self.services)
                except Exception:  # noqa: BLE001 - Redis itself is down: the next change marks it
                    pass

    def stop(self) -> None:
        self._stopped.set()
