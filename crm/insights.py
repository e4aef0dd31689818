"""The CRM's figures on the wallboard and in the reports: revenue by tier, the Pareto curve, lifecycle stage
counts, cohort retention, and the monthly churn and repeat-customer rates.

One module computes them for both screens (as hub.metrics does for calls). The definitions (docs/wallboard.md
says them in a supervisor's words):

- **Revenue by tier**, by the customer's *current* tier; "customers" counts everyone in the tier, "buyers"
  those with revenue. The reports sum the orders placed in their range. The wallboard sums what the
  recompute stored per customer (`revenue_12m_cents`, the 365 days before the customer's last recompute:
  the figure the tiers are cut from), so it reads one row per buyer, not every order.
- **Pareto curve** (wallboard): buyers of the last 12 months, highest revenue first; for each share of them,
  the share of that revenue they bring, as crm.value.pareto_curve draws it, computed by the database.
- **Cohort retention** (wallboard): a cohort is the customers whose first order ever (as the recompute
  stored it) was in a calendar month; its retention in month k is the share of them with an order in the
  k-th month after that one.
- **Monthly churn rate** (reports): customers *active* at the month's start (stage first-time buyer, repeat
  buyer, loyal or advocate at that instant, read from the stage history) of whom the recompute moved at
  least one into lapsed or churned during the month, over all those active. A customer already lapsed at
  the start who then churns is not counted again: they were not active.
- **Repeat-customer rate** (reports): customers with an order in the month who had ordered before the month
  started, over all customers with an order in the month.

Months and days are cut at midnight in the viewer's zone for the reports and in UTC on the wallboard: every
query takes UTC instants, so SQLite and PostgreSQL compute the same thing without time zone support in SQL.
"""
from __future__ import annotations

import logging
import threading
import weakref
import zoneinfo
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, Engine, case, func, literal, select, text
from sqlalchemy.orm import Session

from crm.models import CrmSettings, CustomerValue, ModelRun, Order, StageChange, TierChange
from hub.columns import UTCDateTime
from hub.models import Customer, Stage, Tier

TIERS = tuple(t.value for t in Tier)  # best first
STAGES = tuple(s.value for s in Stage)  # prospect first, churned last
ACTIVE_STAGES = (Stage.FIRST_TIME_BUYER.value, Stage.REPEAT_BUYER.value, Stage.LOYAL.value, Stage.ADVOCATE.value)
LOST_STAGES = (Stage.LAPSED.value, Stage.CHURNED.value)
WINDOW_12M = timedelta(days=365)  # the tiers' "last 12 months" (crm.aggregates)
COHORT_MONTHS = 12  # cohorts on the wallboard: this month and the 11 before
PARETO_POINTS = 21  # every 5 % of customers
MAX_REPORT_MONTHS = 14  # 366 days touch at most 13 calendar months; one more for safety

log = logging.getLogger(__name__)


class InsightError(ValueError):
    """A request for CRM figures that cannot be answered; the message says what to change."""


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def _decimal(cents: int) -> str:
    """Cents as an exact decimal string ('1234.50'); JSON floats would round large sums."""
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


# ---------------------------------------------------------------- months


def _first_of_month(day: date) -> date:
    return day.replace(day=1)


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def month_bounds(first: date, last: date, zone: zoneinfo.ZoneInfo | Any) -> list[tuple[date, datetime, datetime]]:
    """Return each calendar month from first's to last's with its UTC start and end, cut at local midnight.

    Raises:
        InsightError: a range that ends before it starts or touches more than MAX_REPORT_MONTHS months.
    """
    if last < first:
        raise InsightError(f"the range ends ({last}) before it starts ({first})")
    months = [_first_of_month(first)]
    while months[-1] < _first_of_month(last):
        months.append(_next_month(months[-1]))
        if len(months) > MAX_REPORT_MONTHS:
            raise InsightError(f"monthly figures cover at most {MAX_REPORT_MONTHS} months")
    edges = months + [_next_month(months[-1])]
    starts = [datetime.combine(m, time(), zone).astimezone(UTC) for m in edges]
    return [(months[i], starts[i], starts[i + 1]) for i in range(len(months))]


def _tune(session: Session) -> None:
    """On PostgreSQL, let this transaction's GROUP BYs hash in memory, and skip JIT compilation: the planner
    overestimates the month joins and then spends longer compiling than the query takes."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL work_mem = '64MB'"))
        session.execute(text("SET LOCAL jit = off"))


def _at(value: datetime) -> ColumnElement:
    return literal(value, UTCDateTime())


def _month_index(column: ColumnElement, bounds: list[tuple[date, datetime, datetime]]) -> ColumnElement:
    """SQL: the index of the month holding `column` (0 for the first; only meaningful inside the bounds).

    A sum of comparisons with each later month's start, so both databases cut months at the same UTC instants.
    """
    terms = [case((column >= _at(start), 1), else_=0) for _, start, _ in bounds[1:]]
    return sum(terms[1:], terms[0]) if terms else literal(0)


def _month_start(index: ColumnElement, bounds: list[tuple[date, datetime, datetime]]) -> ColumnElement:
    return case(*((index == i, _at(start)) for i, (_, start, _) in enumerate(bounds)), else_=_at(bounds[-1][2]))


# ---------------------------------------------------------------- revenue by tier, Pareto, stages


def _customers_by_tier_and_stage(session: Session) -> tuple[dict[str, int], dict[str, int]]:
    tiers = dict.fromkeys(TIERS, 0)
    stages = dict.fromkeys(STAGES, 0)
    rows = session.execute(select(Customer.value_tier, Customer.lifecycle_stage, func.count())
                           .group_by(Customer.value_tier, Customer.lifecycle_stage))
    for tier, stage, count in rows:
        tiers[tier] = tiers.get(tier, 0) + count
        stages[stage] = stages.get(stage, 0) + count
    return tiers, stages


def _tier_rows(sums: dict[str, tuple[int, int, int]], customers: dict[str, int],
               with_orders: bool) -> list[dict[str, Any]]:
    """Rows per tier (best first, then any tier this code does not know) from {tier: (buyers, orders, cents)}."""
    names = list(TIERS) + sorted((set(sums) | set(customers)) - set(TIERS))
    total = sum(cents for _, _, cents in sums.values())
    rows = []
    for name in names:
        people, orders, cents = sums.get(name, (0, 0, 0))
        row = {"tier": name, "customers": customers.get(name, 0), "buyers": people}
        if with_orders:
            row["orders"] = orders
        row.update(revenue_cents=cents, revenue=_decimal(cents), revenue_share=_ratio(cents, total),
                   revenue_per_buyer=_decimal((cents + people // 2) // people) if people else None)
        rows.append(row)
    return rows


def revenue_by_tier(session: Session, since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Return the orders placed in [since, until) by the customer's current tier (gold, silver, standard)."""
    tiers, _ = _customers_by_tier_and_stage(session)
    rows = session.execute(select(Customer.value_tier, func.count(func.distinct(Order.customer_id)), func.count(),
                                  func.sum(Order.amount_cents))
                           .join(Order, Order.customer_id == Customer.id)
                           .where(Order.ordered_at >= since, Order.ordered_at < until)
                           .group_by(Customer.value_tier))
    sums = {tier: (int(buyers), int(orders), int(cents or 0)) for tier, buyers, orders, cents in rows}
    return _tier_rows(sums, tiers, with_orders=True)


def _revenue_12m_by_tier(session: Session) -> dict[str, tuple[int, int, int]]:
    """{tier: (buyers, 0, cents)} from the recompute's 12-month revenue per customer."""
    rows = session.execute(select(Customer.value_tier, func.count(), func.sum(CustomerValue.revenue_12m_cents))
                           .join(CustomerValue, CustomerValue.customer_id == Customer.id)
                           .where(CustomerValue.revenue_12m_cents > 0)
                           .group_by(Customer.value_tier))
    return {tier: (int(buyers), 0, int(cents or 0)) for tier, buyers, cents in rows}


def pareto_from_values(session: Session, points: int = PARETO_POINTS) -> dict[str, Any]:
    """The Pareto curve of the customers' 12-month revenue, computed by the database.

    The same curve as crm.value.pareto_curve (customers highest revenue first, linear between whole
    customers), but the database sorts and sums: Python reads one row per point, not one per customer.
    """
    revenue = CustomerValue.revenue_12m_cents
    buyers, total = session.execute(select(func.count(), func.sum(revenue)).where(revenue > 0)).one()
    buyers, total = int(buyers), int(total or 0)
    customer_share = np.linspace(0.0, 1.0, points)
    if not buyers:
        return {"buyers": 0, "customer_share": [round(float(v), 4) for v in customer_share],
                "revenue_share": [0.0] * points, "top_20_percent_share": None}
    positions = np.concatenate((customer_share * buyers, [0.2 * buyers]))
    ranks = sorted({int(k) for x in positions for k in (np.floor(x), np.ceil(x)) if k > 0})
    order = (revenue.desc(), CustomerValue.customer_id)
    ranked = (select(func.row_number().over(order_by=order).label("k"),
                     func.sum(revenue).over(order_by=order, rows=(None, 0)).label("cumulative"))
              .where(revenue > 0).subquery())
    found = dict(session.execute(select(ranked.c.k, ranked.c.cumulative).where(ranked.c.k.in_(ranks))).all())
    known = np.array([0] + ranks, dtype=np.float64)
    cumulative = np.array([0] + [int(found[k]) for k in ranks], dtype=np.float64) / total
    shares = np.interp(positions, known, cumulative)
    return {"buyers": buyers, "customer_share": [round(float(v), 4) for v in customer_share],
            "revenue_share": [round(float(v), 4) for v in shares[:-1]],
            "top_20_percent_share": round(float(shares[-1]), 4)}


# ---------------------------------------------------------------- cohorts


def cohort_retention(session: Session, bounds: list[tuple[date, datetime, datetime]],
                     now: datetime) -> list[dict[str, Any]]:
    """Return, per month of the bounds, the customers whose first order was in it and the share of them who
    ordered again in each later month (index 0 is the month after; None where that month has not begun).

    A customer's first order is the one the recompute found (crm_customer_values.first_purchase_at, kept
    current on every order); only the cohort members' orders are read, through the (customer, time) index.
    """
    since, until = bounds[0][1], bounds[-1][2]
    members = (select(CustomerValue.customer_id, CustomerValue.first_purchase_at)
               .where(CustomerValue.first_purchase_at >= _at(since), CustomerValue.first_purchase_at < _at(until))
               .subquery())
    month = _month_index(Order.ordered_at, bounds)
    cohort = _month_index(members.c.first_purchase_at, bounds)
    visits = (select(Order.customer_id, cohort.label("cohort"), month.label("month"))
              .join(members, members.c.customer_id == Order.customer_id)
              .where(Order.ordered_at >= _at(since), Order.ordered_at < _at(until))
              .group_by(Order.customer_id, cohort, month).subquery())
    counts = session.execute(select(visits.c.cohort, visits.c.month, func.count())
                             .group_by(visits.c.cohort, visits.c.month))
    seen: dict[tuple[int, int], int] = {(int(c), int(m)): n for c, m, n in counts}
    sizes = session.execute(select(cohort, func.count()).group_by(cohort))
    size_of = {int(c): n for c, n in sizes}
    begun = sum(1 for _, start, _ in bounds if start <= now)  # months that have started by now
    rows = []
    for i, (first_day, _, _) in enumerate(bounds):
        size = size_of.get(i, 0)
        rows.append({"month": first_day.strftime("%Y-%m"), "customers": size,
                     "returned": [seen.get((i, m), 0) for m in range(i + 1, min(begun, len(bounds)))],
                     "retention": [(_ratio(seen.get((i, m), 0), size) if m < begun else None)
                                   for m in range(i + 1, len(bounds))]})
    return rows


def _last_months(now: datetime, count: int) -> list[tuple[date, datetime, datetime]]:
    this_month = _first_of_month(now.astimezone(UTC).date())
    first = this_month
    for _ in range(count - 1):
        first = (first - timedelta(days=1)).replace(day=1)
    return month_bounds(first, this_month, zoneinfo.ZoneInfo("UTC"))


# ---------------------------------------------------------------- the wallboard


def board_figures(session: Session, now: datetime) -> dict[str, Any]:
    """Return the wallboard's CRM panel: revenue by tier over the last 12 months and its Pareto curve,
    customers per lifecycle stage, and the cohorts of the last COHORT_MONTHS months (UTC months).

    Revenue comes from what the recompute stored per customer (crm_customer_values.revenue_12m_cents, the
    figure the tiers are cut from: the 365 days before the customer's last recompute, daily and on each
    order), so the board reads one row per buyer instead of every order.
    """
    tiers, stages = _customers_by_tier_and_stage(session)
    tier_rows = _tier_rows(_revenue_12m_by_tier(session), tiers, with_orders=False)
    total = sum(r["revenue_cents"] for r in tier_rows)
    run = session.execute(select(ModelRun.finished_at).where(ModelRun.status == "done")
                          .order_by(ModelRun.id.desc()).limit(1)).scalar()
    return {
        "as_of": now.isoformat(),
        "recomputed_at": run.isoformat() if run else None,
        "currency": current_currency(session),
        "customers": sum(tiers.values()),
        "revenue_12m_cents": total, "revenue_12m": _decimal(total),
        "tiers": tier_rows,
        "pareto": pareto_from_values(session),
        "stages": [{"stage": stage, "customers": count} for stage, count in stages.items()],
        "cohorts": cohort_retention(session, _last_months(now, COHORT_MONTHS), now),
    }


def current_currency(session: Session) -> str:
    """The CRM's one currency, without creating the settings row (the board's transaction only reads)."""
    row = session.get(CrmSettings, 1)
    return row.currency if row is not None else "USD"


class BoardCache:
    """Keep the CRM panel between wallboard publishes, per database engine, and refresh it off the publish path.

    The board is published up to twice a second and must show a change within a second; the panel costs a
    scan of the per-customer values. So it is recomputed only when the data it comes from changed (a cheap
    fingerprint from primary-key indexes: the newest order, customer, tier and stage change and model run,
    and the UTC day) and the last computation is at least `refresh_after` old, or when it is older than
    `max_age` whatever happened (a per-customer recompute that changed no tier or stage, deleted rows). A
    stale panel is served as it is while a background thread (one per engine at a time) computes the new one
    in its own session, which the next publish carries; only the very first panel is computed in line.
    """

    def __init__(self, refresh_after: timedelta = timedelta(seconds=15), max_age: timedelta = timedelta(minutes=5),
                 background: bool = True) -> None:
        self.refresh_after, self.max_age, self.background = refresh_after, max_age, background
        self._entries: weakref.WeakKeyDictionary[Engine, tuple[tuple, datetime, dict[str, Any]]] = \
            weakref.WeakKeyDictionary()
        self._running: dict[int, threading.Thread] = {}  # id(engine) -> its refresh
        self._lock = threading.Lock()

    @staticmethod
    def fingerprint(session: Session, now: datetime) -> tuple:
        """What the panel depends on, read from primary-key indexes only."""
        newest = [select(func.max(table.id)).scalar_subquery()
                  for table in (Order, Customer, TierChange, StageChange, ModelRun)]
        return (*session.execute(select(*newest)).one(), now.astimezone(UTC).date())

    def figures(self, session: Session, now: datetime) -> dict[str, Any]:
        """Return the CRM panel: the cached one while it is good (or being refreshed), else a new one."""
        engine = session.get_bind()
        key = self.fingerprint(session, now)
        with self._lock:
            entry = self._entries.get(engine)
        if entry is not None:
            old_key, computed_at, data = entry
            age = now - computed_at
            if timedelta(0) <= age < self.max_age and (old_key == key or age < self.refresh_after):
                return data
            if self.background:
                self._refresh_later(engine, key, now)
                return data
        data = board_figures(session, now)
        with self._lock:
            self._entries[engine] = (key, now, data)
        return data

    def _refresh_later(self, engine: Engine, key: tuple, now: datetime) -> None:
        with self._lock:
            if id(engine) in self._running:
                return
            thread = threading.Thread(target=self._refresh, args=(engine, key, now), name="crm-panel", daemon=True)
            self._running[id(engine)] = thread
        thread.start()

    def _refresh(self, engine: Engine, key: tuple, now: datetime) -> None:
        try:
            with Session(engine) as session, session.begin():
                _tune(session)
                data = board_figures(session, now)
            with self._lock:
                self._entries[engine] = (key, now, data)
        except Exception:  # the stale panel stays; the next publish tries again
            log.exception("refreshing the wallboard's CRM panel failed")
        finally:
            with self._lock:
                self._running.pop(id(engine), None)

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the refreshes under way (for tests and an orderly shutdown)."""
        with self._lock:
            threads = list(self._running.values())
        for thread in threads:
            thread.join(timeout)


BOARD_CACHE = BoardCache()


# ---------------------------------------------------------------- reports


def churn_by_month(session: Session, bounds: list[tuple[date, datetime, datetime]]) -> list[tuple[int, int]]:
    """Return (active at the month's start, of them moved into lapsed or churned during it) for each month."""
    results = []
    for _, start, end in bounds:
        last_before = (select(StageChange.customer_id, StageChange.to_stage.label("stage"),
                              func.row_number().over(partition_by=StageChange.customer_id,
                                                     order_by=(StageChange.changed_at.desc(), StageChange.id.desc()))
                              .label("n"))
                       .where(StageChange.changed_at < _at(start)).subquery())
        first_after = (select(StageChange.customer_id, StageChange.from_stage.label("stage"),
                              func.row_number().over(partition_by=StageChange.customer_id,
                                                     order_by=(StageChange.changed_at, StageChange.id)).label("n"))
                       .where(StageChange.changed_at >= _at(start)).subquery())
        lost = (select(StageChange.customer_id)
                .where(StageChange.changed_at >= _at(start), StageChange.changed_at < _at(end),
                       StageChange.to_stage.in_(LOST_STAGES))
                .distinct().subquery())
        # the stage at `start`: the last change before it; else what the first change after it changed from
        # (no from-stage: a prospect); a customer whose stage never changed has had the current one throughout
        stage_then = case((last_before.c.customer_id.is_not(None), last_before.c.stage),
                          (first_after.c.customer_id.is_not(None),
                           func.coalesce(first_after.c.stage, Stage.PROSPECT.value)),
                          else_=Customer.lifecycle_stage)
        query = (select(func.count(), func.count(lost.c.customer_id)).select_from(Customer)
                 .outerjoin(last_before, (last_before.c.customer_id == Customer.id) & (last_before.c.n == 1))
                 .outerjoin(first_after, (first_after.c.customer_id == Customer.id) & (first_after.c.n == 1))
                 .outerjoin(lost, lost.c.customer_id == Customer.id)
                 .where(Customer.created_at < _at(start), stage_then.in_(ACTIVE_STAGES)))
        active, churned = session.execute(query).one()
        results.append((int(active), int(churned)))
    return results


def buyers_by_month(session: Session, bounds: list[tuple[date, datetime, datetime]]) -> list[dict[str, int]]:
    """Return each month's buyers, those of them who had ordered before the month, orders and revenue (cents)."""
    since, until = bounds[0][1], bounds[-1][2]
    month = _month_index(Order.ordered_at, bounds)
    visits = (select(Order.customer_id, month.label("month"), func.count().label("orders"),
                     func.sum(Order.amount_cents).label("revenue"))
              .where(Order.ordered_at >= since, Order.ordered_at < until)
              .group_by(Order.customer_id, month).subquery())
    firsts = (select(Order.customer_id, func.min(Order.ordered_at).label("first_at"))
              .group_by(Order.customer_id).subquery())
    ordered_before = firsts.c.first_at < _month_start(visits.c.month, bounds)
    rows = session.execute(select(visits.c.month, func.count(), func.sum(case((ordered_before, 1), else_=0)),
                                  func.sum(visits.c.orders), func.sum(visits.c.revenue))
                           .join(firsts, firsts.c.customer_id == visits.c.customer_id)
                           .group_by(visits.c.month))
    found = {int(m): (int(b), int(r or 0), int(o or 0), int(v or 0)) for m, b, r, o, v in rows}
    return [dict(zip(("buyers", "repeat_buyers", "orders", "revenue_cents"), found.get(i, (0, 0, 0, 0))))
            for i in range(len(bounds))]


REPORT_COLUMNS: dict[str, tuple[tuple[str, str, str], ...]] = {
    # (key, heading, kind) as in hub.metrics.REPORT_COLUMNS; "{currency}" in a heading is the CRM's currency
    "months": (("month", "Month", "text"), ("period", "Period", "text"),
               ("active_at_start", "Active at start", "count"), ("churned", "Lapsed or churned", "count"),
               ("churn_rate", "Churn rate", "rate"), ("buyers", "Buyers", "count"),
               ("repeat_buyers", "Had bought before", "count"), ("repeat_rate", "Repeat-customer rate", "rate"),
               ("orders", "Orders", "count"), ("revenue", "Revenue ({currency})", "money")),
    "tiers": (("tier", "Tier", "text"), ("customers", "Customers now", "count"), ("buyers", "Buyers", "count"),
              ("orders", "Orders", "count"), ("revenue", "Revenue ({currency})", "money"),
              ("revenue_share", "Share of revenue", "rate"),
              ("revenue_per_buyer", "Revenue per buyer ({currency})", "money")),
}


def report(session: Session, first: date, last: date, since: datetime, until: datetime,
           zone: zoneinfo.ZoneInfo, now: datetime) -> dict[str, Any]:
    """Return the reports' CRM tables: each calendar month touching first..last (local), with its churn and
    repeat-customer rates, and revenue by tier over [since, until) (the report's local days).

    Months that have not started by `now` are left out; the current one is marked "to date".
    """
    bounds = [b for b in month_bounds(first, last, zone) if b[1] <= now]
    _tune(session)
    months = []
    if bounds:
        churn = churn_by_month(session, bounds)
        buying = buyers_by_month(session, bounds)
        for (month, _, end), (active, churned), buys in zip(bounds, churn, buying):
            months.append({"month": month.strftime("%Y-%m"), "period": "whole month" if end <= now else "to date",
                           "active_at_start": active, "churned": churned, "churn_rate": _ratio(churned, active),
                           "buyers": buys["buyers"], "repeat_buyers": buys["repeat_buyers"],
                           "repeat_rate": _ratio(buys["repeat_buyers"], buys["buyers"]), "orders": buys["orders"],
                           "revenue_cents": buys["revenue_cents"], "revenue": _decimal(buys["revenue_cents"])})
    return {"currency": current_currency(session), "months": months, "tiers": revenue_by_tier(session, since, until)}
