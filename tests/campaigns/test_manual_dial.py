"""Manual dial from the console: a typed number goes through the same compliance gate as the dialer's leads.

Flow-level cases run on SQLite and PostgreSQL with a fixed clock; the end-to-end case drives a real console
socket against the hub's web and worker processes and the carrier simulator, which checks the REST call."""
from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from campaigns import manual
from campaigns.control import change_status
from campaigns.models import CampaignAgent, DialAttempt, Lead
from hub.admin import add_agent
from hub.db import transaction
from hub.errors import FlowError
from hub.models import Agent
from hub.services import build_services
from tests.campaigns.helpers import answering_stack, numbers, seed_campaign
from tests.conftest import make_settings
from tests.test_browser import ARTIFACTS, browser, log_in  # noqa: F401  (browser is a fixture)

NEW_YORK = "+12125550111"
NIGHT_IN_NEW_YORK = datetime(2026, 11, 23, 3, 30, tzinfo=UTC)  # 22:30 EST
DAY_IN_NEW_YORK = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)  # 11:00 EST


@pytest.fixture
def services(database_url, redis_client):
    services = build_services(make_settings(database_url))
    yield services
    services.close()


def _seed(services, *, member: bool = True, leads=(), dnc=()) -> tuple[int, int]:
    with transaction(services.sessions) as s:
        agent = add_agent(s, "ana", "Ana", "password1")
        agent.presence = "available"
        agent_id = agent.id
    campaign_id = seed_campaign(services.sessions, ["ana"] if member else [], list(leads), dnc=list(dnc),
                                status="running")
    return agent_id, campaign_id


def _leads(services) -> list[Lead]:
    with transaction(services.sessions) as s:
        rows = list(s.scalars(select(Lead)))
        s.expunge_all()
        return rows


def test_a_number_outside_its_calling_window_is_refused_with_the_reason_and_not_left_for_the_dialer(services):
    agent_id, campaign_id = _seed(services)
    services.clock = lambda: NIGHT_IN_NEW_YORK
    with pytest.raises(FlowError, match="may not be called now") as refused:
        manual.manual_dial(services, agent_id, campaign_id, "(212) 555-0111")
    assert refused.value.status == 409 and "08:00" in refused.value.message
    [lead] = _leads(services)
    # kept with its reason, but closed: the campaign's dialer must not call it behind the agent's back
    assert (lead.phone, lead.list_name, lead.status, lead.skip_code) == (NEW_YORK, "manual dial", "done",
                                                                        "outside_window")
    with transaction(services.sessions) as s:
        assert s.scalar(select(DialAttempt.id)) is None


def test_a_number_on_the_do_not_call_list_is_refused_at_any_hour(services):
    agent_id, campaign_id = _seed(services, dnc=[NEW_YORK])
    services.clock = lambda: DAY_IN_NEW_YORK
    with pytest.raises(FlowError, match="may not be called now"):
        manual.manual_dial(services, agent_id, campaign_id, NEW_YORK)
    [lead] = _leads(services)
    assert lead.status == "done" and lead.skip_code == "dnc_internal"


def test_a_campaign_lead_keeps_its_place_when_a_manual_dial_is_refused(services):
    agent_id, campaign_id = _seed(services, leads=[dict(phone=NEW_YORK, status="ready", list_name="spring")])
    services.clock = lambda: NIGHT_IN_NEW_YORK
    with pytest.raises(FlowError, match="may not be called now"):
        manual.manual_dial(services, agent_id, campaign_id, NEW_YORK)
    [lead] = _leads(services)
    assert (lead.status, lead.list_name, lead.skip_code) == ("ready", "spring", "outside_window")
    assert lead.next_check_at is not None  # the dialer looks again when the window opens


def test_only_the_campaigns_agents_may_dial_and_only_a_valid_number_that_is_not_being_worked(services):
    agent_id, campaign_id = _seed(services, member=False,
                                  leads=[dict(phone="+13125550111", status="done", attempts=1)])
    services.clock = lambda: DAY_IN_NEW_YORK
    with pytest.raises(FlowError, match="not an agent of that campaign") as refused:
        manual.manual_dial(services, agent_id, campaign_id, NEW_YORK)
    assert refused.value.status == 403
    with transaction(services.sessions) as s:
        s.add(CampaignAgent(campaign_id=campaign_id, agent_id=agent_id))
    with pytest.raises(FlowError) as bad:
        manual.manual_dial(services, agent_id, campaign_id, "555")
    assert bad.value.status == 400 and "phone" in bad.value.message
    with pytest.raises(FlowError, match="closed with a final outcome"):
        manual.manual_dial(services, agent_id, campaign_id, "+1 312 555 0111")
    with transaction(services.sessions) as s:
        s.get(Agent, agent_id).presence = "break"
    with pytest.raises(FlowError, match="not free"):
        manual.manual_dial(services, agent_id, campaign_id, NEW_YORK)
    assert [lead.phone for lead in _leads(services)] == ["+13125550111"]  # nothing added by a refusal
    with transaction(services.sessions) as s:
        assert manual.campaigns_for(s, agent_id) == [{"id": campaign_id, "name": "Solar"}]


@pytest.fixture
def stack(processes, sqlite_url, redis_client):
    stack = answering_stack(processes, sqlite_url, talk_s=30.0)
    yield stack
    stack.stop()


def test_an_agent_dials_a_typed_number_and_talks_to_the_person_who_answers(stack):
    good = numbers(True, 1, datetime.now(UTC))[0]
    stack.seed([("ana", {})])
    campaign_id = seed_campaign(stack.sessions, ["ana"], [])
    stack.start()
    agent = stack.agent("ana")
    assert agent.call("set_presence", {"presence": "available"}) == {"ok": True}
    services = build_services(stack.settings)
    try:
        change_status(services, campaign_id, "start")
        agent.wait_for(lambda s: s["manual_dial_campaigns"] == [{"id": campaign_id, "name": "Solar"}],
                       what="the campaign offered for manual dial")
        assert agent.call("manual_dial", {"campaign_id": "x", "number": good})["ok"] is False
        assert agent.call("manual_dial", {"campaign_id": campaign_id, "number": good}) == {"ok": True}
        talking = agent.wait_for(lambda s: s["agent"]["work"] == "on_call", seconds=30, what="the manual call")
        assert talking["call"]["outbound"]["lead"]["phone"] == good
        refused = agent.call("manual_dial", {"campaign_id": campaign_id, "number": good})
        assert refused["ok"] is False and "not free" in refused["error"]
        change_status(services, campaign_id, "stop")
    finally:
        services.close()
    with transaction(stack.sessions) as session:
        ana_id = session.scalar(select(Agent.id).where(Agent.login == "ana"))
        [attempt] = session.scalars(select(DialAttempt)).all()
        lead = session.get(Lead, attempt.lead_id)
        assert (lead.phone, lead.list_name, attempt.agent_id) == (good, "manual dial", ana_id)
        assert attempt.call_sid is not None  # placed through the carrier, which validated the REST request


@pytest.mark.browser
def test_the_console_dials_a_typed_number_and_says_why_it_refuses_one(stack, browser):  # noqa: F811
    now = datetime.now(UTC)
    good = numbers(True, 2, now)
    stack.seed([("ana", {})])
    campaign_id = seed_campaign(stack.sessions, ["ana"], [], dnc=[good[1]])
    stack.start()
    console = log_in(browser, stack.url(), "ana")
    console.locator("#btn-available").click()
    expect(console.locator("#presence")).to_contain_text("Available")
    expect(console.locator("#manual-dial")).to_be_hidden()  # no running campaign yet
    services = build_services(stack.settings)
    try:
        change_status(services, campaign_id, "start")
        expect(console.locator("#manual-dial")).to_be_visible(timeout=15000)
        expect(console.get_by_label("Campaign to call for")).to_have_value(str(campaign_id))
        console.get_by_label("Number to call").fill(good[1])
        console.locator("#btn-manual-dial").click()
        expect(console.locator("#error")).to_contain_text("may not be called now")
        expect(console.locator("#error")).to_contain_text("do-not-call")
        console.get_by_label("Number to call").fill(good[0])
        console.locator("#btn-manual-dial").click()
        expect(console.locator("#call")).to_be_visible(timeout=30000)
        expect(console.locator("#manual-dial")).to_be_hidden()
        console.screenshot(path=os.path.join(ARTIFACTS, "console-manual-dial.png"))
        change_status(services, campaign_id, "stop")
    finally:
        services.close()
