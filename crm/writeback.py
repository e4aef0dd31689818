"""Write a recompute's results back: every customer's figures, and their tier and stage where they changed,
each change with its history row and timeline entry.

What is written does not depend on the database; how it travels does:

* PostgreSQL, a full recompute's chunk of customers (`bulk`): the figures go by binary COPY into a temporary table,
  then one INSERT ... SELECT ... ON CONFLICT DO UPDATE moves them into `crm_customer_values`; tier and stage
  moves go by COPY into a temporary table and one UPDATE ... FROM; history rows and timeline entries by COPY
  straight into their tables. Row-by-row statements cost about 50 microseconds a row in the driver and the
  server; these cost a few, so a million customers are written in tens of seconds instead of many minutes.
* SQLite, or one customer (an order's recompute): executemany.

Either way a customer whose figures are the same as stored is left alone (the row is not rewritten), so a
re-run over unchanged data writes almost nothing; `computed_at` and `run_id` therefore say when, and by which
run, the figures last changed.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import or_, text, update
from sqlalchemy.orm import Session

from crm import pgcopy
from crm.aggregates import STAGES, TIERS, Aggregates
from crm.models import CustomerValue, StageChange, TierChange
from crm.orders import money
from crm.scoring import Scores
from hub.models import Customer, TimelineEntry

_MAX_CENTS = 9e15  # a degenerate model's lifetime value is clipped to what BIGINT holds, not an error

# (column of crm_customer_values, binary COPY kind of the staged value); the staged table has the same names
_STAGED = (("customer_id", "int4"), ("orders", "int4"), ("purchase_days", "int4"), ("first_purchase_at", "timestamp"),
           ("last_purchase_at", "timestamp"), ("revenue_cents", "int8"), ("revenue_12m_cents", "int8"),
           ("average_order_cents", "int8"), ("recency_score", "int2"), ("frequency_score", "int2"),
           ("monetary_score", "int2"), ("expected_purchases", "float8"), ("p_alive", "float8"),
           ("clv_cents", "float8"), ("churn_risk", "bool"), ("churn_reason", "int4"), ("talk_minutes", "int4"),
           ("cost_to_serve_cents", "int8"), ("value_to_date_cents", "int8"), ("advocate", "bool"))
# what a recompute sets; the advocate mark is a person's, and is never overwritten
UPDATED = tuple(name for name, _ in _STAGED if name not in ("customer_id", "advocate")) + ("computed_at", "run_id")
COMPARED = tuple(name for name in UPDATED if name not in ("computed_at", "run_id"))
NULL = "\\N"  # COPY text format
_PG_TYPES = {"int2": "smallint", "int4": "integer", "int8": "bigint", "float8": "double precision",
             "bool": "boolean", "timestamp": "timestamp"}


@dataclass
class Moves:
    """The tier and stage changes of some customers, as rows ready for their tables."""

    customers: list[tuple[int, str | None, str | None]] = field(default_factory=list)  # id, new tier, new stage
    tiers: list[tuple[int, datetime, str, str, str]] = field(default_factory=list)  # id, when, from, to, reason
    stages: list[tuple[int, datetime, str, str, str]] = field(default_factory=list)
    # id, kind, when, summary, details (JSON text)
    timeline: list[tuple[int, str, datetime, str, str]] = field(default_factory=list)

    @property
    def counts(self) -> tuple[int, int]:
        return len(self.tiers), len(self.stages)


def value_columns(agg: Aggregates, scores: Scores) -> dict[str, np.ndarray]:
    """The stored figures of these customers as columns (NaN where unknown; churn_reason as codes into the
    returned "reasons" array, -1 for none)."""
    bought = agg.purchase_days > 0
    reasons, codes = np.unique(np.where(bought, scores.churn_reason.astype(str), ""), return_inverse=True)
    codes = codes.reshape(-1).astype(np.int32)
    codes[np.isin(codes, np.flatnonzero(reasons == ""))] = -1
    with np.errstate(invalid="ignore", divide="ignore"):
        average = np.where(agg.orders > 0, np.rint(agg.revenue / np.maximum(agg.orders, 1)), 0).astype(np.int64)
    clv = np.clip(np.rint(scores.clv_cents), -_MAX_CENTS, _MAX_CENTS)
    return {
        "customer_id": agg.customer_id, "orders": agg.orders, "purchase_days": agg.purchase_days,
        "first_purchase_at": agg.first_at, "last_purchase_at": agg.last_at, "revenue_cents": agg.revenue,
        "revenue_12m_cents": agg.revenue_12m, "average_order_cents": average, "recency_score": scores.recency,
        "frequency_score": scores.frequency, "monetary_score": scores.monetary,
        "expected_purchases": scores.expected_purchases, "p_alive": scores.p_alive, "clv_cents": clv,
        "churn_risk": scores.churn.astype(bool), "churn_reason": codes, "talk_minutes": agg.talk_minutes,
        "cost_to_serve_cents": scores.cost_cents, "value_to_date_cents": scores.value_to_date_cents,
        "advocate": agg.advocate.astype(bool), "reasons": reasons,
    }


@functools.lru_cache(maxsize=256)
def _details(old: str, new: str) -> str:
    """A change's timeline details as JSON text (a handful of distinct pairs: made once each)."""
    return json.dumps({"from": old, "to": new})


def moves(agg: Aggregates, scores: Scores, now: datetime, currency: str, event: str) -> Moves:
    """The customers whose tier or stage changed: their new values, history rows and timeline entries."""
    found = Moves()
    tier_moved = scores.tier != agg.tier
    stage_moved = scores.stage != agg.stage
    suffix = f" ({event})" if event else ""
    for i in np.flatnonzero(tier_moved | stage_moved).tolist():
        cid = int(agg.customer_id[i])
        new_tier = new_stage = None
        if tier_moved[i]:
            old, new_tier = TIERS[agg.tier[i]], TIERS[scores.tier[i]]
            reason = f"{money(int(agg.revenue_12m[i]), currency)} over the last 12 months{suffix}"[:300]
            found.tiers.append((cid, now, old, new_tier, reason))
            found.timeline.append((cid, "tier", now, f"Tier {old} -> {new_tier}: {reason}"[:300],
                                   _details(old, new_tier)))
        if stage_moved[i]:
            old, new_stage = STAGES[agg.stage[i]], STAGES[scores.stage[i]]
            reason = f"{scores.stage_reason[i]}{suffix}"[:300]
            found.stages.append((cid, now, old, new_stage, reason))
            summary = f"Stage {old.replace('_', ' ')} -> {new_stage.replace('_', ' ')}: {reason}"[:300]
            found.timeline.append((cid, "stage", now, summary, _details(old, new_stage)))
        found.customers.append((cid, new_tier, new_stage))
    return found


def write_scores(session: Session, agg: Aggregates, scores: Scores, now: datetime, run_id: int | None,
                 currency: str, event: str, bulk: bool = False) -> tuple[int, int]:
    """Store these customers' figures, and their tier and stage where changed; return (tiers, stages) changed.

    `bulk` (a full recompute's chunk) sends them by COPY on PostgreSQL.
    """
    columns = value_columns(agg, scores)
    found = moves(agg, scores, now, currency, event)
    if bulk and session.get_bind().dialect.name == "postgresql":
        _copy_values(session, columns, now, run_id)
        _copy_moves(session, found)
    else:
        _upsert_values(session, columns, now, run_id)
        _insert_moves(session, found)
    return found.counts


# ---------------------------------------------------------------- executemany (SQLite, a few customers)


def _stamp(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _rows(columns: dict[str, np.ndarray], now: datetime, run_id: int | None) -> list[dict[str, Any]]:
    reasons = columns["reasons"].tolist()
    bought = (columns["purchase_days"] > 0).tolist()
    lists = {name: columns[name].tolist() for name, _ in _STAGED}
    rows = []
    for i in range(len(bought)):
        row = {name: lists[name][i] for name, _ in _STAGED}
        for name in ("expected_purchases", "p_alive", "clv_cents"):
            if row[name] != row[name]:  # NaN: not known
                row[name] = None
        row["clv_cents"] = None if row["clv_cents"] is None else int(row["clv_cents"])
        row["churn_reason"] = reasons[row["churn_reason"]] if row["churn_reason"] >= 0 else None
        for name in ("first_purchase_at", "last_purchase_at"):
            row[name] = _stamp(row[name]) if bought[i] else None
        row["computed_at"], row["run_id"] = now, run_id
        rows.append(row)
    return rows


def _upsert_values(session: Session, columns: dict[str, np.ndarray], now: datetime, run_id: int | None) -> None:
    rows = _rows(columns, now, run_id)
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    table = CustomerValue.__table__
    statement = insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=["customer_id"], set_={c: statement.excluded[c] for c in UPDATED},
        where=or_(*(table.c[c].is_distinct_from(statement.excluded[c]) for c in COMPARED)))
    session.execute(statement, rows)


def _insert_moves(session: Session, found: Moves) -> None:
    groups: dict[tuple[bool, bool], list[dict[str, Any]]] = {}
    for cid, tier, stage in found.customers:
        row = {"id": cid, **({"value_tier": tier} if tier else {}), **({"lifecycle_stage": stage} if stage else {})}
        groups.setdefault((tier is not None, stage is not None), []).append(row)
    for group in groups.values():  # an executemany needs the same keys in every row
        session.execute(update(Customer), group)
    if found.tiers:
        session.execute(TierChange.__table__.insert(), [
            dict(zip(("customer_id", "changed_at", "from_tier", "to_tier", "reason"), row)) for row in found.tiers])
    if found.stages:
        session.execute(StageChange.__table__.insert(), [
            dict(zip(("customer_id", "changed_at", "from_stage", "to_stage", "reason"), row)) for row in found.stages])
    if found.timeline:
        session.execute(TimelineEntry.__table__.insert(), [
            {"customer_id": cid, "kind": kind, "occurred_at": when, "call_id": None, "agent_id": None,
             "summary": summary, "details": json.loads(details)}
            for cid, kind, when, summary, details in found.timeline])


# ---------------------------------------------------------------- COPY (PostgreSQL, many customers)


def _copy_values(session: Session, columns: dict[str, np.ndarray], now: datetime, run_id: int | None) -> None:
    cursor = session.connection().connection.driver_connection.cursor()
    cursor.execute("CREATE TEMP TABLE crm_values_in (" + ", ".join(f"{name} {_PG_TYPES[kind]}"
                                                                    for name, kind in _STAGED) + ") ON COMMIT DROP")
    cursor.execute("CREATE TEMP TABLE crm_reasons_in (code integer, reason varchar(200)) ON COMMIT DROP")
    with cursor.copy("COPY crm_values_in FROM STDIN (FORMAT binary)") as copy:
        copy.write(pgcopy.encode([(kind, columns[name]) for name, kind in _STAGED]))
    with cursor.copy("COPY crm_reasons_in FROM STDIN") as copy:
        copy.write("".join(pgcopy.text_copy_line((code, reason))
                           for code, reason in enumerate(columns["reasons"].tolist()) if reason))
    names = [name for name, _ in _STAGED]
    selected = {name: f"v.{name}" for name in names}
    for name in ("first_purchase_at", "last_purchase_at"):
        selected[name] = f"CASE WHEN v.purchase_days > 0 THEN v.{name} END"
    for name in ("expected_purchases", "p_alive"):
        selected[name] = f"NULLIF(v.{name}, 'NaN')"
    selected["clv_cents"] = "CAST(NULLIF(v.clv_cents, 'NaN') AS BIGINT)"
    selected["churn_reason"] = "r.reason"
    compared = ", ".join(COMPARED)
    cursor.execute(
        f"INSERT INTO crm_customer_values ({', '.join(names)}, computed_at, run_id) "
        f"SELECT {', '.join(selected[n] for n in names)}, %s, %s "
        "FROM crm_values_in v LEFT JOIN crm_reasons_in r ON r.code = v.churn_reason "
        "ON CONFLICT (customer_id) DO UPDATE SET "
        + ", ".join(f"{name} = EXCLUDED.{name}" for name in UPDATED)
        + f" WHERE (crm_customer_values.{compared.replace(', ', ', crm_customer_values.')}) "
          f"IS DISTINCT FROM (EXCLUDED.{compared.replace(', ', ', EXCLUDED.')})",
        (now.astimezone(UTC).replace(tzinfo=None), run_id))


def _copy_moves(session: Session, found: Moves) -> None:
    if not found.customers:
        return
    cursor = session.connection().connection.driver_connection.cursor()
    cursor.execute("CREATE TEMP TABLE crm_moves_in (id integer, tier varchar(16), stage varchar(32)) ON COMMIT DROP")
    with cursor.copy("COPY crm_moves_in FROM STDIN") as copy:
        copy.write("".join(f"{cid}\t{tier or NULL}\t{stage or NULL}\n" for cid, tier, stage in found.customers))
    cursor.execute("UPDATE customers c SET value_tier = COALESCE(m.tier, c.value_tier), "
                   "lifecycle_stage = COALESCE(m.stage, c.lifecycle_stage) FROM crm_moves_in m WHERE c.id = m.id")
    # COPY's text format, written out per table: a generic formatter costs more than the database's work here
    stamps: dict[datetime, str] = {}

    def stamp(when: datetime) -> str:
        return stamps.get(when) or stamps.setdefault(when, when.astimezone(UTC).replace(tzinfo=None).isoformat())

    for table, columns, rows in (
            ("crm_tier_changes", "customer_id, changed_at, from_tier, to_tier, reason", found.tiers),
            ("crm_stage_changes", "customer_id, changed_at, from_stage, to_stage, reason", found.stages)):
        if rows:
            with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                copy.write("".join(f"{cid}\t{stamp(when)}\t{old}\t{new}\t{reason.translate(pgcopy.ESCAPES)}\n"
                                   for cid, when, old, new, reason in rows))
    if found.timeline:
        with cursor.copy("COPY timeline_entries (customer_id, kind, occurred_at, summary, details) "
                         "FROM STDIN") as copy:
            copy.write("".join(f"{cid}\t{kind}\t{stamp(when)}\t{summary.translate(pgcopy.ESCAPES)}\t"
                               f"{details.translate(pgcopy.ESCAPES)}\n"
                               for cid, kind, when, summary, details in found.timeline))
