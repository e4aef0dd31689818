"""One scheduler thread: a heap of timed actions on the monotonic clock, each run under a shared lock."""
from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Timer:
    """A handle on one scheduled action; cancel() makes it a no-op."""

    __slots__ = ("due", "fn", "cancelled")

    def __init__(self, due: float, fn: Callable[[], None]) -> None:
        self.due, self.fn, self.cancelled = due, fn, False

    def cancel(self) -> None:
        """Prevent the action from running (if it has not run yet)."""
        self.cancelled = True


class Scheduler:
    """Runs actions at their due time on one thread; every action holds `lock` while it runs."""

    def __init__(self, lock: threading.RLock | None = None) -> None:
        self.lock = lock or threading.RLock()
        self._heap: list[tuple[float, int, Timer]] = []
        self._counter = itertools.count()
        self._cond = threading.Condition(threading.Lock())
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the scheduler thread."""
        self._thread = threading.Thread(target=self._run, name="sim-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread, dropping pending actions, and join it."""
        with self._cond:
            self._stopping = True
            self._heap.clear()
            self._cond.notify()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def call_later(self, delay: float, fn: Callable[[], None]) -> Timer:
        """Run `fn` after `delay` seconds; thread-safe."""
        timer = Timer(time.monotonic() + max(0.0, delay), fn)
        with self._cond:
            if not self._stopping:
                heapq.heappush(self._heap, (timer.due, next(self._counter), timer))
                self._cond.notify()
        return timer

    def call_soon(self, fn: Callable[[], None]) -> Timer:
        """Run `fn` as soon as possible on the scheduler thread."""
        return self.call_later(0.0, fn)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and (not self._heap or self._heap[0][0] > time.monotonic()):
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(timeout=wait)
                if self._stopping:
                    return
                _, _, timer = heapq.heappop(self._heap)
            if timer.cancelled:
                continue
            try:
                with self.lock:
                    timer.fn()
            except Exception:
                log.exception("scheduled action failed")
