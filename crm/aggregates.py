"""Per-customer purchase aggregates, computed by the database: staged for a full run, or for one customer.

One SQL statement groups the orders twice: by (customer, UTC day), then by customer, so the database does
the work over the orders and there is one row per customer.

A full recompute stages those rows in a temporary table of the run's connection (`stage_aggregates`), with
tier and stage as their index in TIERS and STAGES: the database ranks the whole base from there
(crm.ranking), and Python reads it back `read_staged` a chunk of customers at a time, in id order, so the
process holds one chunk, never the whole base. On PostgreSQL a chunk comes as binary COPY read straight into
numpy arrays (crm.pgcopy): a row-by-row cursor spends longer in the driver than the database spends on the
query. One customer's row (`load_aggregates`, after an order) comes through a plain query.

The revenue of a customer's first purchase day (the Gamma-Gamma model averages only the repeat purchases)
comes without a sort or window: MIN(day * 2^40 + day_total) is reached on the first day, and its remainder
modulo 2^40 is that day's total (amounts are never negative; a day's total stays far below 2^40 cents).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from hub.columns import UTCDateTime
from crm import pgcopy
from hub.models import Leg, Stage, Tier

WORK_TABLE = "crm_recompute_work"  # a temporary table: one connection's, dropped at the end of the run
_SHIFT = 1 << 40
TIERS = tuple(t.value for t in Tier)
STAGES = tuple(s.value for s in Stage)


@dataclass
class Aggregates:
    """Columns, one element per customer, ordered by customer id."""

    customer_id: np.ndarray  # int64
    tier: np.ndarray  # int8 index into TIERS (current, before this recompute)
    stage: np.ndarray  # int8 index into STAGES (current)
    advocate: np.ndarray  # bool
    orders: np.ndarray  # int64
    purchase_days: np.ndarray  # int64, distinct UTC days with an order
    recent_days: np.ndarray  # int64, purchase days in the loyalty window
    first_day: np.ndarray  # int64 day number (days since 1970-01-01); 0 when no purchase
    last_day: np.ndarray
    first_at: np.ndarray  # int64 epoch seconds of the first order; 0 when none
    last_at: np.ndarray
    revenue: np.ndarray  # int64 cents, all time
    first_day_revenue: np.ndarray  # int64 cents
    revenue_12m: np.ndarray  # int64 cents
    talk_minutes: np.ndarray  # int64, started minutes of the customer's calls

    def __len__(self) -> int:
        return len(self.customer_id)


def _sql(dialect: str, one_customer: bool, binary: bool = False) -> str:
    """The aggregation; `binary`: for the staged table, every column a non-null number (tier and stage as
    their index in TIERS and STAGES)."""
    if dialect == "postgresql":
        day = "(CAST(o.ordered_at AS date) - DATE '1970-01-01')"
        epoch = "CAST(EXTRACT(EPOCH FROM {}) AS BIGINT)"
        false = "false"
    else:
        day = "CAST(julianday(substr(o.ordered_at, 1, 10)) - 2440587.5 AS INTEGER)"
        epoch = "CAST(strftime('%s', {}) AS INTEGER)"
        false = "0"
    only_orders = "WHERE o.customer_id = :customer_id" if one_customer else ""
    only_calls = "AND k.customer_id = :customer_id" if one_customer else ""
    only_customer = "WHERE c.id = :customer_id" if one_customer else ""
    return f"""
WITH days AS (
    SELECT o.customer_id, {day} AS day, SUM(o.amount_cents) AS total, COUNT(*) AS n,
           SUM(CASE WHEN o.ordered_at >= :since_12m THEN o.amount_cents ELSE 0 END) AS rev12,
           MIN(o.ordered_at) AS first_at, MAX(o.ordered_at) AS last_at
    FROM crm_orders o {only_orders}
    GROUP BY o.customer_id, {day}
), buyers AS (
    SELECT customer_id, COUNT(*) AS purchase_days, SUM(n) AS orders, MIN(day) AS first_day,
           MAX(day) AS last_day, SUM(CASE WHEN day >= :recent_day THEN 1 ELSE 0 END) AS recent_days,
           SUM(total) AS revenue, MIN(day * {_SHIFT} + total) % {_SHIFT} AS first_day_revenue,
           SUM(rev12) AS rev12, {epoch.format('MIN(first_at)')} AS first_at, {epoch.format('MAX(last_at)')} AS last_at
    FROM days GROUP BY customer_id
), talk AS (
    SELECT k.customer_id, SUM((k.duration_s + 59) / 60) AS minutes
    FROM calls k
    WHERE k.leg = '{Leg.CUSTOMER.value}' AND k.customer_id IS NOT NULL AND k.duration_s > 0 {only_calls}
    GROUP BY k.customer_id
)
SELECT {_columns(binary, false)}
FROM customers c
LEFT JOIN buyers b ON b.customer_id = c.id
LEFT JOIN talk t ON t.customer_id = c.id
LEFT JOIN crm_customer_values v ON v.customer_id = c.id
{only_customer}
"""


_NUMBERS = ("b.orders", "b.purchase_days", "b.recent_days", "b.first_day", "b.last_day", "b.first_at", "b.last_at",
            "b.revenue", "b.first_day_revenue", "b.rev12", "t.minutes")
_KINDS = ("int4", "int2", "int2", "bool", *["int8"] * len(_NUMBERS))


def _columns(binary: bool, false: str) -> str:
    if not binary:
        return ", ".join(["c.id", "c.value_tier", "c.lifecycle_stage", f"COALESCE(v.advocate, {false})",
                          *(f"COALESCE({n}, 0)" for n in _NUMBERS)])

    def code(column: str, names: tuple[str, ...], default: int) -> str:
        cases = " ".join(f"WHEN '{name}' THEN {i}" for i, name in enumerate(names))
        return f"CAST(CASE {column} {cases} ELSE {default} END AS SMALLINT)"

    return ", ".join(["c.id", code("c.value_tier", TIERS, TIERS.index(Tier.STANDARD.value)),
                      code("c.lifecycle_stage", STAGES, 0), "COALESCE(v.advocate, false)",
                      *(f"CAST(COALESCE({n}, 0) AS BIGINT)" for n in _NUMBERS)])


def load_aggregates(session: Session, now: datetime, loyal_window_days: int, customer_id: int) -> Aggregates:
    """Return one customer's aggregates as of `now` (no row: no such customer)."""
    dialect = session.get_bind().dialect.name
    statement = text(_sql(dialect, True)).bindparams(*_binds(now, loyal_window_days),
                                                     bindparam("customer_id", customer_id))
    tier_code = {t: i for i, t in enumerate(TIERS)}
    stage_code = {s: i for i, s in enumerate(STAGES)}
    rows = [(r[0], tier_code.get(r[1], TIERS.index(Tier.STANDARD.value)), stage_code.get(r[2], 0), bool(r[3]), *r[4:])
            for r in session.execute(statement)]
    return _from_rows(rows)


def _binds(now: datetime, loyal_window_days: int) -> list:
    today = (now.date() - datetime(1970, 1, 1).date()).days
    return [bindparam("since_12m", now - timedelta(days=365), type_=UTCDateTime()),
            bindparam("recent_day", today - loyal_window_days + 1)]


def _from_rows(rows: list) -> Aggregates:
    """Aggregates from rows of whole numbers in the Aggregates' field order."""
    table = np.array(rows, dtype=np.int64).reshape(len(rows), len(_FIELDS))
    columns = [table[:, i].copy() for i in range(len(_FIELDS))]
    columns[1], columns[2], columns[3] = columns[1].astype(np.int8), columns[2].astype(np.int8), columns[3] != 0
    return Aggregates(*columns)


_FIELDS = tuple(f.name for f in fields(Aggregates))
_WORK_TYPES = ("integer PRIMARY KEY", "smallint NOT NULL", "smallint NOT NULL", "boolean NOT NULL",
               *["bigint NOT NULL"] * len(_NUMBERS))


def stage_aggregates(session: Session, now: datetime, loyal_window_days: int) -> None:
    """Aggregate every customer into WORK_TABLE, a temporary table of this session's connection (the caller
    keeps that connection for the run, and drops the table with `drop_staged`)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(text("SET LOCAL work_mem = '128MB'"))  # the GROUP BYs hash in memory, not on disk
    drop_staged(session)
    session.execute(text(f"CREATE TEMPORARY TABLE {WORK_TABLE} ("
                         + ", ".join(f"{name} {kind}" for name, kind in zip(_FIELDS, _WORK_TYPES)) + ")"))
    session.execute(text(f"INSERT INTO {WORK_TABLE} ({', '.join(_FIELDS)}) " + _sql(dialect, False, binary=True))
                    .bindparams(*_binds(now, loyal_window_days)))
    if dialect == "postgresql":
        session.execute(text(f"ANALYZE {WORK_TABLE}"))  # autovacuum never sees a temporary table


def drop_staged(session: Session) -> None:
    """Drop this connection's staged table, if any (never a table of that name outside the temporary schema)."""
    schema = "pg_temp" if session.get_bind().dialect.name == "postgresql" else "temp"
    session.execute(text(f"DROP TABLE IF EXISTS {schema}.{WORK_TABLE}"))


def read_staged(session: Session, after_id: int, limit: int, buyers_only: bool = False) -> Aggregates:
    """The next `limit` staged customers with an id above `after_id`, in id order (only buyers: customers with
    a purchase day)."""
    where = f"customer_id > {int(after_id)}" + (" AND purchase_days > 0" if buyers_only else "")
    query = f"SELECT {', '.join(_FIELDS)} FROM {WORK_TABLE} WHERE {where} ORDER BY customer_id LIMIT {int(limit)}"
    if session.get_bind().dialect.name != "postgresql":
        return _from_rows(session.execute(text(query)).all())
    cursor = session.connection().connection.driver_connection.cursor()
    with cursor.copy(f"COPY ({query}) TO STDOUT (FORMAT binary)") as copy:
        parts = list(pgcopy.decode(iter(copy), _KINDS, max(int(limit), 1)))
    if not parts:
        return _from_rows([])
    ids, tiers, stages, advocate, *numbers = (np.concatenate([p[f"value{i}"] for p in parts])
                                              for i in range(len(_KINDS)))
    return Aggregates(ids.astype(np.int64), tiers.astype(np.int8), stages.astype(np.int8), advocate.astype(bool),
                      *numbers)


def take(agg: Aggregates, rows: np.ndarray | slice) -> Aggregates:
    """These rows of the aggregates."""
    return Aggregates(*(getattr(agg, name)[rows] for name in _FIELDS))


def concatenate(parts: list[Aggregates]) -> Aggregates:
    if not parts:
        return _from_rows([])
    return Aggregates(*(np.concatenate([getattr(p, name) for p in parts]) for name in _FIELDS))
