"""The /reports page and its CSV through the Flask test client: supervisors only, the viewer's time zone, the
numbers of hub.metrics, campaign rows from the abandon ledger, and cells a spreadsheet cannot run."""
from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from sqlalchemy import select

from campaigns.models import Campaign, DialAttempt, Lead
from hub.app import create_app
from hub.db import transaction
from hub.admin import add_agent
from hub.models import Customer, Queue
from hub.services import build_services
from tests.conftest import make_settings
from tests.test_metrics import NOW, SALES_TODAY, SUPPORT_TODAY, build_known_day

DAY = "from=2024-06-05&to=2024-06-05"


@pytest.fixture
def app(database_url, redis_client):
    settings = make_settings(database_url)
    services = build_services(settings)
    services.clock = lambda: NOW
    app = create_app(settings, services)
    build_known_day(services.sessions)
    yield app
    services.close()


def bearer(client, login: str) -> dict[str, str]:
    token = client.post("/api/v1/auth/token", json={"login": login, "password": "password1"}).get_json()["token"]
    return {"Authorization": f"Bearer {token}"}


def rows_of(response) -> list[dict[str, str]]:
    assert response.status_code == 200 and response.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def test_reports_are_for_supervisors_only(app):
    client = app.test_client()
    anonymous = client.get("/reports")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    assert client.get(f"/reports/data?{DAY}").status_code == 401
    agent = bearer(client, "ana")
    assert client.get("/reports", headers=agent).status_code == 403
    assert client.get(f"/reports/data?{DAY}&tz=UTC", headers=agent).status_code == 403
    assert client.get(f"/reports/queues.csv?{DAY}&tz=UTC", headers=agent).status_code == 403
    page = client.get("/reports", headers=bearer(client, "sue"))
    assert page.status_code == 200
    assert b'<option value="America/New_York">' in page.data and b'id="report-days"' in page.data


def test_the_report_and_its_csv_carry_the_same_numbers_as_the_wallboard(app):
    client = app.test_client()
    sue = bearer(client, "sue")
    data = client.get(f"/reports/data?{DAY}&tz=UTC", headers=sue).get_json()
    queues = {row["queue"]: row for row in data["queues"]}
    assert {k: queues["Support"][k] for k in SUPPORT_TODAY} == SUPPORT_TODAY
    assert {k: queues["Sales"][k] for k in SALES_TODAY} == SALES_TODAY
    assert [c["key"] for c in data["columns"]["queues"]][:3] == ["queue", "target_s", "offered"]

    lines = rows_of(client.get(f"/reports/queues.csv?{DAY}&tz=UTC", headers=sue))
    support = {row["Queue"]: row for row in lines}["Support"]
    assert (support["Offered"], support["Answered in target"], support["Service level"], support["ASA (s)"],
            support["AHT (s)"], support["Abandon rate"]) == ("7", "3", "0.4286", "14.0", "190.0", "0.2857")
    agents = {row["Login"]: row for row in rows_of(client.get(f"/reports/agents.csv?{DAY}&tz=UTC", headers=sue))}
    assert (agents["bob"]["Calls"], agents["bob"]["AHT (s)"]) == ("2", "210.0")
    response = client.get(f"/reports/days.csv?{DAY}&tz=UTC", headers=sue)
    assert 'filename="switchboard-days-2024-06-05-to-2024-06-05.csv"' in response.headers["Content-Disposition"]
    assert [row["Day"] for row in rows_of(response)] == ["2024-06-05"]


def test_the_viewers_time_zone_moves_calls_between_days(app):
    client = app.test_client()
    data = client.get("/reports/data?from=2024-06-04&to=2024-06-05&tz=America/New_York",
                      headers=bearer(client, "sue")).get_json()
    assert [(d["day"], d["offered"]) for d in data["days"]] == [("2024-06-04", 2), ("2024-06-05", 7)]
    assert data["time_zone"] == "America/New_York"


def test_campaign_rows_count_the_ledger_over_the_range(app):
    services = app.extensions["switchboard"]
    with transaction(services.sessions) as session:
        solar = session.scalar(select(Campaign).where(Campaign.name == "Solar"))
        lead = Lead(campaign_id=solar.id, phone="+12125550099")
        session.add(lead)
        session.flush()
        at = NOW - timedelta(hours=1)
        for number, (answered_by, abandoned) in enumerate([("human", False), ("human", True), ("machine_start", False),
                                                           (None, False), ("human", False)], start=1):
            session.add(DialAttempt(idempotency_key=f"{lead.id}:{number}", campaign_id=solar.id, lead_id=lead.id,
                                    number=number, status="done", dialed_at=at, answered_at=at,
                                    answered_by=answered_by, abandoned=abandoned, outcome="human"))
        session.add(DialAttempt(idempotency_key=f"{lead.id}:9", campaign_id=solar.id, lead_id=lead.id, number=9,
                                status="done", dialed_at=at - timedelta(days=3), outcome="no_answer"))  # out of range
    client = app.test_client()
    data = client.get(f"/reports/data?{DAY}&tz=UTC", headers=bearer(client, "sue")).get_json()
    solar = {row["campaign"]: row for row in data["campaigns"]}["Solar"]
    # live answers: three people and one unknown (AMD undecided counts as a person); one machine
    assert (solar["dials"], solar["live_answers"], solar["machines"], solar["abandoned"]) == (5, 4, 1, 1)
    assert (solar["abandon_rate"], solar["abandon_limit"], solar["connected"], solar["qualified"]) == (0.25, 0.03, 1, 1)


def test_csv_cells_cannot_run_as_spreadsheet_formulas(app):
    services = app.extensions["switchboard"]
    with transaction(services.sessions) as session:
        session.scalar(select(Queue).where(Queue.name == "Sales")).name = '=HYPERLINK("http://x.test","Sales")'
    client = app.test_client()
    names = [row["Queue"] for row in rows_of(client.get(f"/reports/queues.csv?{DAY}&tz=UTC",
                                                        headers=bearer(client, "sue")))]
    assert "'=HYPERLINK(\"http://x.test\",\"Sales\")" in names and not any(n.startswith("=") for n in names)


@pytest.mark.parametrize(("query", "message"), [
    ("from=2024-06-05&to=2024-06-05&tz=Mars/Base", "unknown time zone"),
    ("from=yesterday&to=2024-06-05&tz=UTC", "from must be a date"),
    ("from=2024-06-05&tz=UTC", "to must be a date"),
    ("from=2024-06-05&to=2024-06-01&tz=UTC", "before it starts"),
    ("from=2020-01-01&to=2024-06-01&tz=UTC", "at most 366 days"),
])
def test_a_bad_report_request_gets_a_400_that_says_why(app, query, message):
    client = app.test_client()
    sue = bearer(client, "sue")
    for path in ("/reports/data", "/reports/days.csv"):
        response = client.get(f"{path}?{query}", headers=sue)
        assert response.status_code == 400 and message in response.get_json()["message"]
    unknown = client.get(f"/reports/calls.csv?{DAY}&tz=UTC", headers=sue)
    assert unknown.status_code == 400 and "no such report" in unknown.get_json()["message"]


def test_the_charting_library_is_served_by_the_hub(app):
    response = app.test_client().get("/assets/chart.umd.min.js")
    assert response.status_code == 200 and response.mimetype == "text/javascript"
    assert b"Chart.js v4.5.1" in response.data[:200]


# ---------------------------------------------------------------- the CRM's tables


@pytest.fixture
def crm_app(database_url, redis_client):
    from tests.test_crm_insights import build_known_crm

    settings = make_settings(database_url)
    services = build_services(settings)
    services.clock = lambda: NOW
    app = create_app(settings, services)
    with transaction(services.sessions) as session:
        add_agent(session, "sue", "Sue", "password1", "supervisor")
        add_agent(session, "ana", "Ana", "password1", "agent", {"support": 1})
    build_known_crm(services.sessions)
    yield app
    services.close()


def test_the_crm_tables_and_their_csv_carry_the_hand_computed_rates(crm_app):
    client = crm_app.test_client()
    sue = bearer(client, "sue")
    query = "from=2024-02-01&to=2024-06-30&tz=UTC"
    data = client.get(f"/reports/data?{query}", headers=sue).get_json()
    months = {row["month"]: row for row in data["months"]}
    assert [(m, months[m]["churn_rate"], months[m]["repeat_rate"]) for m in months] == [
        ("2024-02", None, None), ("2024-03", 0.0, None), ("2024-04", 0.25, 0.0), ("2024-05", 0.25, 0.6667),
        ("2024-06", 0.0, None)]  # worked out in tests/test_crm_insights.py
    assert {c["label"] for c in data["columns"]["tiers"]} >= {"Revenue (USD)", "Share of revenue"}

    lines = {row["Month"]: row for row in rows_of(client.get(f"/reports/months.csv?{query}", headers=sue))}
    may = lines["2024-05"]
    assert (may["Period"], may["Active at start"], may["Lapsed or churned"], may["Churn rate"], may["Buyers"],
            may["Had bought before"], may["Repeat-customer rate"], may["Revenue (USD)"]) == (
        "whole month", "4", "1", "0.25", "3", "2", "0.6667", "435.00")
    assert lines["2024-06"]["Period"] == "to date" and lines["2024-02"]["Churn rate"] == ""
    tiers = {row["Tier"]: row for row in rows_of(client.get(f"/reports/tiers.csv?{query}", headers=sue))}
    assert [(t, tiers[t]["Customers now"], tiers[t]["Revenue (USD)"], tiers[t]["Share of revenue"])
            for t in ("gold", "silver", "standard")] == [("gold", "2", "400.00", "0.7619"),
                                                         ("silver", "2", "110.00", "0.2095"),
                                                         ("standard", "4", "15.00", "0.0286")]
    response = client.get(f"/reports/tiers.csv?{query}", headers=sue)
    assert 'filename="switchboard-tiers-2024-02-01-to-2024-06-30.csv"' in response.headers["Content-Disposition"]


def test_the_crm_months_follow_the_viewers_time_zone(crm_app):
    client = crm_app.test_client()
    sue = bearer(client, "sue")
    utc = client.get("/reports/data?from=2024-03-01&to=2024-04-30&tz=UTC", headers=sue).get_json()
    new_york = client.get("/reports/data?from=2024-03-01&to=2024-04-30&tz=America/New_York", headers=sue).get_json()
    # Di lapsed at 01:00 UTC on 1 April: April in UTC, 31 March in New York
    assert [row["churned"] for row in utc["months"]] == [0, 1]
    assert [row["churned"] for row in new_york["months"]] == [1, 0]
    assert [row["repeat_rate"] for row in new_york["months"]] == [0.0, 1.0]


def test_crm_csv_cells_cannot_run_as_formulas_and_agents_cannot_read_them(crm_app):
    services = crm_app.extensions["switchboard"]
    with transaction(services.sessions) as session:
        session.add(Customer(name="Mallory", value_tier="=1+2"))
    client = crm_app.test_client()
    query = "from=2024-05-01&to=2024-05-31&tz=UTC"
    tiers = [row["Tier"] for row in rows_of(client.get(f"/reports/tiers.csv?{query}", headers=bearer(client, "sue")))]
    assert "'=1+2" in tiers and not any(t.startswith("=") for t in tiers)
    agent = bearer(client, "ana")
    for path in ("/reports/months.csv", "/reports/tiers.csv", "/reports/data"):
        assert client.get(f"{path}?{query}", headers=agent).status_code == 403
