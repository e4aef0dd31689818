"""The routing state kept in memory between rounds, trusted only while the database says nothing changed.

Loading the state (`hub.routing_store.load_state`) reads every agent and every active call: with 800 callers
waiting it was three quarters of a routing round's CPU, and a round runs for every batch of webhooks. A round
ends knowing the state it has just written, so the next round on this process can start from it, provided
nothing else wrote in between. The database keeps the proof: triggers on every table that `load_state`
reads bump `routing_lock.version` (migration 0009), whoever writes and whatever path they take. A round
reads the version under the routing lock; the state is reused only when the version, the day (agents'
calls today) and the routing config are those a committed round left behind. Anything else (another
process's round, an admin's edit, a sweeper's repair, a rolled-back round) is a miss and a full load.

A round's state becomes reusable only once its transaction commits (`watch`); a rollback forgets it.
With `check` on (tests set it: `Settings.check_routing_cache`), every reuse is also compared with a full
load, and a difference raises `RoutingCacheMismatch` naming what differs.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from collections.abc import Mapping
from datetime import date, datetime, timedelta

from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from hub.models import RoutingLock
from routing.model import RoutingConfig, RoutingState
from routing.states import CallState

CACHE = "routing_cache"  # session.info key of the factory's RoutingStateCache
PENDING = "routing_cache_pending"  # session.info key of the state this transaction wrote, until it commits


class RoutingCacheMismatch(AssertionError):
    """A reused routing state differs from what the database holds (only raised with `check` on)."""


@dataclass(frozen=True)
class Snapshot:
    version: int
    day: date
    config: RoutingConfig
    state: RoutingState

    def fits(self, version: int, day: date, config: RoutingConfig) -> bool:
        return (self.version, self.day, self.config) == (version, day, config)


class RoutingStateCache:
    """The last committed round's state, in one process (shared by its threads)."""

    def __init__(self, check: bool = False) -> None:
        self.check = check
        self.hits = self.misses = 0
        self._lock = threading.Lock()
        self._latest: Snapshot | None = None

    def recall(self, session: Session, version: int, day: date, config: RoutingConfig) -> RoutingState | None:
        """The state to start from, or None (a miss): this transaction's own earlier round comes first."""
        pending = session.info.get(PENDING)
        with self._lock:
            for snapshot in (pending, self._latest):
                if snapshot is not None and snapshot.fits(version, day, config):
                    self.hits += 1
                    return snapshot.state
            self.misses += 1
            return None

    def publish(self, snapshot: Snapshot) -> None:
        with self._lock:
            if self._latest is None or snapshot.version >= self._latest.version:
                self._latest = snapshot


def routing_version(session: Session) -> int:
    return session.scalar(select(RoutingLock.version).where(RoutingLock.id == 1))


def cache_of(session: Session) -> RoutingStateCache | None:
    return session.info.get(CACHE)


def remember(session: Session, day: date, config: RoutingConfig, state: RoutingState) -> None:
    """Call after a round's writes: its state, as the database now holds it, for the rounds after this
    transaction commits. The version is read after the writes, so the round's own bumps are in it."""
    session.info[PENDING] = Snapshot(routing_version(session), day, config, state)


def as_stored(before: RoutingState, after: RoutingState, created: Mapping[str, datetime]) -> RoutingState:
    """`after` as `load_state` would read it back once stored (hub.routing_store._store_calls/_store_agents):
    ended calls are not loaded, priorities are stored in whole seconds, a call's arrival is its row's
    `created` time (an answered campaign call or a transfer is put in line as of the decision), and an agent's
    calls today are counted from the calls' rows (connected_at), which the engine's accept runs ahead of."""
    state = after
    changed = [call for sid, call in after.calls.items() if before.calls.get(sid) is not call]  # the rest is as loaded
    for call in changed:
        if call.state is CallState.ENDED:
            continue
        stored = replace(call, priority=timedelta(seconds=int(call.priority.total_seconds())),
                         arrived_at=created.get(call.sid, call.arrived_at))
        if stored != call:
            state = state.with_call(stored)
    if any(c.state is CallState.ENDED for c in changed):
        state = replace(state, calls={sid: c for sid, c in state.calls.items() if c.state is not CallState.ENDED})
    counted = {aid: before.agents[aid].calls_today for aid in state.agents if aid in before.agents}
    if any(state.agents[aid].calls_today != n for aid, n in counted.items()):
        state = replace(state, agents={aid: replace(a, calls_today=counted.get(aid, a.calls_today))
                                       for aid, a in state.agents.items()})
    return state


def check(fresh: RoutingState, reused: RoutingState) -> None:
    """Raise RoutingCacheMismatch when a reused state is not what a full load just read."""
    if fresh == reused:
        return
    problems = []
    for name in ("agents", "calls", "queues"):
        a, b = getattr(fresh, name), getattr(reused, name)
        for key in sorted(set(a) | set(b), key=str):
            if a.get(key) != b.get(key):
                problems.append(f"{name}[{key!r}]: database {a.get(key)!r}, reused {b.get(key)!r}")
    for name in ("config", "last_chosen", "lines"):
        if getattr(fresh, name) != getattr(reused, name):
            problems.append(f"{name}: database {getattr(fresh, name)!r}, reused {getattr(reused, name)!r}")
    raise RoutingCacheMismatch("the routing state kept between rounds differs from the database: "
                               + "; ".join(problems[:10]))


def watch(factory: sessionmaker[Session], cache: RoutingStateCache) -> None:
    """Give every session of `factory` the cache; publish a round's state when its transaction commits,
    forget it when any part of the transaction rolls back."""
    factory.kw.setdefault("info", {})[CACHE] = cache

    @event.listens_for(factory, "after_commit")
    def _publish(session: Session) -> None:
        snapshot = session.info.pop(PENDING, None)
        if snapshot is not None:
            cache.publish(snapshot)

    @event.listens_for(factory, "after_soft_rollback")
    def _forget(session: Session, _previous) -> None:
        session.info.pop(PENDING, None)
