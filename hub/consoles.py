"""Which agents have a console open: each console's heartbeat keeps it listed for a while.

A console that disconnects is given a grace period (a laptop waking up, a network blip) and then its
agent is logged off, so routing never offers calls to someone who is gone. A web process that dies
without a disconnect is caught by the sweeper, once the dead consoles' heartbeats have expired.
"""
from __future__ import annotations

from datetime import timedelta

from hub.services import Services

HEARTBEAT_TTL = timedelta(seconds=90)  # consoles send a heartbeat every 20 s


def _key(services: Services, agent_id: int) -> str:
    return f"switchboard:{services.settings.socketio_channel}:consoles:{agent_id}"


def console_seen(services: Services, agent_id: int, sid: str) -> None:
    """Record that this console (socket id) of the agent is alive now."""
    until = (services.clock() + HEARTBEAT_TTL).timestamp()
    key = _key(services, agent_id)
    services.redis.zadd(key, {sid: until})
    services.redis.expire(key, int(HEARTBEAT_TTL.total_seconds()) * 2)


def console_closed(services: Services, agent_id: int, sid: str) -> None:
    services.redis.zrem(_key(services, agent_id), sid)


def has_console(services: Services, agent_id: int) -> bool:
    """Say whether the agent has a live console, dropping consoles whose heartbeat expired."""
    key = _key(services, agent_id)
    services.redis.zremrangebyscore(key, "-inf", services.clock().timestamp())
    return services.redis.zcard(key) > 0


def expired_consoles(services: Services, agent_id: int) -> bool:
    """Say whether the agent had consoles that stopped beating without closing (their process died)."""
    key = _key(services, agent_id)
    return bool(services.redis.zrangebyscore(key, "-inf", services.clock().timestamp()))


def console_sids(services: Services, agent_id: int) -> list[str]:
    """The socket ids of the agent's open consoles."""
    return [sid.decode() for sid in services.redis.zrange(_key(services, agent_id), 0, -1)]
