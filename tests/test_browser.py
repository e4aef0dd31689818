"""The console and the wallboard in a real browser: Debian's Chromium driven by Playwright, against the real
web and worker processes and the carrier simulator."""
from __future__ import annotations

import os
import shutil

import pytest
from playwright.sync_api import expect, sync_playwright

from hub.admin import add_agent
from hub.db import transaction
from tests.conftest import ROOT
from tests.stack import PASSWORD, QUEUE_NUMBER, Stack

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = os.path.join(ROOT, "test-artifacts")
pytestmark = pytest.mark.browser


@pytest.fixture
def stack(processes, sqlite_url, redis_client):
    stack = Stack(processes, sqlite_url)
    yield stack
    stack.stop()


@pytest.fixture
def browser():
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic"],
        )
        yield browser
        browser.close()


def log_in(browser, base_url: str, login: str):
    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    page.goto(base_url + "/login")
    page.get_by_label("Login").fill(login)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    return page


def test_an_agent_takes_a_call_in_the_browser_and_the_wallboard_follows(stack, browser):
    stack.seed([("ana", {"support": 1})], wrap_up_s=120)
    with transaction(stack.sessions) as session:
        add_agent(session, "sue", "Sue", PASSWORD, "supervisor")
    stack.start()
    os.makedirs(ARTIFACTS, exist_ok=True)

    board = log_in(browser, stack.url(), "sue")
    expect(board).to_have_url(stack.url() + "/supervisor")
    ana_row = board.locator('tr[data-agent-login="ana"]')
    expect(ana_row).to_contain_text("Offline")

    console = log_in(browser, stack.url(), "ana")
    expect(console).to_have_url(stack.url() + "/agent")
    expect(console.locator("#connection")).to_contain_text("Connected")
    console.locator("#btn-available").click()
    expect(console.locator("#presence")).to_contain_text("Available")
    expect(ana_row).to_contain_text("Available")

    sid = stack.sim.place_inbound_call("+12125550001", QUEUE_NUMBER, talk_seconds=2, patience_seconds=60)
    expect(console.locator("#offer")).to_be_visible(timeout=15000)
    expect(console.locator("#customer-name")).to_have_text("Grace Hopper")
    expect(board.locator("#calls")).to_contain_text("Grace Hopper")
    expect(board.locator("#calls")).to_contain_text("longest idle")  # why routing chose ana
    console.screenshot(path=os.path.join(ARTIFACTS, "console-offer.png"))

    console.keyboard.press("a")  # the accept shortcut
    expect(console.locator("#call")).to_be_visible(timeout=15000)
    expect(console.locator("#call")).to_contain_text("Connected")
    expect(ana_row).to_contain_text("On call")
    # the simulated caller hangs up after 2 s of talk: wrap-up, with a required disposition
    expect(console.locator("#wrapup")).to_be_visible(timeout=20000)
    expect(ana_row).to_contain_text("Wrap-up")
    console.locator("#btn-finish").click()
    expect(console.locator("#error")).not_to_be_empty()
    console.locator("#disposition").select_option("resolved")
    console.locator("#note").fill("Router reset; working again")
    console.screenshot(path=os.path.join(ARTIFACTS, "console-wrapup.png"))
    console.locator("#btn-finish").click()
    expect(console.locator("#work")).to_contain_text("Idle", timeout=10000)
    expect(board.locator('.queue-tile[data-queue="Support"]')).to_contain_text("1")
    board.screenshot(path=os.path.join(ARTIFACTS, "wallboard.png"), full_page=True)

    call = stack.call_row(sid)
    assert call.disposition == "resolved" and call.note == "Router reset; working again"
    # the call and its disposition now show on the customer's timeline in the console's next screen pop
    assert call.customer.name == "Grace Hopper"


def test_a_console_reconnects_after_the_server_restarts_and_shows_no_phantom_state(stack, browser, processes):
    stack.seed([("ana", {"support": 1})])
    stack.start()
    console = log_in(browser, stack.url(), "ana")
    console.locator("#btn-available").click()
    expect(console.locator("#presence")).to_contain_text("Available")
    web = processes.children[0][0]
    web.terminate()
    web.wait(timeout=10)
    expect(console.locator("#connection")).not_to_contain_text("Connected", timeout=10000)
    # a supervisor (here: the database) changes her state while she is away
    with transaction(stack.sessions) as session:
        from hub.models import Agent

        session.query(Agent).filter_by(login="ana").update({"presence": "break", "break_reason": "meeting"})
    from tests.conftest import settings_env

    processes.start("web0-again", ["serve", "--port", str(stack.ports[0])], settings_env(stack.settings),
                    port=stack.ports[0])
    expect(console.locator("#connection")).to_contain_text("Connected", timeout=20000)
    expect(console.locator("#presence")).to_contain_text("Break", timeout=10000)


def test_logging_out_cuts_the_open_console_within_a_second_and_stops_calls(stack, browser):
    stack.seed([("ana", {"support": 1})])
    stack.start()
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    console = context.new_page()
    console.goto(stack.url() + "/login")
    console.get_by_label("Login").fill("ana")
    console.get_by_label("Password").fill(PASSWORD)
    console.get_by_role("button", name="Log in").click()
    console.locator("#btn-available").click()
    expect(console.locator("#presence")).to_contain_text("Available")
    other_tab = context.new_page()  # same session, another tab
    other_tab.goto(stack.url() + "/agent")
    other_tab.get_by_role("button", name="Log out").click()
    expect(other_tab).to_have_url(stack.url() + "/login")
    expect(console.locator("#connection")).not_to_contain_text("Connected", timeout=1500)
    with transaction(stack.sessions) as session:
        from hub.models import Agent

        assert session.query(Agent).filter_by(login="ana").one().presence == "offline"
