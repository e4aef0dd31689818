"""Lifecycle stages and the churn flag, as one ordered table of rules evaluated for every customer at once.

The stage strings match `hub.models.Stage` (plus "churned"). For each customer the first rule that holds
decides the stage, in this order (the precedence):

    prospect          no purchase yet
    churned           P(alive) from the BG/NBD model under `churn_p_alive` (e.g. 0.1), or no purchase
                      for more than `churn_after_days` (e.g. 730)
    lapsed            no purchase for longer than max(`lapse_factor` x their usual interval, `lapse_floor_days`);
                      a one-time buyer has no usual interval, so only the floor applies
    advocate          marked as an advocate (e.g. they referred someone) and neither churned nor lapsed
    loyal             at least `loyal_purchases` purchases in the last `loyal_window_days`
    repeat_buyer      2 or more purchases
    first_time_buyer  1 purchase

A purchase is a purchase *day* (several orders on one day are one purchase), as in the lifetime-value model.
A customer's usual interval is (last purchase - first purchase) / (purchases - 1) in days.

Every stage comes with a reason "code: words", e.g. "overdue: no purchase for 240 days; usually every 60".
The code (before the colon) is stable for machines; the words are for the customer's timeline.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

PROSPECT = "prospect"
FIRST_TIME_BUYER = "first_time_buyer"
REPEAT_BUYER = "repeat_buyer"
LOYAL = "loyal"
ADVOCATE = "advocate"
LAPSED = "lapsed"
CHURNED = "churned"  # not yet in hub.models.Stage
STAGES = (PROSPECT, FIRST_TIME_BUYER, REPEAT_BUYER, LOYAL, ADVOCATE, LAPSED, CHURNED)


class StageInputError(ValueError):
    """Bad input to the stage rules (the message names the argument)."""


@dataclass(frozen=True)
class LifecycleRules:
    """The thresholds of the stage and churn rules (see the module docstring for how they combine)."""

    loyal_purchases: int = 4
    loyal_window_days: int = 365  # the caller counts purchases in this window; kept here for the words
    lapse_factor: float = 2.0
    lapse_floor_days: float = 90.0
    churn_p_alive: float = 0.1
    churn_after_days: float = 730.0

    def __post_init__(self) -> None:
        if self.loyal_purchases < 2 or self.loyal_window_days < 1:
            raise StageInputError("loyal needs at least 2 purchases in a window of at least 1 day")
        if self.lapse_factor <= 0 or self.lapse_floor_days < 0:
            raise StageInputError("lapse_factor must be > 0 and lapse_floor_days >= 0")
        if not (0 <= self.churn_p_alive <= 1) or self.churn_after_days <= 0:
            raise StageInputError("churn_p_alive must be in [0, 1] and churn_after_days > 0")


DEFAULT_LIFECYCLE_RULES = LifecycleRules()


@dataclass(frozen=True)
class _Facts:
    """What the rules look at, one element per customer."""

    purchases: NDArray[np.float64]
    days_since_last: NDArray[np.float64]  # nan for prospects
    usual_interval: NDArray[np.float64]  # nan for prospects and one-time buyers
    recent_purchases: NDArray[np.float64]
    advocate: NDArray[np.bool_]
    p_alive: NDArray[np.float64]  # nan where unknown
    rules: LifecycleRules


def churn_flag(p_alive: ArrayLike | None, days_since_last_purchase: ArrayLike, *,
               rules: LifecycleRules = DEFAULT_LIFECYCLE_RULES) -> tuple[NDArray[np.bool_], NDArray[np.str_]]:
    """Flag customers as churned, with the reason ("" when not flagged).

    Args:
        p_alive: P(still active) per customer from the BG/NBD model; None or nan where there is no model.
        days_since_last_purchase: days since the last purchase; nan for customers who never bought (never
            flagged: they were never customers).
        rules: the thresholds `churn_p_alive` and `churn_after_days`.

    Returns:
        (flag, reason) arrays; a reason is "p_alive: ..." or "inactive: ...". When both hold, the long
        silence is given as the reason (it needs no model to explain).
    """
    days = np.asarray(days_since_last_purchase, dtype=np.float64)
    alive = np.full(days.shape, np.nan) if p_alive is None else np.asarray(p_alive, dtype=np.float64)
    if alive.shape != days.shape or days.ndim != 1:
        raise StageInputError("p_alive and days_since_last_purchase must be 1-D arrays of the same length")
    if np.any(days < 0):
        raise StageInputError("days_since_last_purchase must be >= 0 (a purchase after as_of?)")
    bought = ~np.isnan(days)
    inactive = bought & (days > rules.churn_after_days)
    unlikely = bought & ~inactive & (alive < rules.churn_p_alive)  # nan compares False: no model, no flag
    reason = np.full(days.shape, "", dtype=object)
    reason[inactive] = [f"inactive: no purchase for {d:.0f} days (churned after {rules.churn_after_days:.0f})"
                        for d in days[inactive]]
    reason[unlikely] = [f"p_alive: still active with probability {p:.2f} (under {rules.churn_p_alive:.2f})"
                        for p in alive[unlikely]]
    return inactive | unlikely, reason.astype(str)


def _lapse_after(f: _Facts) -> NDArray[np.float64]:
    interval = np.where(np.isnan(f.usual_interval), 0.0, f.usual_interval)
    return np.maximum(f.rules.lapse_factor * interval, f.rules.lapse_floor_days)


def _lapsed_words(f: _Facts, rows: NDArray[np.intp]) -> list[str]:
    words = []
    for days, usual in zip(f.days_since_last[rows], f.usual_interval[rows]):
        if np.isnan(usual):
            words.append(f"overdue: one purchase, {days:.0f} days ago (lapsed after {f.rules.lapse_floor_days:.0f})")
        else:
            words.append(f"overdue: no purchase for {days:.0f} days; usually every {usual:.0f}")
    return words


# The table: (stage, applies, reason words for the rows it decides). First match wins; churned is decided by
# `churn_flag` before the table is read, so its reasons are the flag's own.
_Rule = tuple[str, Callable[[_Facts], NDArray[np.bool_]], Callable[[_Facts, NDArray[np.intp]], list[str]]]
_RULES: tuple[_Rule, ...] = (
    (PROSPECT, lambda f: f.purchases == 0,
     lambda f, rows: ["no_purchase: no purchase yet"] * len(rows)),
    (LAPSED, lambda f: f.days_since_last > _lapse_after(f), _lapsed_words),
    (ADVOCATE, lambda f: f.advocate,
     lambda f, rows: ["advocate: marked as an advocate"] * len(rows)),
    (LOYAL, lambda f: f.recent_purchases >= f.rules.loyal_purchases,
     lambda f, rows: [f"loyal: {n:.0f} purchases in the last {f.rules.loyal_window_days} days"
                      for n in f.recent_purchases[rows]]),
    (REPEAT_BUYER, lambda f: f.purchases >= 2,
     lambda f, rows: [f"repeat: {n:.0f} purchases" for n in f.purchases[rows]]),
    (FIRST_TIME_BUYER, lambda f: f.purchases == 1,
     lambda f, rows: ["first_purchase: one purchase so far"] * len(rows)),
)


def stage_for(purchase_days: ArrayLike, first_purchase: ArrayLike, last_purchase: ArrayLike, as_of: ArrayLike,
              *, recent_purchases: ArrayLike, advocate: ArrayLike | None = None, p_alive: ArrayLike | None = None,
              rules: LifecycleRules = DEFAULT_LIFECYCLE_RULES) -> tuple[NDArray[np.str_], NDArray[np.str_]]:
    """Decide every customer's lifecycle stage and the reason for it.

    Args:
        purchase_days: number of distinct days each customer bought on (0 for a prospect).
        first_purchase, last_purchase: days of the first and last purchase, as datetime64 or day numbers
            (ignored, and may be NaT/nan, where purchase_days is 0).
        as_of: the day the stages are for (scalar or per customer), same type.
        recent_purchases: purchase days within the last `rules.loyal_window_days` before as_of.
        advocate: True where the customer is marked as an advocate; default none.
        p_alive: P(alive) from the BG/NBD model; None or nan where there is none.
        rules: the thresholds.

    Returns:
        (stage, reason) string arrays in input order; reason is "code: words" (see the module docstring).

    Raises:
        StageInputError: arrays of different lengths, a negative count, more recent purchases than
            purchases, a last purchase before the first or after as_of.
    """
    purchases = np.asarray(purchase_days, dtype=np.float64)
    n = len(purchases) if purchases.ndim == 1 else -1
    recent = np.asarray(recent_purchases, dtype=np.float64)
    marked = np.zeros(max(n, 0), dtype=bool) if advocate is None else np.asarray(advocate, dtype=bool)
    if n < 0 or recent.shape != purchases.shape or marked.shape != purchases.shape:
        raise StageInputError("purchase_days, recent_purchases and advocate must be 1-D arrays of the same length")
    if not np.all(np.isfinite(purchases)) or np.any(purchases < 0) or np.any(purchases != np.floor(purchases)):
        raise StageInputError("purchase_days must be whole numbers >= 0")
    if not np.all(np.isfinite(recent)) or np.any(recent < 0) or np.any(recent > purchases):
        raise StageInputError("need 0 <= recent_purchases <= purchase_days")
    bought = purchases > 0
    first = np.where(bought, _days(first_purchase, n), np.nan)
    last = np.where(bought, _days(last_purchase, n), np.nan)
    end = np.broadcast_to(_days(as_of, None), purchases.shape)
    if np.any(np.isnan(first[bought])) or np.any(np.isnan(last[bought])):
        raise StageInputError("a customer with purchases needs first and last purchase days")
    if np.any(last[bought] < first[bought]) or np.any(last[bought] > end[bought]):
        raise StageInputError("need first_purchase <= last_purchase <= as_of")
    with np.errstate(invalid="ignore", divide="ignore"):
        usual = np.where(purchases >= 2, (last - first) / (purchases - 1), np.nan)
    days_since = end - last
    facts = _Facts(purchases, days_since, usual, recent, marked,
                   np.full(n, np.nan) if p_alive is None else np.asarray(p_alive, dtype=np.float64), rules)
    if facts.p_alive.shape != purchases.shape:
        raise StageInputError("p_alive must have one value per customer")

    stage = np.full(n, "", dtype="<U16")
    churned, churn_reason = churn_flag(facts.p_alive, days_since, rules=rules)
    stage[churned] = CHURNED
    reason = np.where(churned, churn_reason, "").astype(object)
    undecided = ~churned
    for name, applies, words in _RULES:
        with np.errstate(invalid="ignore"):
            rows = np.flatnonzero(undecided & applies(facts))
        stage[rows] = name
        reason[rows] = words(facts, rows)
        undecided[rows] = False
    assert not undecided.any(), "the rules cover every customer"  # purchases is 0, 1 or more
    return stage, reason.astype(str)


def _days(values: ArrayLike, n: int | None) -> NDArray[np.float64]:
    """Day numbers as floats (NaT becomes nan) from datetime64 values or numbers."""
    array = np.asarray(values)
    if np.issubdtype(array.dtype, np.datetime64):
        days = array.astype("datetime64[D]")
        result = days.astype(np.int64).astype(np.float64)
        result = np.where(np.isnat(days), np.nan, result)
    else:
        result = array.astype(np.float64)
    if n is not None and result.shape != (n,):
        raise StageInputError("first_purchase and last_purchase need one value per customer")
    return result
