"""Recompute what the CRM knows about customers: the full daily run, and one customer after an order.

Full run (`recompute_all`): stream every customer's aggregates from SQL (crm.aggregates), fit the population
(BG/NBD + Gamma-Gamma on the compressed summary, tier and RFM thresholds), score everyone, then write back in
chunks of `WRITE_CHUNK` customers, each chunk its own transaction: the computed figures as one bulk upsert,
and only the customers whose tier or stage changed get their `customers` row updated, a history row and a
timeline entry. The run and its fitted parameters are kept in `crm_model_runs`.

One customer (`recompute_customer`): the same aggregates for that customer only, scored with the last full
run's models and thresholds, so an order moves its customer's tier and stage at once.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crm.aggregates import STAGES, TIERS, Aggregates, load_aggregates
from crm.config import current_settings
from crm.models import CustomerValue, ModelRun
from crm.rules import CrmRules, rules_from_settings
from crm.scoring import EMPTY_POPULATION, Population, fit_population, score
from crm.writeback import write_scores
from hub.db import transaction
from hub.errors import FlowError
from hub.models import Customer

log = logging.getLogger(__name__)

WRITE_CHUNK = 100_000  # customers per write transaction
STALE_RUN = timedelta(hours=3)  # a "running" run older than this died with its worker



@dataclass
class RecomputeResult:
    run_id: int | None
    customers: int
    buyers: int
    orders: int
    tier_changes: int
    stage_changes: int
    note: str | None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def day_number(now: datetime) -> int:
    return (now.astimezone(UTC).date() - datetime(1970, 1, 1).date()).days


def _context(session: Session) -> tuple[CrmRules, float, float, str]:
    settings = current_settings(session)
    return rules_from_settings(settings.rules), settings.cost_per_minute, settings.cost_per_order, settings.currency


def latest_population(session: Session) -> tuple[int | None, Population]:
    """The last finished full run's id and population (an empty one before the first run)."""
    run = session.scalar(select(ModelRun).where(ModelRun.status == "done").order_by(ModelRun.id.desc()).limit(1))
    if run is None:
        return None, EMPTY_POPULATION
    return run.id, Population.from_json(run.parameters.get("population") or {})


def recompute_all(sessions: sessionmaker[Session], now: datetime) -> RecomputeResult:
    """Recompute every customer; record the run. Refuses (409) while another full run is in progress."""
    with transaction(sessions) as session:
        running = session.scalar(select(ModelRun).where(ModelRun.status == "running",
                                                        ModelRun.started_at > now - STALE_RUN))
        if running is not None:
            raise FlowError(f"a full recompute is already running (run {running.id}, started "
                            f"{running.started_at.isoformat()})", 409)
        run = ModelRun(started_at=now, status="running", parameters={})
        session.add(run)
        session.flush()
        run_id = run.id
    try:
        result = _run(sessions, now, run_id)
    except Exception as exc:
        with transaction(sessions) as session:
            run = session.get(ModelRun, run_id)
            run.status, run.error, run.finished_at = "failed", f"{type(exc).__name__}: {exc}"[:300], now
        raise
    return result


def _run(sessions: sessionmaker[Session], now: datetime, run_id: int) -> RecomputeResult:
    today = day_number(now)
    with transaction(sessions) as session:
        rules, per_minute, per_order, currency = _context(session)
        agg = load_aggregates(session, now, rules.lifecycle.loyal_window_days)
    population = fit_population(agg, rules, today)
    scores = score(agg, population, rules, today, whole_population=True, cost_per_minute=per_minute,
                   cost_per_order=per_order)
    tier_changes = stage_changes = 0
    for start in range(0, len(agg), WRITE_CHUNK):
        part = slice(start, start + WRITE_CHUNK)
        with transaction(sessions) as session:
            changed = write_scores(session, _slice(agg, part), _slice(scores, part), now, run_id, currency,
                                   event="daily recompute", bulk=True)
        tier_changes += changed[0]
        stage_changes += changed[1]
    buyers = int(np.count_nonzero(agg.purchase_days))
    with transaction(sessions) as session:
        run = session.get(ModelRun, run_id)
        run.status, run.finished_at = "done", now
        run.customers, run.buyers, run.orders = len(agg), buyers, int(agg.orders.sum())
        run.tier_changes, run.stage_changes = tier_changes, stage_changes
        run.parameters = {"population": population.as_json(), "rules": _rules_json(rules)}
    log.info("CRM recompute %s: %d customers, %d buyers, %d tier and %d stage changes", run_id, len(agg), buyers,
             tier_changes, stage_changes)
    return RecomputeResult(run_id, len(agg), buyers, int(agg.orders.sum()), tier_changes, stage_changes,
                           population.note)


def _rules_json(rules: CrmRules) -> dict[str, Any]:
    from dataclasses import asdict

    return {"tiers": asdict(rules.tiers), "lifecycle": asdict(rules.lifecycle), "model": asdict(rules.model)}


def _slice(columns, part: slice):
    return type(columns)(**{name: getattr(columns, name)[part] for name in columns.__dataclass_fields__})


def recompute_customer(session: Session, customer_id: int, now: datetime, event: str) -> dict[str, Any] | None:
    """Recompute one customer with the last full run's models; return their new figures (None: no customer).

    `event` says what caused it (e.g. "order 42 of 19.99 USD"); it goes into any change's reason.
    """
    rules, per_minute, per_order, currency = _context(session)
    agg = load_aggregates(session, now, rules.lifecycle.loyal_window_days, customer_id=customer_id)
    if len(agg) == 0:
        return None
    run_id, population = latest_population(session)
    today = day_number(now)
    scores = score(agg, population, rules, today, whole_population=False, cost_per_minute=per_minute,
                   cost_per_order=per_order)
    write_scores(session, agg, scores, now, run_id, currency, event=event)
    return {"tier": TIERS[scores.tier[0]], "stage": STAGES[scores.stage[0]]}


def mark_advocate(session: Session, customer_id: int, advocate: bool, now: datetime) -> dict[str, Any] | None:
    """Mark (or unmark) a customer as an advocate, e.g. after a referral, and recompute their stage."""
    if session.get(Customer, customer_id) is None:
        raise FlowError(f"no customer {customer_id}", 404)
    row = session.get(CustomerValue, customer_id)
    if row is None:
        row = CustomerValue(customer_id=customer_id, orders=0, purchase_days=0, revenue_cents=0,
                            revenue_12m_cents=0, average_order_cents=0, recency_score=0, frequency_score=0,
                            monetary_score=0, churn_risk=False, talk_minutes=0, cost_to_serve_cents=0,
                            value_to_date_cents=0, advocate=advocate)
        session.add(row)
    row.advocate = advocate
    session.flush()
    return recompute_customer(session, customer_id, now, "marked as an advocate" if advocate
                              else "advocate mark removed")
