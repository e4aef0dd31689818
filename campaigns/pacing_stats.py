"""What the dialer measures about a campaign's calls: exponentially weighted counts the hub persists.

Pure: no framework, no clock. `record_dial` and `record_handle` fold one outcome in and return new stats;
the properties blend the measurements with cautious priors (used by `campaigns.pacing`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

N_BINS = 60  # 1-second histogram bins for ring times; the last bin holds everything from 59 s on
PRIOR_ANSWER_RATE = 0.30  # before data: assume many answers, so the cold dialer dials few lines
PRIOR_DIALS = 20.0  # weight of that prior, in dials
PRIOR_HANDLE_S = 180.0
PRIOR_HANDLES = 5.0
PRIOR_RING_WEIGHT = 5.0  # prior ring-time histograms: answers uniform on 3-25 s, failures on 5-45 s


class DialOutcome(StrEnum):
    LIVE = "live"  # a person answered
    MACHINE = "machine"  # answering machine (AMD); never connected to an agent
    FAILED = "failed"  # no answer, busy, unreachable, rejected


def _uniform_hist(lo: float, hi: float, weight: float) -> tuple[float, ...]:
    out = [0.0] * N_BINS
    for b in range(N_BINS):
        overlap = max(0.0, min(hi, b + 1.0) - max(lo, float(b)))
        out[b] = weight * overlap / (hi - lo)
    return tuple(out)


PRIOR_ANSWER_HIST = _uniform_hist(3.0, 25.0, PRIOR_RING_WEIGHT)
PRIOR_FAIL_HIST = _uniform_hist(5.0, 45.0, PRIOR_RING_WEIGHT)


@dataclass(frozen=True)
class DialStats:
    """Measured dialing outcomes as exponentially weighted counts (what the hub persists per campaign).

    `answer_hist[b]` / `fail_hist[b]`: weighted count of live answers / other endings b..b+1 s after dialing.
    Empty histograms mean no data. Read the blended estimates through the properties.
    """

    dials: float = 0.0
    live: float = 0.0
    machines: float = 0.0
    answer_hist: tuple[float, ...] = ()
    fail_hist: tuple[float, ...] = ()
    handles: float = 0.0
    handle_sum_s: float = 0.0
    handle_sq_sum_s2: float = 0.0

    @property
    def answer_rate(self) -> float:
        """Live answers per dial, measured and blended with the prior."""
        return (self.live + PRIOR_ANSWER_RATE * PRIOR_DIALS) / (self.dials + PRIOR_DIALS)

    @property
    def machine_rate(self) -> float:
        """Answering machines per dial (reported; pacing treats machines as failures)."""
        return self.machines / self.dials if self.dials else 0.0

    @property
    def mean_handle_s(self) -> float:
        """Mean handle time (talk + wrap-up), blended with the prior."""
        return (self.handle_sum_s + PRIOR_HANDLE_S * PRIOR_HANDLES) / (self.handles + PRIOR_HANDLES)

    @property
    def handle_cv(self) -> float:
        """Coefficient of variation of handle time; 1.0 (exponential) until there are 30 handles."""
        if self.handles < 30:
            return 1.0
        mean = self.handle_sum_s / self.handles
        var = max(0.0, self.handle_sq_sum_s2 / self.handles - mean * mean)
        return math.sqrt(var) / mean if mean > 0 else 1.0

    def time_to_answer_percentile(self, q: float) -> float:
        """Seconds from dial to live answer below which a share q of live answers fall (prior blended)."""
        return hist_percentile(blended(self.answer_hist, PRIOR_ANSWER_HIST), q)

    @property
    def mean_time_to_answer_s(self) -> float:
        """Mean seconds from dial to live answer (prior blended)."""
        hist = blended(self.answer_hist, PRIOR_ANSWER_HIST)
        return sum((b + 0.5) * c for b, c in enumerate(hist)) / sum(hist)


def record_dial(stats: DialStats, outcome: DialOutcome, seconds: float, *, half_life: float = 3000.0
                ) -> DialStats:
    """Fold one finished dial attempt into the stats.

    Args:
        stats: the campaign's current stats.
        outcome: how the attempt ended.
        seconds: from dialing to the live answer (LIVE) or to the end of the attempt (otherwise).
        half_life: number of dials after which an outcome weighs half as much.

    Returns:
        New stats; `stats` is unchanged.
    """
    d = 0.5 ** (1.0 / half_life)
    b = min(N_BINS - 1, max(0, int(seconds)))
    answer = list(stats.answer_hist) if stats.answer_hist else [0.0] * N_BINS
    fail = list(stats.fail_hist) if stats.fail_hist else [0.0] * N_BINS
    answer = [c * d for c in answer]
    fail = [c * d for c in fail]
    (answer if outcome is DialOutcome.LIVE else fail)[b] += 1.0
    return DialStats(
        dials=stats.dials * d + 1.0, live=stats.live * d + (outcome is DialOutcome.LIVE),
        machines=stats.machines * d + (outcome is DialOutcome.MACHINE), answer_hist=tuple(answer),
        fail_hist=tuple(fail), handles=stats.handles, handle_sum_s=stats.handle_sum_s,
        handle_sq_sum_s2=stats.handle_sq_sum_s2)


def record_handle(stats: DialStats, seconds: float, *, half_life: float = 2000.0) -> DialStats:
    """Fold one finished handle (talk + wrap-up, in seconds) into the stats; return new stats."""
    d = 0.5 ** (1.0 / half_life)
    return DialStats(
        dials=stats.dials, live=stats.live, machines=stats.machines, answer_hist=stats.answer_hist,
        fail_hist=stats.fail_hist, handles=stats.handles * d + 1.0, handle_sum_s=stats.handle_sum_s * d + seconds,
        handle_sq_sum_s2=stats.handle_sq_sum_s2 * d + seconds * seconds)


def blended(measured: tuple[float, ...], prior: tuple[float, ...]) -> tuple[float, ...]:
    """Return the measured histogram plus the prior one (the prior alone when nothing is measured)."""
    if not measured:
        return prior
    return tuple(a + b for a, b in zip(measured, prior))


def hist_percentile(hist: tuple[float, ...], q: float) -> float:
    """Return the value below which a share q of a 1-second-bin histogram lies."""
    total = sum(hist)
    acc = 0.0
    for b, c in enumerate(hist):
        if c > 0 and acc + c >= q * total:
            return b + (q * total - acc) / c
        acc += c
    return float(N_BINS)
