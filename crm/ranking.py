"""Where the whole customer base's ranks fall, asked of the database: the tier cuts and the RFM score edges.

Tiers and RFM scores rank every customer against all the others (crm.value: `assign_tiers`, `rfm_scores`). A
full recompute does not hold the whole base in Python: it stages the aggregates in a table
(crm.aggregates.stage_aggregates) and asks the database, with GROUP BY and running sums (window functions,
on PostgreSQL and SQLite alike), for the few numbers those ranks come down to. Each chunk of customers is
then scored against them and gets exactly what ranking everyone at once would have given:

* gold is the first `gold` customers in rank order (12-month revenue high to low, then customer id low to
  high), so it is enough to know the last of them, its (revenue, id): the *cut*. `gold` is the fewest
  customers whose revenue reaches `gold_share` of the total, at most `gold_cap` of all customers and never one
  without revenue; the same for silver with its share and cap, counted from the top. Sums are exact (whole
  cents); the share is reached within the same 1e-9 of the total as in crm.value.
* a buyer's RFM score is ceil(5 x mid-rank percentile), which only grows with the value, so each score 2..5
  starts at one value, its *edge*: the smallest value v with 5 x (2 x below(v) + equal(v)) > 2 x buyers x
  (score - 1) in whole numbers (crm.value's floating-point test with its 1e-12 slack decides the same for
  fewer than 10^11 buyers).

The state in Python is a handful of numbers, whatever the number of customers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from crm.aggregates import WORK_TABLE
from crm.value import _SHARE_TOLERANCE, TierRules


@dataclass(frozen=True)
class Cut:
    """The last customer of a tier in rank order: everyone ranked at or before them is in the tier or above."""

    revenue_12m: int  # cents
    customer_id: int


@dataclass(frozen=True)
class Ranking:
    """The whole base in a few numbers."""

    customers: int
    buyers: int  # customers with a purchase day
    orders: int
    gold: Cut | None  # None: no gold customer
    silver: Cut | None  # the last silver customer (None: no silver customer)
    rfm_edges: dict[str, list[float | None]]  # per letter, the lowest (oriented) value scoring 2..5 (None: none)


# Per RFM letter, the value among buyers in whole numbers, oriented so that higher is better ({today} is a day
# number), and how crm.scoring holds it: minus the days since the last purchase (as crm.scoring negates a
# float: no purchase for 0 days is -0.0), purchase days, currency units.
_RFM = {"r": ("-(CASE WHEN {today} > last_day THEN {today} - last_day ELSE 0 END)", lambda v: -float(-v)),
        "f": ("purchase_days", float),
        "m": ("revenue", lambda cents: cents / 100.0)}

_GROUPS = (f"WITH g AS (SELECT revenue_12m AS v, COUNT(*) AS n FROM {WORK_TABLE} WHERE revenue_12m > 0 "
           "GROUP BY revenue_12m), "
           "c AS (SELECT v, n, SUM(v * n) OVER w AS cum_revenue, SUM(n) OVER w AS cum_n FROM g "
           "WINDOW w AS (ORDER BY v DESC ROWS UNBOUNDED PRECEDING)) ")


def rank_base(session: Session, today: int, rules: TierRules) -> Ranking:
    """Rank the staged customers (crm.aggregates.WORK_TABLE) as of day number `today`."""
    customers, paying, total, buyers, orders = (int(v) for v in session.execute(text(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN revenue_12m > 0 THEN 1 ELSE 0 END), 0), "
        "COALESCE(SUM(CASE WHEN revenue_12m > 0 THEN revenue_12m ELSE 0 END), 0), "
        "COALESCE(SUM(CASE WHEN purchase_days > 0 THEN 1 ELSE 0 END), 0), COALESCE(SUM(orders), 0) "
        f"FROM {WORK_TABLE}")).one())
    gold = top = 0
    if total > 0:
        gold = min(_customers_to_reach(session, rules.gold_share, total, paying), int(rules.gold_cap * customers),
                   paying)
        top = min(_customers_to_reach(session, rules.silver_share, total, paying), int(rules.silver_cap * customers),
                  paying)
        top = max(top, gold)
    return Ranking(customers=customers, buyers=buyers, orders=orders, gold=_cut(session, gold),
                   silver=_cut(session, top) if top > gold else None,
                   rfm_edges={letter: _edges(session, letter, today, buyers) for letter in _RFM})


def _customers_to_reach(session: Session, share: float, total: int, paying: int) -> int:
    """The fewest customers, highest 12-month revenue first, whose revenue reaches `share` of `total`."""
    target = math.ceil(share * total - _SHARE_TOLERANCE * total)  # revenue is whole cents: reach it exactly
    row = session.execute(text(_GROUPS + "SELECT cum_revenue - v * n, cum_n - n, v FROM c "
                               "WHERE cum_revenue >= :target ORDER BY v DESC LIMIT 1"), {"target": target}).first()
    if row is None:  # not reached (cannot happen with share <= 1): all of them
        return paying
    before_revenue, before, value = (int(v) for v in row)
    return before + max(1, -(-(target - before_revenue) // value))  # and as many of this revenue as it takes


def _cut(session: Session, position: int) -> Cut | None:
    """The customer at this 1-based position in rank order (None for position 0)."""
    if position <= 0:
        return None
    value, before = (int(v) for v in session.execute(text(
        _GROUPS + "SELECT v, cum_n - n FROM c WHERE cum_n >= :k ORDER BY v DESC LIMIT 1"), {"k": position}).one())
    customer_id = session.execute(text(f"SELECT customer_id FROM {WORK_TABLE} WHERE revenue_12m = :v "
                                       "ORDER BY customer_id LIMIT 1 OFFSET :skip"),
                                  {"v": value, "skip": position - before - 1}).scalar_one()
    return Cut(value, int(customer_id))


def _edges(session: Session, letter: str, today: int, buyers: int) -> list[float | None]:
    expression, held = _RFM[letter]
    expression = expression.format(today=int(today))
    firsts = ", ".join(f"MIN(CASE WHEN p > {2 * buyers * (score - 1)} THEN v END)" for score in range(2, 6))
    row = session.execute(text(
        f"WITH g AS (SELECT v, COUNT(*) AS e FROM (SELECT {expression} AS v FROM {WORK_TABLE} "
        "WHERE purchase_days > 0) x GROUP BY v), "
        "r AS (SELECT v, 5 * (2 * SUM(e) OVER (ORDER BY v ROWS UNBOUNDED PRECEDING) - e) AS p FROM g) "
        f"SELECT {firsts} FROM r")).one()
    return [None if v is None else held(int(v)) for v in row]
