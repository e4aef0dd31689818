"""Per-customer purchase aggregates, computed by the database and streamed in chunks.

One SQL statement groups the orders twice: by (customer, UTC day), then by customer, so the database does
the work over the orders and Python receives one row per customer, in chunks. On PostgreSQL the rows come
as binary COPY, read straight into numpy arrays (crm.pgcopy): a row-by-row cursor spends longer in the driver
than the database spends on the query. Memory in Python grows with customers (a few numbers each), never
with orders.

The revenue of a customer's first purchase day (the Gamma-Gamma model averages only the repeat purchases)
comes without a sort or window: MIN(day * 2^40 + day_total) is reached on the first day, and its remainder
modulo 2^40 is that day's total (amounts are never negative; a day's total stays far below 2^40 cents).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from hub.columns import UTCDateTime
from crm import pgcopy
from hub.models import Leg, Stage, Tier

CHUNK = 50_000
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
    """The aggregation; `binary`: for COPY on PostgreSQL, every column a non-null number (tier and stage as
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
ORDER BY c.id
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


def load_aggregates(session: Session, now: datetime, loyal_window_days: int,
                    customer_id: int | None = None) -> Aggregates:
    """Return every customer's aggregates (or one customer's), as of `now`."""
    dialect = session.get_bind().dialect.name
    today = (now.date() - datetime(1970, 1, 1).date()).days
    since_12m, recent_day = now - timedelta(days=365), today - loyal_window_days + 1
    binds = [bindparam("since_12m", since_12m, type_=UTCDateTime()), bindparam("recent_day", recent_day)]
    if customer_id is not None:
        binds.append(bindparam("customer_id", customer_id))
    statement = text(_sql(dialect, customer_id is not None)).bindparams(*binds)
    if dialect == "postgresql":
        session.execute(text("SET LOCAL work_mem = '128MB'"))  # the GROUP BYs hash in memory, not on disk
        if customer_id is None:
            return _copy_aggregates(session, since_12m, recent_day)
    result = session.execute(statement, execution_options={"stream_results": True, "yield_per": CHUNK})
    tier_code = {t: i for i, t in enumerate(TIERS)}
    stage_code = {s: i for i, s in enumerate(STAGES)}
    parts: list[tuple[np.ndarray, ...]] = []
    for rows in result.partitions():
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        tiers = np.fromiter((tier_code.get(r[1], 2) for r in rows), dtype=np.int8, count=len(rows))
        stages = np.fromiter((stage_code.get(r[2], 0) for r in rows), dtype=np.int8, count=len(rows))
        advocate = np.fromiter((bool(r[3]) for r in rows), dtype=bool, count=len(rows))
        numbers = np.array([r[4:] for r in rows], dtype=np.int64).reshape(len(rows), 11)
        parts.append((ids, tiers, stages, advocate, *(numbers[:, i].copy() for i in range(11))))
    names = [f.name for f in fields(Aggregates)]
    if not parts:
        empty = [np.zeros(0, dtype=np.int64)] * len(names)
        return Aggregates(*empty)
    return Aggregates(*(np.concatenate([p[i] for p in parts]) for i in range(len(names))))


def _copy_aggregates(session: Session, since_12m: datetime, recent_day: int) -> Aggregates:
    """Every customer's aggregates through `COPY (query) TO STDOUT (FORMAT binary)`, CHUNK rows at a time."""
    since = since_12m.astimezone(UTC).replace(tzinfo=None).isoformat()  # COPY takes no bind parameters
    query = (_sql("postgresql", False, binary=True).replace(":since_12m", f"TIMESTAMP '{since}'")
             .replace(":recent_day", str(int(recent_day))))
    cursor = session.connection().connection.driver_connection.cursor()
    parts: list[list[np.ndarray]] = []
    with cursor.copy(f"COPY ({query}) TO STDOUT (FORMAT binary)") as copy:
        for part in pgcopy.decode(iter(copy), _KINDS, CHUNK):
            parts.append([part[f"value{i}"] for i in range(len(_KINDS))])
    if not parts:
        return Aggregates(*([np.zeros(0, dtype=np.int64)] * len(fields(Aggregates))))
    ids, tiers, stages, advocate, *numbers = (np.concatenate([p[i] for p in parts]) for i in range(len(_KINDS)))
    return Aggregates(ids.astype(np.int64), tiers.astype(np.int8), stages.astype(np.int8), advocate.astype(bool),
                      *numbers)
