"""An outbound screening call in a real browser: the console shows the campaign's lead and script with no
offer to accept, "qualified" needs answers that meet the script's rules, and the wallboard shows the
campaign's funnel and why the other leads are not being dialed."""
from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from campaigns.control import change_status
from campaigns.models import Lead
from hub.admin import add_agent
from hub.db import transaction
from hub.services import build_services
from tests.campaigns.helpers import answering_stack, numbers, seed_campaign
from tests.stack import PASSWORD
from tests.test_browser import ARTIFACTS, browser, log_in  # noqa: F401  (browser is a fixture)

pytestmark = pytest.mark.browser

SCRIPT = {
    "questions": [{"key": "owner", "text": "Do you own your home?", "type": "yes_no"},
                  {"key": "bill", "text": "Monthly power bill ($)", "type": "number"}],
    "qualify": [{"key": "owner", "equals": "yes"}, {"key": "bill", "min": 100}],
}


@pytest.fixture
def stack(processes, sqlite_url, redis_client):
    stack = answering_stack(processes, sqlite_url, talk_s=3.0)
    yield stack
    stack.stop()


def test_an_agent_screens_a_lead_in_the_browser_and_the_wallboard_shows_the_campaign(stack, browser):  # noqa: F811
    now = datetime.now(UTC)
    good = numbers(True, 2, now)
    late = numbers(False, 1, now)[0]
    stack.seed([("ana", {})])
    with transaction(stack.sessions) as session:
        add_agent(session, "sue", "Sue", PASSWORD, "supervisor")
    campaign_id = seed_campaign(stack.sessions, ["ana"], [
        dict(phone=good[0], first_name="Alan", last_name="Turing", priority=5),
        dict(phone=late), dict(phone=good[1])], dnc=[good[1]], script=SCRIPT)
    stack.start()
    os.makedirs(ARTIFACTS, exist_ok=True)
    board = log_in(browser, stack.url(), "sue")
    row = board.locator('tr[data-campaign="Solar"]')
    expect(row).to_contain_text("Draft")
    console = log_in(browser, stack.url(), "ana")
    expect(console.locator("#connection")).to_contain_text("Connected")
    console.locator("#btn-available").click()
    expect(console.locator("#presence")).to_contain_text("Available")

    services = build_services(stack.settings)
    try:
        change_status(services, campaign_id, "start")
        script = console.locator("#script")
        expect(script).to_be_visible(timeout=30000)  # connected at once: there is no offer to accept
        expect(console.locator("#offer")).to_be_hidden()
        expect(script).to_contain_text("Alan Turing")
        expect(console.locator("#call-queue")).to_contain_text("Solar (outbound)")
        console.get_by_label("Do you own your home?").select_option("yes")
        console.get_by_label("Monthly power bill ($)").fill("50")
        # the wallboard follows (its pushes are throttled to two a second, later on a loaded machine)
        expect(board.locator('tr[data-agent-login="ana"]')).to_contain_text("On call", timeout=15000)
        expect(row).to_contain_text("Running", timeout=15000)
        expect(row).to_contain_text("outside their calling hours: 1", timeout=15000)
        expect(row).to_contain_text("opted out: 1", timeout=15000)
        expect(row.locator("td.campaign-occupancy")).to_have_text("100.0% (1 of 1)", timeout=15000)  # ana is busy

        # the lead hangs up after 3 s of talk; the answers typed so far survive into wrap-up
        expect(console.locator("#wrapup")).to_be_visible(timeout=20000)
        expect(console.get_by_label("Monthly power bill ($)")).to_have_value("50")
        console.locator("#disposition").select_option("qualified")
        console.locator("#btn-finish").click()
        expect(console.locator("#error")).to_contain_text("do not qualify")
        console.get_by_label("Monthly power bill ($)").fill("150")
        console.screenshot(path=os.path.join(ARTIFACTS, "console-screening.png"))
        console.locator("#btn-finish").click()
        expect(console.locator("#work")).to_contain_text("Idle", timeout=10000)
        expect(row).to_contain_text("1 qualified → 1 handed off → 0 won", timeout=15000)
        board.screenshot(path=os.path.join(ARTIFACTS, "wallboard-campaigns.png"), full_page=True)
    finally:
        services.close()
    with transaction(stack.sessions) as session:
        lead = session.query(Lead).filter_by(phone=good[0]).one()
        assert lead.disposition == "qualified" and lead.status == "done"
        assert lead.answers == {"owner": "yes", "bill": 150}
