"""Simulated callers: Poisson arrivals with exponential patience and lognormal talk time."""
from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass

from simulator.carrier import Carrier
from simulator.scheduler import Timer

log = logging.getLogger(__name__)


@dataclass
class CallerProfile:
    """How the simulated public behaves."""

    queue_numbers: list[str]
    caller_numbers: list[str]
    rate_per_minute: float = 4.0
    mean_talk: float = 45.0
    mean_patience: float = 90.0
    talk_sigma: float = 0.5


class CallerGenerator:
    """Places inbound calls at a Poisson rate on the carrier's scheduler (seeded, reproducible)."""

    def __init__(self, carrier: Carrier, profile: CallerProfile, seed: int = 1) -> None:
        if not profile.queue_numbers or not profile.caller_numbers:
            raise ValueError("the caller profile needs at least one queue number and one caller number")
        self.carrier = carrier
        self.profile = profile
        self.rng = random.Random(seed)
        self.placed: list[str] = []
        self._timer: Timer | None = None
        self._running = False

    def talk_time(self) -> float:
        """A lognormal talk time whose mean is `mean_talk`."""
        sigma = self.profile.talk_sigma
        mu = math.log(max(self.profile.mean_talk, 0.001)) - sigma * sigma / 2
        return self.rng.lognormvariate(mu, sigma)

    def patience(self) -> float:
        """An exponential patience whose mean is `mean_patience`."""
        return self.rng.expovariate(1.0 / max(self.profile.mean_patience, 0.001))

    def start(self) -> None:
        """Begin placing calls."""
        if self.profile.rate_per_minute <= 0:
            log.info("caller rate is 0: no simulated callers")
            return
        self._running = True
        self._schedule_next()

    def stop(self) -> None:
        """Stop placing new calls (calls in progress go on)."""
        self._running = False
        if self._timer is not None:
            self._timer.cancel()

    def _schedule_next(self) -> None:
        gap = self.rng.expovariate(self.profile.rate_per_minute / 60.0)
        self._timer = self.carrier.scheduler.call_later(gap, self._arrive)

    def _arrive(self) -> None:
        if not self._running:
            return
        from_ = self.rng.choice(self.profile.caller_numbers)
        to = self.rng.choice(self.profile.queue_numbers)
        sid = self.carrier.place_inbound_call(from_, to, talk_seconds=self.talk_time(),
                                              patience_seconds=self.patience())
        self.placed.append(sid)
        self._schedule_next()
