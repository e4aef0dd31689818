"""Push to browsers: emits go through Socket.IO's Redis message queue, from web and worker processes alike."""
from __future__ import annotations

import logging
from typing import Any

import socketio

log = logging.getLogger(__name__)

AGENT_NAMESPACE = "/agent"
SUPERVISOR_NAMESPACE = "/supervisor"
SUPERVISORS_ROOM = "supervisors"


def agent_room(agent_id: int) -> str:
    return f"agent:{agent_id}"


class Notifier:
    """Emit Socket.IO events to rooms on every web process, through Redis."""

    def __init__(self, redis_url: str, channel: str) -> None:
        self._manager = socketio.RedisManager(redis_url, channel=channel, write_only=True)

    def to_agent(self, agent_id: int, event: str, data: dict[str, Any]) -> None:
        self._emit(event, data, AGENT_NAMESPACE, agent_room(agent_id))

    def to_supervisors(self, event: str, data: dict[str, Any]) -> None:
        self._emit(event, data, SUPERVISOR_NAMESPACE, SUPERVISORS_ROOM)

    def _emit(self, event: str, data: dict[str, Any], namespace: str, room: str) -> None:
        try:
            self._manager.emit(event, data, namespace=namespace, room=room)
        except Exception:  # a push is best effort: consoles re-read their state on reconnect
            log.exception("emit %s to %s%s failed", event, namespace, room)
