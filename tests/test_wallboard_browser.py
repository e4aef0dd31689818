"""The wallboard's figures, charts and alerts, and the reports page, in a real browser (Debian's Chromium driven
by Playwright) against the real web and worker processes and the carrier simulator."""
from __future__ import annotations

import csv
import functools
import os
import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from crm.models import Order, StageChange
from hub.admin import add_agent
from hub.db import transaction
from hub.models import Customer
from tests.stack import PASSWORD, QUEUE_NUMBER, Stack
from tests.test_crm_insights import store_values
from tests.test_browser import ARTIFACTS, browser, log_in  # noqa: F401  (browser is a fixture)

pytestmark = pytest.mark.browser

CHART_TOTAL = """([id, index]) => {
  const chart = window.Chart && window.Chart.getChart(id);
  return chart ? chart.data.datasets[index].data.reduce((sum, v) => sum + (v || 0), 0) : -1;
}"""


@pytest.fixture
def stack(processes, sqlite_url, redis_client):
    stack = Stack(processes, sqlite_url)
    yield stack
    stack.stop()


def fact(board, name: str):
    return board.locator(f'.queue-tile[data-queue="Support"] [data-fact="{name}"] dd')


def chart_total(board, chart: str, dataset: int) -> float:
    return board.evaluate(CHART_TOTAL, [chart, dataset])


def test_the_wallboard_shows_figures_charts_and_alerts_and_reports_agree(stack, browser):  # noqa: F811
    stack.seed([("ana", {"support": 1})], wrap_up_s=120)
    with transaction(stack.sessions) as session:
        add_agent(session, "sue", "Sue", PASSWORD, "supervisor")
    stack.start()
    os.makedirs(ARTIFACTS, exist_ok=True)

    board = log_in(browser, stack.url(), "sue")
    expect(board).to_have_url(stack.url() + "/supervisor")
    expect(fact(board, "aht")).to_have_text("—")
    expect(fact(board, "forecast")).to_have_text("—")  # no call handled yet: no AHT for Erlang
    expect(board.locator("#alerts")).to_be_empty()
    assert chart_total(board, "calls-chart", 0) == 0  # the chart exists, with nothing answered yet

    # a simulated call, answered within the 20 s target, talked for 2 s and wrapped up
    ana = stack.agent("ana")
    assert ana.call("set_presence", {"presence": "available"}) == {"ok": True}
    sid = stack.sim.place_inbound_call("+12125550001", QUEUE_NUMBER, talk_seconds=2, patience_seconds=60)
    ana.wait_for(lambda s: s["offer"] and s["offer"]["call_sid"] == sid, what="the offer")
    assert ana.call("accept", {"call_sid": sid}) == {"ok": True}
    ana.wait_for(lambda s: s["agent"]["work"] == "wrap_up", what="wrap-up")
    assert ana.call("wrap_up", {"call_sid": sid, "disposition": "resolved", "note": ""}) == {"ok": True}
    ana.wait_for(lambda s: s["agent"]["work"] == "idle", what="idle after wrap-up")

    expect(fact(board, "answered")).to_have_text("1", timeout=15000)
    expect(fact(board, "service_level")).to_have_text("100%", timeout=15000)
    expect(fact(board, "aht")).not_to_have_text("—", timeout=15000)
    expect(fact(board, "asa")).not_to_have_text("—")
    expect(fact(board, "forecast")).to_have_text("100%")  # one call an hour, one agent: Erlang says all in time
    expect(board.locator('tr[data-agent-login="ana"] .agent-aht')).not_to_have_text("—")
    board.wait_for_function(f"() => ({CHART_TOTAL})(['calls-chart', 0]) === 1", timeout=15000)
    assert chart_total(board, "calls-chart", 3) == 100  # the service-level line: 100 % in that quarter hour

    # ana takes a break; the next caller gives up after 2 s: service level 50 %, and nobody staffed
    assert ana.call("set_presence", {"presence": "break", "reason": "lunch"}) == {"ok": True}
    lost = stack.sim.place_inbound_call("+12125550001", QUEUE_NUMBER, talk_seconds=2, patience_seconds=2)
    stack.wait_for_call(lost, lambda c: c.routing_state == "ended", "the abandoned call")
    alerts = board.get_by_role("alert").filter(has_text="Support")
    expect(alerts).to_contain_text("Support: service level today is 50%, below the 80% goal", timeout=15000)
    expect(alerts).to_contain_text("forecast service level for the next 15 minutes is 0%")
    expect(fact(board, "abandon_rate")).to_have_text("50%")
    board.wait_for_function(f"() => ({CHART_TOTAL})(['calls-chart', 1]) === 1", timeout=15000)
    assert chart_total(board, "abandon-chart", 1) > 0  # the abandon rate so far
    board.screenshot(path=os.path.join(ARTIFACTS, "wallboard-metrics.png"), full_page=True)

    # the reports page: the browser's time zone by default, a table, and the same numbers as CSV
    context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="America/New_York",
                                  accept_downloads=True)
    reports = context.new_page()
    reports.goto(stack.url() + "/login?next=/reports")
    reports.get_by_label("Login").fill("sue")
    reports.get_by_label("Password").fill(PASSWORD)
    reports.get_by_role("button", name="Log in").click()
    expect(reports).to_have_url(re.compile(r"/reports\?from=.*&tz=America%2FNew_York$"), timeout=10000)
    expect(reports.locator("#report-tz")).to_have_value("America/New_York")
    support = reports.locator("#report-queues tbody tr").filter(has_text="Support")
    expect(support.locator('td[data-key="offered"]')).to_have_text("2", timeout=10000)
    expect(support.locator('td[data-key="service_level"]')).to_have_text("50.0%")
    expect(reports.locator("#report-status")).to_contain_text("America/New_York")
    reports.screenshot(path=os.path.join(ARTIFACTS, "reports.png"), full_page=True)
    with reports.expect_download() as download:
        reports.locator("#csv-queues").click()
    with open(download.value.path(), newline="") as f:
        rows = {row["Queue"]: row for row in csv.DictReader(f)}
    assert (rows["Support"]["Offered"], rows["Support"]["Abandoned"], rows["Support"]["Service level"]) == (
        "2", "1", "0.5")
    assert download.value.suggested_filename.startswith("switchboard-queues-")

    # an agent cannot open the reports
    console = log_in(browser, stack.url(), "ana")
    expect(console).to_have_url(stack.url() + "/agent")
    assert console.goto(stack.url() + "/reports").status == 403
    assert console.goto(stack.url() + "/reports/queues.csv?from=2024-01-01&to=2024-01-01&tz=UTC").status == 403


def _month_day(now: datetime, months_back: int, day: int = 15) -> datetime:
    """Noon UTC on `day` of the month `months_back` before now's month."""
    index = now.year * 12 + now.month - 1 - months_back
    return datetime(index // 12, index % 12 + 1, day, 12, tzinfo=UTC)


def build_recent_crm(sessions, now: datetime) -> dict[str, str]:
    """Six customers with orders in the last months (relative to the real clock, which the stack uses); return
    the months the assertions name (YYYY-MM)."""
    back = functools.partial(_month_day, now)
    customers = {  # name: (tier, stage now, [(months back, cents)])
        "Ada": ("gold", "loyal", [(3, 50000), (1, 40000)]),
        "Bo": ("gold", "repeat_buyer", [(2, 50000), (1, 10000)]),
        "Cy": ("silver", "first_time_buyer", [(2, 12000)]),
        "Ed": ("silver", "lapsed", [(4, 11000)]),
        "Hal": ("standard", "churned", [(14, 1500)]),
        "Flo": ("standard", "prospect", []),
    }
    with transaction(sessions) as s:
        for name, (tier, stage, orders) in customers.items():
            customer = Customer(name=name, value_tier=tier, lifecycle_stage=stage, created_at=now - timedelta(days=800))
            s.add(customer)
            s.flush()
            for number, (months, cents) in enumerate(orders):
                s.add(Order(customer_id=customer.id, ordered_at=back(months), amount_cents=cents, currency="USD",
                            source="import", external_id=f"{name}-{number}"))
            store_values(s, customer.id, [(back(months), cents) for months, cents in orders], now)
            if name == "Ed":  # lapsed in the middle of last month
                s.add(StageChange(customer_id=customer.id, changed_at=back(1), from_stage="repeat_buyer",
                                  to_stage="lapsed", reason="no purchase for 120 days"))
    return {"two_back": back(2).strftime("%Y-%m"), "one_back": back(1).strftime("%Y-%m"),
            "two_back_first_day": back(2, 1).date().isoformat()}


def test_the_supervisor_sees_the_crm_panel_and_report_tables_and_an_agent_does_not(stack, browser):  # noqa: F811
    stack.seed([("ana", {"support": 1})])
    with transaction(stack.sessions) as session:
        add_agent(session, "sue", "Sue", PASSWORD, "supervisor")
    now = datetime.now(UTC)
    months = build_recent_crm(stack.sessions, now)
    stack.start()
    os.makedirs(ARTIFACTS, exist_ok=True)

    board = log_in(browser, stack.url(), "sue")
    expect(board.locator("#crm")).to_have_attribute("data-ready", "true", timeout=15000)
    # last 12 months: gold Ada 900 + Bo 600, silver Cy 120 + Ed 110, standard nothing (Hal's order is older)
    gold = board.locator('#crm-tiers tr[data-tier="gold"]')
    expect(gold.locator(".crm-revenue")).to_have_text("$1,500")
    expect(gold.locator(".crm-share")).to_have_text("86.7%")
    expect(board.locator('#crm-tiers tr[data-tier="standard"] .crm-revenue')).to_have_text("$0")
    # the top 20% of 4 buyers is 0.8 of Ada: 0.8 x 900 / 1730
    expect(board.locator("#crm-headline")).to_contain_text("the top 20% of them brought 41.6%")
    assert board.evaluate(CHART_TOTAL, ["stages-chart", 0]) == 7  # the six and stack.seed's Grace Hopper (loyal)
    stages = board.evaluate("() => window.Chart.getChart('stages-chart').data.datasets[0].data")
    assert stages == [1, 1, 1, 2, 0, 1, 1]  # prospect .. churned, in the order of hub.models.Stage
    pareto_end = board.evaluate("() => window.Chart.getChart('pareto-chart').data.datasets[0].data.at(-1).y")
    assert pareto_end == 100
    # Bo and Cy first bought two months back; Bo again the month after: 50 % in month 1, nobody in month 2
    cohort = board.locator(f'#crm-cohorts tr[data-cohort="{months["two_back"]}"] td')
    expect(cohort.nth(0)).to_have_text("2", use_inner_text=False)
    expect(cohort.nth(1)).to_have_text("50.0%", use_inner_text=False)
    labels = board.evaluate("() => window.Chart.getChart('cohorts-chart').data.datasets.map((d) => d.label)")
    assert f"{months['two_back']} (2)" in labels
    board.locator(".crm-cohorts summary").click()
    board.locator("#crm").screenshot(path=os.path.join(ARTIFACTS, "wallboard-crm.png"))

    context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="UTC", accept_downloads=True)
    reports = context.new_page()
    reports.goto(stack.url() + f"/login?next=/reports%3Ffrom%3D{months['two_back_first_day']}%26to%3D"
                 f"{now.date().isoformat()}%26tz%3DUTC")
    reports.get_by_label("Login").fill("sue")
    reports.get_by_label("Password").fill(PASSWORD)
    reports.get_by_role("button", name="Log in").click()
    # last month: Ada, Bo, Cy and Ed active at its start, Ed lapsed; Ada and Bo both had bought before
    last_month = reports.locator("#report-months tbody tr").filter(has_text=months["one_back"])
    expect(last_month.locator('td[data-key="churn_rate"]')).to_have_text("25.0%", timeout=10000)
    expect(last_month.locator('td[data-key="repeat_rate"]')).to_have_text("100.0%")
    two_back = reports.locator("#report-months tbody tr").filter(has_text=months["two_back"])
    expect(two_back.locator('td[data-key="repeat_rate"]')).to_have_text("0.0%")  # Bo and Cy bought first
    gold_row = reports.locator("#report-tiers tbody tr").filter(has_text="gold")
    expect(gold_row.locator('td[data-key="revenue"]')).to_have_text("$1,000.00")  # Ada 400 + Bo 500 + 100
    expect(gold_row.locator('td[data-key="revenue_share"]')).to_have_text("89.3%")  # of 1,120.00
    reports.evaluate("() => document.getElementById('report-months-title').scrollIntoView({ block: 'start' })")
    reports.screenshot(path=os.path.join(ARTIFACTS, "reports-crm.png"))
    with reports.expect_download() as download:
        reports.locator("#csv-months").click()
    with open(download.value.path(), newline="") as f:
        rows = {row["Month"]: row for row in csv.DictReader(f)}
    assert (rows[months["one_back"]]["Churn rate"], rows[months["one_back"]]["Revenue (USD)"]) == ("0.25", "500.00")

    # an agent sees neither the wallboard nor the CRM's report tables
    console = log_in(browser, stack.url(), "ana")
    expect(console).to_have_url(stack.url() + "/agent")
    expect(console.locator("#crm")).to_have_count(0)
    assert console.goto(stack.url() + "/supervisor").status == 403
    for section in ("months", "tiers"):
        assert console.goto(stack.url() + f"/reports/{section}.csv?from=2024-01-01&to=2024-01-31&tz=UTC").status == 403
