"""Recompute what the CRM knows about customers: the full daily run, and one customer after an order.

Full run (`recompute_all`), in memory bounded by the chunk size whatever the number of customers:

1. the database aggregates every customer's orders into a temporary table of the run's connection
   (crm.aggregates.stage_aggregates) and ranks the whole base there (crm.ranking): the tier cuts and RFM
   edges, a handful of numbers;
2. the models (BG/NBD + Gamma-Gamma) are fitted on a seeded sample of at most FIT_SAMPLE buyers, read from
   the staged table a chunk at a time;
3. then `chunk` customers at a time, in id order, each chunk its own transaction: read its staged rows,
   score them against the cuts, edges and models, write them back (the computed figures as one bulk upsert;
   only the customers whose tier or stage changed get their `customers` row updated, a history row and a
   timeline entry), and let them go.

A chunk's results do not depend on the chunk size: everything that compares a customer with the others comes
from step 1. The run and its fitted parameters are kept in `crm_model_runs`.

One customer (`recompute_customer`): the same aggregates for that customer only, scored with the last full
run's models and thresholds, so an order moves its customer's tier and stage at once.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session, sessionmaker

from crm.aggregates import (STAGES, TIERS, Aggregates, concatenate, drop_staged, load_aggregates, read_staged,
                            stage_aggregates, take)
from crm.config import current_settings
from crm.models import CustomerValue, ModelRun
from crm.ranking import Ranking, rank_base
from crm.rules import CrmRules, rules_from_settings
from crm.scoring import EMPTY_POPULATION, Population, fit_population, fit_sample, score
from crm.writeback import write_scores
from hub.db import transaction
from hub.errors import FlowError
from hub.models import Customer

log = logging.getLogger(__name__)

CHUNK = 50_000  # customers read, scored and written per transaction of a full run
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


def recompute_all(sessions: sessionmaker[Session], now: datetime, chunk: int = CHUNK) -> RecomputeResult:
    """Recompute every customer, `chunk` customers at a time; record the run. Refuses (409) while another full
    run is in progress."""
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
        result = _run(sessions, now, run_id, max(int(chunk), 1))
    except Exception as exc:
        with transaction(sessions) as session:
            run = session.get(ModelRun, run_id)
            run.status, run.error, run.finished_at = "failed", f"{type(exc).__name__}: {exc}"[:300], now
        raise
    return result


def _run(sessions: sessionmaker[Session], now: datetime, run_id: int, chunk: int) -> RecomputeResult:
    today = day_number(now)
    with transaction(sessions) as session:
        rules, per_minute, per_order, currency = _context(session)
    # the staged aggregates are a temporary table: the whole run keeps one connection, a transaction per step
    with sessions.kw["bind"].connect() as connection:
        pinned = sessionmaker(connection, expire_on_commit=False)
        try:
            with transaction(pinned) as session:
                stage_aggregates(session, now, rules.lifecycle.loyal_window_days)
                ranking = rank_base(session, today, rules.tiers)
            population = fit_population(_fit_sample(pinned, ranking, chunk), ranking, today)
            tier_changes = stage_changes = 0
            after = -1
            while True:
                with transaction(pinned) as session:
                    agg = read_staged(session, after, chunk)
                    if len(agg) == 0:
                        break
                    scores = score(agg, population, rules, today, ranking=ranking, cost_per_minute=per_minute,
                                   cost_per_order=per_order)
                    changed = write_scores(session, agg, scores, now, run_id, currency, event="daily recompute",
                                           bulk=True)
                tier_changes += changed[0]
                stage_changes += changed[1]
                after = int(agg.customer_id[-1])
                del agg, scores
        finally:
            _drop_staged(connection, pinned)
    with transaction(sessions) as session:
        run = session.get(ModelRun, run_id)
        run.status, run.finished_at = "done", now
        run.customers, run.buyers, run.orders = ranking.customers, ranking.buyers, ranking.orders
        run.tier_changes, run.stage_changes = tier_changes, stage_changes
        run.parameters = {"population": population.as_json(), "rules": _rules_json(rules)}
    log.info("CRM recompute %s: %d customers, %d buyers, %d tier and %d stage changes", run_id, ranking.customers,
             ranking.buyers, tier_changes, stage_changes)
    return RecomputeResult(run_id, ranking.customers, ranking.buyers, ranking.orders, tier_changes, stage_changes,
                           population.note)


def _drop_staged(connection: Connection, pinned: sessionmaker[Session]) -> None:
    """Drop the staged table (also dropped with the connection; a later run's staging replaces a leftover)."""
    try:
        if connection.in_transaction():
            connection.rollback()
        with transaction(pinned) as session:
            drop_staged(session)
    except Exception:  # never hide the error that ended the run
        log.warning("CRM recompute: the staged aggregates could not be dropped", exc_info=True)


def _fit_sample(pinned: sessionmaker[Session], ranking: Ranking, chunk: int) -> Aggregates:
    """The buyers the models are fitted on (crm.scoring.fit_sample), read a chunk of buyers at a time."""
    positions = fit_sample(ranking.buyers)
    picked: list[Aggregates] = []
    seen, after = 0, -1
    while True:
        with transaction(pinned) as session:
            part = read_staged(session, after, chunk, buyers_only=True)
        if len(part) == 0:
            break
        if positions is None:
            picked.append(part)
        else:
            low, high = np.searchsorted(positions, [seen, seen + len(part)])
            picked.append(take(part, positions[low:high] - seen))
        seen, after = seen + len(part), int(part.customer_id[-1])
    return concatenate(picked)


def _rules_json(rules: CrmRules) -> dict[str, Any]:
    from dataclasses import asdict

    return {"tiers": asdict(rules.tiers), "lifecycle": asdict(rules.lifecycle), "model": asdict(rules.model)}


def recompute_customer(session: Session, customer_id: int, now: datetime, event: str) -> dict[str, Any] | None:
    """Recompute one customer with the last full run's models; return their new figures (None: no customer).

    `event` says what caused it (e.g. "order 42 of 19.99 USD"); it goes into any change's reason.
    """
    rules, per_minute, per_order, currency = _context(session)
    agg = load_aggregates(session, now, rules.lifecycle.loyal_window_days, customer_id)
    if len(agg) == 0:
        return None
    run_id, population = latest_population(session)
    today = day_number(now)
    scores = score(agg, population, rules, today, cost_per_minute=per_minute, cost_per_order=per_order)
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
