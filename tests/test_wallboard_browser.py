"""The wallboard's figures, charts and alerts, and the reports page, in a real browser (Debian's Chromium driven
by Playwright) against the real web and worker processes and the carrier simulator."""
from __future__ import annotations

import csv
import os
import re

import pytest
from playwright.sync_api import expect

from hub.admin import add_agent
from hub.db import transaction
from tests.stack import PASSWORD, QUEUE_NUMBER, Stack
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
