"""From purchase aggregates to what the CRM says about each customer: the glue between the database's numbers
and the pure core (crm.clv, crm.value, crm.lifecycle). No database, no clock.

A full recompute fits the population (`fit_population`): the BG/NBD and Gamma-Gamma models on a sample of
buyers, and, from the database's ranking of everyone (crm.ranking), the revenue a customer needed for gold and
silver and the values behind each RFM score. Scoring any set of customers (`score`) then uses those, so the
full run scores a chunk of customers at a time. In the full run a chunk's tiers come from the ranking's cuts
(revenue, then customer id, so ties go exactly as crm.value.assign_tiers sends them) and its RFM scores from
the edges, which give every customer of the ranked base the score crm.value.rfm_scores would; for one
customer whose order just arrived they come from the last recompute's thresholds, so that customer is placed
among the population without ranking everyone again.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from crm import clv, lifecycle, value
from crm.aggregates import STAGES, TIERS, Aggregates
from crm.ranking import Cut, Ranking
from crm.rules import CrmRules

WEEKS_PER_MONTH = 52.0 / 12.0
# Buyers the population models are fitted on, at most. Fitting costs time in proportion to the distinct
# (x, t_x, T) rows, which with day-level data is nearly one per buyer; beyond about 100,000 buyers the
# parameters' standard errors are already far below what changes a decision, so a larger base adds minutes,
# not precision. Every customer is still scored.
FIT_SAMPLE = 100_000


@dataclass(frozen=True)
class Population:
    """What a full recompute learnt about all customers, reused for one customer's update."""

    bgnbd: clv.BgNbd | None
    gamma_gamma: clv.GammaGamma | None
    gold_min_cents: int | None  # the smallest 12-month revenue among gold customers
    silver_min_cents: int | None
    rfm_edges: dict[str, list[float]]  # per score letter: the lowest (oriented) value having score 2..5
    note: str | None  # why a model could not be fitted, if it could not

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Population:
        bg = data.get("bgnbd")
        gg = data.get("gamma_gamma")
        return cls(bgnbd=clv.BgNbd(**bg) if bg else None, gamma_gamma=clv.GammaGamma(**gg) if gg else None,
                   gold_min_cents=data.get("gold_min_cents"), silver_min_cents=data.get("silver_min_cents"),
                   rfm_edges=data.get("rfm_edges") or {}, note=data.get("note"))


EMPTY_POPULATION = Population(None, None, None, None, {}, "no full recompute yet")


@dataclass
class Scores:
    """One element per customer, in the aggregates' order."""

    tier: np.ndarray  # int8 index into TIERS
    stage: np.ndarray  # int8 index into STAGES
    stage_reason: np.ndarray  # str
    recency: np.ndarray  # int8 1..5, 0 for no purchase
    frequency: np.ndarray
    monetary: np.ndarray
    expected_purchases: np.ndarray  # float, nan without a model
    p_alive: np.ndarray  # float, nan without a model
    clv_cents: np.ndarray  # float, nan without a model
    churn: np.ndarray  # bool
    churn_reason: np.ndarray  # str
    cost_cents: np.ndarray  # int64
    value_to_date_cents: np.ndarray  # int64


def _model_inputs(agg: Aggregates, today: int) -> tuple[np.ndarray, clv.Summary, np.ndarray]:
    """The buyers' mask, their (x, t_x, T) in weeks, and their average repeat-purchase-day spend."""
    buyers = agg.purchase_days > 0
    first = np.minimum(agg.first_day[buyers], today)
    last = np.minimum(agg.last_day[buyers], today)
    summary = clv.summarise(first, last, agg.purchase_days[buyers], today)
    repeat = agg.purchase_days[buyers] - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        spend = np.where(repeat > 0, (agg.revenue[buyers] - agg.first_day_revenue[buyers]) / 100.0
                         / np.maximum(repeat, 1), 0.0)
    return buyers, summary, spend


def fit_sample(buyers: int) -> np.ndarray | None:
    """Which buyers (positions 0.. in customer id order) the models are fitted on: None for all of them, or a
    seeded sample of FIT_SAMPLE, sorted (the same data always gives the same sample, so the same fit)."""
    if buyers <= FIT_SAMPLE:
        return None
    return np.sort(np.random.default_rng(0).choice(buyers, size=FIT_SAMPLE, replace=False))


def fit_population(sample: Aggregates, ranking: Ranking, today: int) -> Population:
    """Fit the models on the sampled buyers (`fit_sample`; rows compressed) and take the tier and RFM thresholds
    from the ranking of everyone."""
    notes = []
    bg = gg = None
    buyers, summary, spend = _model_inputs(sample, today)
    if ranking.buyers and buyers.any():
        try:
            (x, t_x, age), weights = clv.compress_rows(summary.frequency, summary.recency, summary.T)
            bg = clv.fit_bgnbd(x, t_x, age, weights=weights)
        except clv.ModelError as exc:
            notes.append(f"BG/NBD not fitted: {exc}")
        usable = (summary.frequency > 0) & (spend > 0)
        try:
            gg = clv.fit_gamma_gamma(summary.frequency[usable], spend[usable])
            if gg.q <= 1:
                notes.append("Gamma-Gamma fitted with q <= 1 (infinite mean spend): no lifetime value")
                gg = None
        except clv.ModelError as exc:
            notes.append(f"Gamma-Gamma not fitted: {exc}")
    else:
        notes.append("no customer has an order yet")
    return Population(
        bgnbd=bg, gamma_gamma=gg,
        gold_min_cents=ranking.gold.revenue_12m if ranking.gold else None,
        silver_min_cents=ranking.silver.revenue_12m if ranking.silver else None,
        rfm_edges=ranking.rfm_edges, note="; ".join(notes) or None)


def _rfm_inputs(agg: Aggregates, today: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    bought = agg.purchase_days > 0
    recency_days = np.where(bought, np.maximum(today - agg.last_day, 0), np.nan).astype(np.float64)
    return recency_days, agg.purchase_days.astype(np.float64), agg.revenue.astype(np.float64) / 100.0


def _rfm_from_edges(agg: Aggregates, population: Population, today: int) -> tuple[np.ndarray, ...]:
    r, f, m = _rfm_inputs(agg, today)
    bought = agg.purchase_days > 0
    out = []
    for letter, values, better_high in (("r", r, False), ("f", f, True), ("m", m, True)):
        edges = population.rfm_edges.get(letter)
        oriented = values if better_high else -values
        score = np.zeros(len(agg), dtype=np.int8)
        if edges:
            limits = np.array([np.inf if e is None else e for e in edges], dtype=np.float64)
            score[bought] = 1 + np.searchsorted(limits, oriented[bought], side="right")
        else:
            score[bought] = 3  # no population yet: the middle
        out.append(score)
    return tuple(out)


def _tiers_from_thresholds(agg: Aggregates, population: Population) -> np.ndarray:
    tier = np.full(len(agg), TIERS.index(value.STANDARD), dtype=np.int8)
    positive = agg.revenue_12m > 0
    if population.silver_min_cents is not None:
        tier[positive & (agg.revenue_12m >= population.silver_min_cents)] = TIERS.index(value.SILVER)
    if population.gold_min_cents is not None:
        tier[positive & (agg.revenue_12m >= population.gold_min_cents)] = TIERS.index(value.GOLD)
    return tier


def _tiers_from_cuts(agg: Aggregates, gold: Cut | None, silver: Cut | None) -> np.ndarray:
    """Tiers of customers of a ranked base: at or before a tier's cut in rank order (12-month revenue high to low,
    then id low to high) is that tier or better."""
    tier = np.full(len(agg), TIERS.index(value.STANDARD), dtype=np.int8)
    for cut, name in ((silver, value.SILVER), (gold, value.GOLD)):
        if cut is not None:
            ranked_before = (agg.revenue_12m > cut.revenue_12m) | (
                (agg.revenue_12m == cut.revenue_12m) & (agg.customer_id <= cut.customer_id))
            tier[ranked_before] = TIERS.index(name)  # a cut's revenue is > 0: no customer without revenue
    return tier


def score(agg: Aggregates, population: Population, rules: CrmRules, today: int, *, ranking: Ranking | None = None,
          cost_per_minute: float, cost_per_order: float) -> Scores:
    """Score customers: tiers, RFM, P(alive), expected purchases, lifetime value, churn, stage, value to date.

    `ranking`: the customers belong to the base it ranked (a full run): their tiers come from its cuts.
    Without it, from the population's thresholds (one customer after an order).
    """
    n = len(agg)
    if ranking is not None:
        tier = _tiers_from_cuts(agg, ranking.gold, ranking.silver)
    else:
        tier = _tiers_from_thresholds(agg, population)
    rfm = _rfm_from_edges(agg, population, today)
    p_alive = np.full(n, np.nan)
    expected = np.full(n, np.nan)
    lifetime = np.full(n, np.nan)
    buyers, summary, spend = _model_inputs(agg, today)
    if population.bgnbd is not None and buyers.any():
        p_alive[buyers] = clv.probability_alive(population.bgnbd, summary.frequency, summary.recency, summary.T)
        try:
            expected[buyers] = clv.expected_purchases(population.bgnbd, rules.model.horizon_months * WEEKS_PER_MONTH,
                                                      summary.frequency, summary.recency, summary.T)
            if population.gamma_gamma is not None:
                lifetime[buyers] = 100.0 * clv.lifetime_value(
                    population.bgnbd, population.gamma_gamma, summary.frequency, summary.recency, summary.T, spend,
                    horizon_periods=rules.model.horizon_months,
                    discount_rate_per_period=rules.model.monthly_discount, period_length=WEEKS_PER_MONTH)
        except clv.ModelError:
            pass  # the run's note says why; the figures stay unknown
    days_since = np.where(buyers, np.maximum(today - agg.last_day, 0), np.nan).astype(np.float64)
    churn, churn_reason = lifecycle.churn_flag(p_alive, days_since, rules=rules.lifecycle)
    first = np.where(buyers, np.minimum(agg.first_day, today), 0)
    last = np.where(buyers, np.minimum(agg.last_day, today), 0)
    stage_names, stage_reason = lifecycle.stage_for(
        agg.purchase_days, first, last, today, recent_purchases=np.minimum(agg.recent_days, agg.purchase_days),
        advocate=agg.advocate, p_alive=p_alive, rules=rules.lifecycle)
    stage = np.array([STAGES.index(s) for s in stage_names], dtype=np.int8) if n else np.zeros(0, dtype=np.int8)
    cost = np.rint(agg.talk_minutes * cost_per_minute * 100 + agg.orders * cost_per_order * 100).astype(np.int64)
    return Scores(tier=tier, stage=stage, stage_reason=stage_reason, recency=rfm[0], frequency=rfm[1],
                  monetary=rfm[2], expected_purchases=expected, p_alive=p_alive, clv_cents=lifetime, churn=churn,
                  churn_reason=churn_reason, cost_cents=cost, value_to_date_cents=agg.revenue - cost)
