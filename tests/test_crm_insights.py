"""The CRM's wallboard panel and report tables on SQLite and PostgreSQL: revenue by tier, the Pareto curve,
stage counts, cohort retention, monthly churn and repeat-customer rates, each against figures worked out by
hand from a small known data set (below), in UTC and in New York time; and the panel's cache."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from crm import insights
from crm.models import CustomerValue, Order, StageChange
from crm.value import pareto_curve
from hub.db import make_engine, make_session_factory, transaction
from hub.models import Customer
from hub.snapshots import board

NOW = datetime(2024, 6, 5, 14, 7, tzinfo=UTC)
NEW_YORK = ZoneInfo("America/New_York")


def utc(y, m, d, hh=12, mm=0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=UTC)


# name: (tier, stage now, [(ordered_at, cents)], [(changed_at, from, to)])
KNOWN = {
    "Ada": ("gold", "loyal", [(utc(2023, 1, 15), 10000), (utc(2023, 9, 10), 20000), (utc(2024, 1, 5), 30000),
                              (utc(2024, 5, 20), 40000)],
            [(utc(2024, 2, 1, 3), "prospect", "loyal")]),
    "Bo": ("gold", "lapsed", [(utc(2023, 7, 3), 50000), (utc(2023, 8, 15), 5000), (utc(2023, 10, 1), 5000)],
           [(utc(2024, 2, 1, 3), "prospect", "repeat_buyer"), (utc(2024, 5, 15), "repeat_buyer", "lapsed")]),
    "Cy": ("silver", "first_time_buyer", [(utc(2023, 7, 20), 12000)],
           [(utc(2024, 2, 1, 3), "prospect", "first_time_buyer")]),
    "Di": ("standard", "lapsed", [(utc(2023, 5, 1), 8000), (utc(2023, 6, 1), 2000)],
           [(utc(2024, 2, 1, 3), "prospect", "repeat_buyer"),
            (utc(2024, 4, 1, 1), "repeat_buyer", "lapsed")]),  # 1 April 01:00 UTC is 31 March 21:00 in New York
    # first order at 1 April 02:00 UTC: April in UTC, 31 March in New York
    "Ed": ("silver", "repeat_buyer", [(utc(2024, 4, 1, 2), 6000), (utc(2024, 4, 15), 3000), (utc(2024, 5, 10), 2000)],
           [(utc(2024, 4, 1, 2), "prospect", "first_time_buyer"), (utc(2024, 4, 15), "first_time_buyer",
                                                                    "repeat_buyer")]),
    "Flo": ("standard", "prospect", [], []),
    "Gus": ("standard", "churned", [(utc(2022, 1, 1), 3000)],
            [(utc(2024, 2, 1, 3), "prospect", "lapsed"), (utc(2024, 3, 10), "lapsed", "churned")]),
    "Hal": ("standard", "first_time_buyer", [(utc(2024, 5, 25), 1500)],
            [(utc(2024, 5, 25), "prospect", "first_time_buyer")]),
}


def store_values(session, customer_id: int, orders: list[tuple[datetime, int]], now: datetime) -> None:
    """What a recompute at `now` stores for the customer and the panel reads: first purchase, 12-month revenue."""
    if orders:
        times = [at for at, _ in orders]
        session.add(CustomerValue(customer_id=customer_id, orders=len(orders), purchase_days=len(set(times)),
                                  first_purchase_at=min(times), last_purchase_at=max(times),
                                  revenue_cents=sum(c for _, c in orders),
                                  revenue_12m_cents=sum(c for at, c in orders if at >= now - timedelta(days=365))))


def build_known_crm(sessions) -> None:
    """Eight customers created on 1 January 2023, their orders and stage history (KNOWN), and the figures a
    recompute at NOW stores."""
    with transaction(sessions) as s:
        for name, (tier, stage, orders, changes) in KNOWN.items():
            customer = Customer(name=name, value_tier=tier, lifecycle_stage=stage, created_at=utc(2023, 1, 1, 0))
            s.add(customer)
            s.flush()
            for number, (at, cents) in enumerate(orders):
                s.add(Order(customer_id=customer.id, ordered_at=at, amount_cents=cents, currency="USD",
                            source="import", external_id=f"{name}-{number}"))
            store_values(s, customer.id, orders, NOW)
            for at, old, new in changes:
                s.add(StageChange(customer_id=customer.id, changed_at=at, from_stage=old, to_stage=new,
                                  reason="test"))


# Worked out by hand from KNOWN. The wallboard's last 12 months: 2023-06-06 14:07 to 2024-06-05 14:07 UTC.
# Ada 200 + 300 + 400 = 900, Bo 500 + 50 + 50 = 600 (gold 1500.00); Cy 120, Ed 60 + 30 + 20 = 110 (silver
# 230.00); Hal 15 (standard 15.00; Di's orders are older, Flo and Gus have none). Total 1745.00.
TIERS_12M = [
    {"tier": "gold", "customers": 2, "buyers": 2, "orders": 6, "revenue_cents": 150000, "revenue": "1500.00",
     "revenue_share": 0.8596, "revenue_per_buyer": "750.00"},
    {"tier": "silver", "customers": 2, "buyers": 2, "orders": 4, "revenue_cents": 23000, "revenue": "230.00",
     "revenue_share": 0.1318, "revenue_per_buyer": "115.00"},
    {"tier": "standard", "customers": 4, "buyers": 1, "orders": 1, "revenue_cents": 1500, "revenue": "15.00",
     "revenue_share": 0.0086, "revenue_per_buyer": "15.00"},
]
# Pareto: 900, 600, 120, 110, 15 -> the top 1, 2, 3, 4 of 5 buyers bring 900, 1500, 1620, 1730 of 1745
PARETO_AT = {0.0: 0.0, 0.2: 0.5158, 0.4: 0.8596, 0.6: 0.9284, 0.8: 0.9914, 1.0: 1.0, 0.1: 0.2579}
STAGES_NOW = {"prospect": 1, "first_time_buyer": 2, "repeat_buyer": 1, "loyal": 1, "advocate": 0, "lapsed": 2,
              "churned": 1}
# Cohorts (UTC months 2023-07 .. 2024-06): first orders Bo and Cy in 2023-07 (Bo again in months 1 and 3),
# Ed in 2024-04 (again in month 1, May), Hal in 2024-05. Ada, Di and Gus first bought before 2023-07.


@pytest.fixture
def sessions(database_url):
    engine = make_engine(database_url)
    factory = make_session_factory(engine, check_routing_cache=True)
    build_known_crm(factory)
    yield factory
    engine.dispose()


def test_the_wallboard_panel_has_the_hand_computed_tiers_pareto_stages_and_cohorts(sessions):
    with transaction(sessions) as session:
        panel = insights.board_figures(session, NOW)
    assert panel["tiers"] == [{k: v for k, v in row.items() if k != "orders"} for row in TIERS_12M]
    assert (panel["revenue_12m"], panel["customers"], panel["currency"]) == ("1745.00", 8, "USD")
    assert panel["recomputed_at"] is None  # no full recompute has run: the figures are the stored ones
    pareto = panel["pareto"]
    curve = dict(zip(pareto["customer_share"], pareto["revenue_share"]))
    assert len(curve) == insights.PARETO_POINTS and pareto["buyers"] == 5
    assert {share: curve[share] for share in PARETO_AT} == PARETO_AT
    assert pareto["top_20_percent_share"] == 0.5158
    assert {row["stage"]: row["customers"] for row in panel["stages"]} == STAGES_NOW

    cohorts = {row["month"]: row for row in panel["cohorts"]}
    assert list(cohorts) == [f"2023-{m:02d}" for m in range(7, 13)] + [f"2024-{m:02d}" for m in range(1, 7)]
    july = cohorts["2023-07"]
    assert july["customers"] == 2 and july["returned"] == [1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    assert july["retention"] == [0.5, 0.0, 0.5] + [0.0] * 8  # months 1..11 after July: August .. June
    assert cohorts["2024-04"] == {"month": "2024-04", "customers": 1, "returned": [1, 0], "retention": [1.0, 0.0]}
    assert cohorts["2024-05"] == {"month": "2024-05", "customers": 1, "returned": [0], "retention": [0.0]}
    assert cohorts["2024-06"] == {"month": "2024-06", "customers": 0, "returned": [], "retention": []}
    assert cohorts["2023-08"]["customers"] == 0 and cohorts["2023-08"]["retention"] == [None] * 10


def test_a_cohort_month_that_has_not_begun_has_no_retention_yet(sessions):
    with transaction(sessions) as session:
        bounds = insights.month_bounds(date(2024, 4, 1), date(2024, 8, 1), ZoneInfo("UTC"))
        rows = insights.cohort_retention(session, bounds, NOW)
    april = rows[0]
    # May and June have begun by 5 June; July and August have not
    assert april["customers"] == 1 and april["retention"] == [1.0, 0.0, None, None]


def test_report_months_have_the_hand_computed_churn_and_repeat_rates_in_utc(sessions):
    with transaction(sessions) as session:
        data = insights.report(session, date(2024, 2, 1), date(2024, 6, 30), utc(2024, 2, 1, 0),
                               utc(2024, 7, 1, 0), ZoneInfo("UTC"), NOW)
    months = {row["month"]: row for row in data["months"]}
    assert list(months) == ["2024-02", "2024-03", "2024-04", "2024-05", "2024-06"]
    # February: everyone's stage was first computed on 1 February 03:00, so nobody was active at its start
    assert (months["2024-02"]["active_at_start"], months["2024-02"]["churn_rate"]) == (0, None)
    # March: Ada, Bo, Cy, Di active; Gus churned but was already lapsed, so he is not counted
    assert (months["2024-03"]["active_at_start"], months["2024-03"]["churned"], months["2024-03"]["churn_rate"]) == (
        4, 0, 0.0)
    # April: Di lapsed at 01:00 UTC on the 1st; Ed became a buyer during April, so not in its denominator
    assert (months["2024-04"]["active_at_start"], months["2024-04"]["churned"], months["2024-04"]["churn_rate"]) == (
        4, 1, 0.25)
    # May: Ada, Bo, Cy, Ed active; Bo lapsed on the 15th. June so far: Ada, Cy, Ed, Hal; nobody lost
    assert (months["2024-05"]["active_at_start"], months["2024-05"]["churned"], months["2024-05"]["churn_rate"]) == (
        4, 1, 0.25)
    assert (months["2024-06"]["active_at_start"], months["2024-06"]["churn_rate"], months["2024-06"]["period"]) == (
        4, 0.0, "to date")
    assert months["2024-05"]["period"] == "whole month"
    # repeat customers: April Ed's first two orders (new); May Ada 400 and Ed 20 (again), Hal 15 (new)
    assert (months["2024-03"]["buyers"], months["2024-03"]["repeat_rate"]) == (0, None)
    assert (months["2024-04"]["buyers"], months["2024-04"]["repeat_buyers"], months["2024-04"]["orders"],
            months["2024-04"]["revenue"]) == (1, 0, 2, "90.00")
    assert (months["2024-05"]["buyers"], months["2024-05"]["repeat_buyers"], months["2024-05"]["repeat_rate"],
            months["2024-05"]["revenue"]) == (3, 2, 0.6667, "435.00")
    # revenue by tier over 1 February to 30 June: Ada 400 (gold), Ed 60 + 30 + 20 (silver), Hal 15 (standard)
    tiers = {row["tier"]: row for row in data["tiers"]}
    assert [(t, tiers[t]["buyers"], tiers[t]["orders"], tiers[t]["revenue"], tiers[t]["revenue_share"])
            for t in insights.TIERS] == [("gold", 1, 1, "400.00", 0.7619), ("silver", 1, 3, "110.00", 0.2095),
                                         ("standard", 1, 1, "15.00", 0.0286)]
    assert data["currency"] == "USD"


def test_report_months_are_cut_at_the_viewers_midnight(sessions):
    new_york_days = (datetime(2024, 3, 1, tzinfo=NEW_YORK).astimezone(UTC),
                     datetime(2024, 5, 1, tzinfo=NEW_YORK).astimezone(UTC))
    with transaction(sessions) as session:
        data = insights.report(session, date(2024, 3, 1), date(2024, 4, 30), *new_york_days, NEW_YORK, NOW)
        april_utc = insights.revenue_by_tier(session, utc(2024, 4, 1, 0), utc(2024, 5, 1, 0))
        april_ny = insights.revenue_by_tier(session, datetime(2024, 4, 1, tzinfo=NEW_YORK),
                                            datetime(2024, 5, 1, tzinfo=NEW_YORK))
    march, april = data["months"]
    # Di lapsed at 21:00 on 31 March in New York: March's churn; Ed's first order (22:00 on the 31st) too
    assert (march["month"], march["active_at_start"], march["churned"], march["churn_rate"]) == ("2024-03", 4, 1, 0.25)
    assert (march["buyers"], march["repeat_buyers"], march["repeat_rate"]) == (1, 0, 0.0)
    # April in New York starts at 04:00 UTC: Di already lapsed, Ed already a buyer; Ed's 15 April order repeats
    assert (april["active_at_start"], april["churned"], april["churn_rate"]) == (4, 0, 0.0)
    assert (april["buyers"], april["repeat_buyers"], april["repeat_rate"], april["revenue"]) == (1, 1, 1.0, "30.00")
    silver = {row["tier"]: row for row in april_utc}["silver"]
    assert silver["revenue"] == "90.00" and {row["tier"]: row for row in april_ny}["silver"]["revenue"] == "30.00"
    assert {row["tier"]: row["revenue"] for row in data["tiers"]} == {"gold": "0.00", "silver": "90.00",
                                                                      "standard": "0.00"}


def test_months_that_have_not_begun_are_left_out_and_a_bad_range_is_refused(sessions):
    with transaction(sessions) as session:
        data = insights.report(session, date(2024, 6, 1), date(2024, 8, 31), utc(2024, 6, 1, 0), utc(2024, 9, 1, 0),
                               ZoneInfo("UTC"), NOW)
    assert [row["month"] for row in data["months"]] == ["2024-06"]
    with pytest.raises(insights.InsightError, match="before it starts"):
        insights.month_bounds(date(2024, 6, 1), date(2024, 5, 1), ZoneInfo("UTC"))
    with pytest.raises(insights.InsightError, match="at most"):
        insights.month_bounds(date(2020, 1, 1), date(2024, 5, 1), ZoneInfo("UTC"))


def _order_arrives(sessions, cents: int) -> None:
    """An order for Ada, and what the per-customer recompute after it stores."""
    with transaction(sessions) as session:
        ada = session.query(Customer).filter_by(name="Ada").one()
        session.add(Order(customer_id=ada.id, ordered_at=NOW - timedelta(hours=1), amount_cents=cents,
                          currency="USD", source="api", external_id=f"late-{cents}"))
        session.get(CustomerValue, ada.id).revenue_12m_cents += cents


def test_the_board_carries_the_panel_and_recomputes_it_only_when_the_data_changed_and_not_too_often(sessions):
    cache = insights.BoardCache(refresh_after=timedelta(seconds=15), max_age=timedelta(minutes=5), background=False)
    with transaction(sessions) as session:
        first = cache.figures(session, NOW)
    _order_arrives(sessions, 10000)
    with transaction(sessions) as session:
        # 5 s later: still the cached panel (board publishes can be 0.5 s apart)
        assert cache.figures(session, NOW + timedelta(seconds=5)) is first
        # 20 s later: recomputed with the new order
        fresh = cache.figures(session, NOW + timedelta(seconds=20))
        assert fresh["revenue_12m"] == "1845.00" and fresh["tiers"][0]["revenue"] == "1600.00"
        # nothing changed: kept until max_age
        assert cache.figures(session, NOW + timedelta(minutes=4)) is fresh
        assert cache.figures(session, NOW + timedelta(minutes=6)) is not fresh
        panel = board(session, NOW)["crm"]
    assert panel["tiers"][0]["tier"] == "gold" and panel["customers"] == 8


def test_a_stale_panel_is_served_while_a_background_refresh_computes_the_new_one(sessions):
    cache = insights.BoardCache(refresh_after=timedelta(seconds=15), max_age=timedelta(minutes=5))
    with transaction(sessions) as session:
        first = cache.figures(session, NOW)  # the very first panel is computed in line
    assert first["revenue_12m"] == "1745.00"
    _order_arrives(sessions, 5000)
    with transaction(sessions) as session:
        assert cache.figures(session, NOW + timedelta(seconds=20)) is first  # stale, refresh started
    cache.wait(timeout=60)
    with transaction(sessions) as session:
        assert cache.figures(session, NOW + timedelta(seconds=21))["revenue_12m"] == "1795.00"


def test_the_databases_pareto_curve_is_crm_values_curve(database_url):
    rng = np.random.default_rng(5)
    revenue = [int(v) for v in rng.integers(0, 50_000, 137)] + [0] * 20 + [777] * 5  # ties and non-buyers
    engine = make_engine(database_url)
    try:
        with transaction(make_session_factory(engine, check_routing_cache=True)) as session:
            for i, cents in enumerate(revenue):
                customer = Customer(name=f"C{i}")
                session.add(customer)
                session.flush()
                session.add(CustomerValue(customer_id=customer.id, revenue_12m_cents=cents))
            session.flush()
            for points in (insights.PARETO_POINTS, 101, 2):
                found = insights.pareto_from_values(session, points)
                positive = np.array([v for v in revenue if v > 0], dtype=float)
                _, expected = pareto_curve(positive, points)
                assert found["revenue_share"] == [round(float(v), 4) for v in expected]
                assert found["buyers"] == len(positive)
    finally:
        engine.dispose()


def test_an_empty_crm_gives_an_empty_panel_not_an_error(database_url):
    engine = make_engine(database_url)
    try:
        with transaction(make_session_factory(engine, check_routing_cache=True)) as session:
            panel = insights.board_figures(session, NOW)
    finally:
        engine.dispose()
    assert panel["revenue_12m"] == "0.00" and panel["pareto"]["buyers"] == 0
    assert panel["pareto"]["top_20_percent_share"] is None and set(panel["pareto"]["revenue_share"]) == {0.0}
    assert [row["revenue_share"] for row in panel["tiers"]] == [None, None, None]
    assert all(row["customers"] == 0 for row in panel["cohorts"])
