"""The console's in-call controls in a real browser (Debian's Chromium via Playwright) against the real web and
worker processes and the carrier simulator: hold, resume, a note, hang-up and a disposition by keyboard, and
an unknown caller named from the screen pop."""
from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect

from tests.conftest import wait_until
from tests.stack import QUEUE_NUMBER, Stack
from tests.test_browser import ARTIFACTS, browser, log_in  # noqa: F401  (the browser fixture)
from tests.test_call_controls import GRACE, STRANGER, _participant

pytestmark = pytest.mark.browser


@pytest.fixture
def stack(processes, sqlite_url, redis_client):
    stack = Stack(processes, sqlite_url)
    yield stack
    stack.stop()


def _take_call(stack, console, caller):
    console.locator("#btn-available").click()
    expect(console.locator("#presence")).to_contain_text("Available")
    sid = stack.sim.place_inbound_call(caller, QUEUE_NUMBER, talk_seconds=120, patience_seconds=60)
    expect(console.locator("#offer")).to_be_visible(timeout=15000)
    console.get_by_role("button", name="Accept").click()
    expect(console.locator("#call")).to_be_visible(timeout=15000)
    wait_until(lambda: _participant(stack, sid), message="the caller in the conference")
    return sid


def test_an_agent_holds_resumes_writes_a_note_hangs_up_and_dispositions(stack, browser):  # noqa: F811
    stack.seed([("ana", {"support": 1})], wrap_up_s=120)
    stack.start()
    os.makedirs(ARTIFACTS, exist_ok=True)
    console = log_in(browser, stack.url(), "ana")
    sid = _take_call(stack, console, GRACE)

    hold = console.get_by_role("button", name="Hold the caller")
    expect(hold).to_be_enabled(timeout=15000)
    hold.click()
    resume = console.get_by_role("button", name="Take the caller off hold")
    expect(resume).to_have_attribute("aria-pressed", "true", timeout=10000)
    expect(console.locator("#call-flags")).to_contain_text("on hold")
    assert _participant(stack, sid)["hold"] is True
    console.screenshot(path=os.path.join(ARTIFACTS, "console-on-hold.png"))
    console.keyboard.press("o")  # the hold shortcut resumes
    expect(console.get_by_role("button", name="Hold the caller")).to_have_attribute("aria-pressed", "false",
                                                                                    timeout=10000)
    assert _participant(stack, sid)["hold"] is False

    console.keyboard.press("n")  # the note shortcut
    expect(console.get_by_label("Note while talking")).to_be_focused()
    console.keyboard.type("Asked about the April invoice")
    console.get_by_role("button", name="Save note").click()
    expect(console.get_by_role("list", name="Notes on this call")).to_contain_text("Asked about the April invoice")
    console.reload()  # the note survives a reload: it is on the server
    expect(console.get_by_role("list", name="Notes on this call")).to_contain_text("Asked about the April invoice",
                                                                                   timeout=15000)

    console.locator("body").click()
    console.keyboard.press("h")  # hang up
    expect(console.locator("#wrapup")).to_be_visible(timeout=20000)
    console.keyboard.press("1")  # the first disposition
    expect(console.get_by_label("Disposition")).to_have_value("resolved")
    console.get_by_label("Note", exact=True).fill("Invoice resent")
    console.get_by_role("button", name="Finish wrap-up").click()
    expect(console.locator("#work")).to_contain_text("Idle", timeout=10000)
    call = stack.wait_for_call(sid, lambda c: c.disposition == "resolved", "the disposition")
    assert call.note == "Asked about the April invoice\nInvoice resent"


def test_an_unknown_caller_is_created_as_a_customer_from_the_screen_pop(stack, browser):  # noqa: F811
    stack.seed([("ana", {"support": 1})])
    stack.start()
    console = log_in(browser, stack.url(), "ana")
    sid = _take_call(stack, console, STRANGER)
    expect(console.locator("#customer-unknown")).to_be_visible()
    console.get_by_label("Find a customer (name, number or email)").fill("nobody-like-this")
    console.get_by_role("button", name="Search").click()
    expect(console.get_by_role("list", name="Matching customers")).to_contain_text("No customer matches")
    console.get_by_label("New customer name").fill("Ada Lovelace")
    console.get_by_label("New customer email").fill("ada@example.org")
    console.get_by_role("button", name="Create customer").click()
    expect(console.locator("#customer-name")).to_have_text("Ada Lovelace", timeout=10000)
    expect(console.locator("#unknown-caller")).to_be_hidden()
    console.screenshot(path=os.path.join(ARTIFACTS, "console-unknown-caller-named.png"))
    call = stack.call_row(sid)
    assert call.customer.name == "Ada Lovelace" and call.customer.email == "ada@example.org"


def test_a_caller_with_orders_pops_with_tier_lifetime_value_and_order_history(stack, browser):  # noqa: F811
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import select

    from crm.models import CustomerValue
    from crm.orders import add_order
    from crm.recompute import recompute_all
    from hub.db import transaction
    from hub.models import Customer

    stack.seed([("ana", {"support": 1})])
    now = datetime.now(UTC)
    with transaction(stack.sessions) as session:
        grace = session.scalar(select(Customer).where(Customer.name == "Grace Hopper"))
        for i, amount in enumerate((120, 80, 200, 95)):
            add_order(session, grace.id, {"ordered_at": (now - timedelta(days=300 - 70 * i)).isoformat(),
                                          "amount": amount, "product": "Widget", "order_id": f"w{i}"}, "api", now)
        grace_id = grace.id
    recompute_all(stack.sessions, now)  # the CRM's recompute: the value row, a tier change on the timeline
    with transaction(stack.sessions) as session:
        # the model's figures (a population too small to fit one here; the fit has its own tests)
        value = session.get(CustomerValue, grace_id)
        value.clv_cents, value.p_alive, value.churn_risk = 123456, 0.73, True
        value.churn_reason = "no purchase for 90 days, twice the usual gap"
        tier, stage = session.get(Customer, grace_id).value_tier, session.get(Customer, grace_id).lifecycle_stage
    stack.start()
    console = log_in(browser, stack.url(), "ana")
    _take_call(stack, console, GRACE)

    expect(console.locator("#customer-name")).to_have_text("Grace Hopper")
    expect(console.locator("#customer-tier")).to_have_text(f"{tier.title()} tier")
    expect(console.locator("#customer-stage")).to_have_text(stage.replace("_", " ").capitalize())
    expect(console.locator("#customer-clv")).to_have_text("$1,234.56")
    expect(console.locator("#customer-alive")).to_have_text("73%")
    expect(console.locator("#customer-orders")).to_have_text("4")
    expect(console.locator("#customer-revenue")).to_have_text("$495.00")
    expect(console.get_by_role("note")).to_have_text("Churn risk: no purchase for 90 days, twice the usual gap")
    timeline = console.locator("#timeline")
    expect(timeline.locator("[data-kind=order]")).to_have_count(4)
    expect(timeline.locator("[data-kind=order]").first).to_contain_text("Order")
    expect(timeline.locator("[data-kind=tier] .timeline-kind")).to_have_text("Tier change")  # gold -> standard
    expect(timeline.locator("[data-kind=tier]")).to_contain_text(f"-> {tier}")
    console.screenshot(path=os.path.join(ARTIFACTS, "console-screen-pop-value.png"))
