"""Customer value: RFM scores, gold/silver/standard tiers and the Pareto curve, vectorised over customers.

Pure functions of numpy arrays (one element per customer): no database, no clock. Ties are always broken
the same way: RFM gives equal values equal scores; tiers rank by revenue, then by customer id, so a rerun on
the same data gives the same tiers.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

GOLD = "gold"
SILVER = "silver"
STANDARD = "standard"
TIERS = (GOLD, SILVER, STANDARD)  # best first

# Share of the total that still counts as reaching a threshold: sums of cents in binary floating point are
# off by ~1e-16 relative, and a customer must not be promoted or demoted by rounding.
_SHARE_TOLERANCE = 1e-9


class ScoringError(ValueError):
    """Bad input to a value computation (the message names the argument)."""


def rfm_scores(recency_days: ArrayLike, frequency: ArrayLike,
               monetary: ArrayLike) -> tuple[NDArray[np.int8], NDArray[np.int8], NDArray[np.int8]]:
    """Score recency, frequency and monetary value 1..5 by quintile among buyers (5 is best).

    A buyer's score is ceil(5 * mid-rank percentile) over the buyers: the percentile counts the buyers with a
    worse value plus half of those with the same value (including the customer), divided by the number of
    buyers. So 10 distinct values give two customers per score, equal values always share a score, and if
    every buyer is equal they all get 3. Best means fewest days since the last purchase, most purchases, most
    spent. Customers with frequency 0 (no purchase) get 0 in all three scores: "not scored", below every
    buyer.

    Args:
        recency_days: days since each customer's last purchase (ignored where frequency is 0; may be NaN there).
        frequency: number of purchases (or purchase days), >= 0.
        monetary: amount spent (e.g. in the last 12 months or all time), >= 0 for buyers.

    Returns:
        (R, F, M) as int8 arrays.

    Raises:
        ScoringError: arrays of different lengths, negative or missing values for buyers.
    """
    recency = np.asarray(recency_days, dtype=np.float64)
    count = np.asarray(frequency, dtype=np.float64)
    spend = np.asarray(monetary, dtype=np.float64)
    if not (recency.shape == count.shape == spend.shape) or count.ndim != 1:
        raise ScoringError("recency_days, frequency and monetary must be 1-D arrays of the same length")
    if not np.all(np.isfinite(count)) or np.any(count < 0):
        raise ScoringError("frequency must be finite and >= 0")
    buyers = count > 0
    for name, values in (("recency_days", recency), ("monetary", spend)):
        if not np.all(np.isfinite(values[buyers])) or np.any(values[buyers] < 0):
            raise ScoringError(f"{name} must be finite and >= 0 for every customer with a purchase")
    scores = []
    for values, higher_is_better in ((recency, False), (count, True), (spend, True)):
        score = np.zeros(len(count), dtype=np.int8)
        chosen = values[buyers] if higher_is_better else -values[buyers]
        score[buyers] = _quintile(chosen)
        scores.append(score)
    return scores[0], scores[1], scores[2]


def _quintile(values: NDArray[np.float64]) -> NDArray[np.int8]:
    """ceil(5 * mid-rank percentile), higher values better; empty in, empty out."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.int8)
    ordered = np.sort(values)
    below = np.searchsorted(ordered, values, side="left")
    equal = np.searchsorted(ordered, values, side="right") - below
    percentile = (below + 0.5 * equal) / len(values)
    return np.clip(np.ceil(5 * percentile - 1e-12), 1, 5).astype(np.int8)


@dataclass(frozen=True)
class TierRules:
    """Thresholds for value tiers, as shares of revenue and caps as shares of all customers.

    gold: the smallest set of customers, highest revenue first, whose revenue reaches `gold_share` of the
    total, but never more than `gold_cap` of all customers (rounded down). silver: the customers after gold,
    in the same order, until `silver_share` of revenue is reached, with gold and silver together never more
    than `silver_cap` of all customers. Everyone else, and every customer without revenue, is standard.
    """

    gold_share: float = 0.80
    gold_cap: float = 0.20
    silver_share: float = 0.95
    silver_cap: float = 0.50

    def __post_init__(self) -> None:
        if not (0 < self.gold_share <= self.silver_share <= 1):
            raise ScoringError("tier rules need 0 < gold_share <= silver_share <= 1")
        if not (0 <= self.gold_cap <= self.silver_cap <= 1):
            raise ScoringError("tier rules need 0 <= gold_cap <= silver_cap <= 1")


DEFAULT_TIER_RULES = TierRules()


def assign_tiers(revenue_12m: ArrayLike, customer_ids: ArrayLike | None = None, *,
                 rules: TierRules = DEFAULT_TIER_RULES) -> NDArray[np.str_]:
    """Assign each customer "gold", "silver" or "standard" from their revenue (see `TierRules`).

    Args:
        revenue_12m: each customer's revenue over the last 12 months; a net refund (negative) counts as 0.
        customer_ids: the tie-break between equal revenue (lower id first); default: position in the array.
        rules: the thresholds.

    Returns:
        An array of tier names, one per customer, in input order.

    Raises:
        ScoringError: missing (NaN) or infinite revenue, or ids of another length.
    """
    revenue = np.asarray(revenue_12m, dtype=np.float64)
    if revenue.ndim != 1 or not np.all(np.isfinite(revenue)):
        raise ScoringError("revenue_12m must be a 1-D array of finite amounts")
    n = len(revenue)
    ids = np.arange(n) if customer_ids is None else np.asarray(customer_ids)
    if ids.shape != revenue.shape:
        raise ScoringError("customer_ids must have one id per revenue value")
    revenue = np.maximum(revenue, 0.0)
    tiers = np.full(n, STANDARD, dtype="<U8")
    total = revenue.sum()
    if total <= 0:
        return tiers
    order = np.lexsort((ids, -revenue))  # highest revenue first, then lowest id
    cumulative = np.cumsum(revenue[order])
    paying = int(np.count_nonzero(revenue))
    gold = min(_customers_to_reach(cumulative, rules.gold_share * total, total), int(rules.gold_cap * n), paying)
    top = min(_customers_to_reach(cumulative, rules.silver_share * total, total), int(rules.silver_cap * n), paying)
    top = max(top, gold)
    tiers[order[:gold]] = GOLD
    tiers[order[gold:top]] = SILVER
    return tiers


def _customers_to_reach(cumulative: NDArray[np.float64], target: float, total: float) -> int:
    """Smallest k such that the top k customers' revenue reaches the target (within rounding)."""
    return int(np.searchsorted(cumulative, target - _SHARE_TOLERANCE * total, side="left")) + 1


def pareto_curve(revenue: ArrayLike, points: int = 101) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return (share of customers, share of revenue they bring), customers taken highest revenue first.

    The customer shares are `points` evenly spaced values from 0 to 1; the revenue share at a fractional
    number of customers is interpolated linearly. With no revenue at all the revenue share is 0 throughout.
    A net refund (negative revenue) counts as 0. E.g. 20% of customers bringing 80% of revenue shows as
    (0.2, 0.8) on the curve.

    Raises:
        ScoringError: fewer than 2 points, or missing or infinite revenue.
    """
    if points < 2:
        raise ScoringError("a Pareto curve needs at least 2 points")
    values = np.asarray(revenue, dtype=np.float64)
    if values.ndim != 1 or not np.all(np.isfinite(values)):
        raise ScoringError("revenue must be a 1-D array of finite amounts")
    customer_share = np.linspace(0.0, 1.0, points)
    values = np.maximum(values, 0.0)
    total = values.sum()
    if len(values) == 0 or total <= 0:
        return customer_share, np.zeros(points)
    cumulative = np.concatenate(([0.0], np.cumsum(np.sort(values)[::-1]))) / total
    return customer_share, np.interp(customer_share * len(values), np.arange(len(values) + 1), cumulative)
