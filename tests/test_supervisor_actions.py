"""The wallboard's actions over the `/supervisor` socket: put an agent on a break or offline, log them out
(their console closes), and pause, resume or switch the mode of a campaign. Real web and worker processes."""
from __future__ import annotations

import os

import pytest
import socketio
from playwright.sync_api import expect
from sqlalchemy import select

from campaigns.models import Campaign, Lead
from hub.db import transaction
from hub.models import Agent
from tests.campaigns.helpers import seed_campaign
from tests.conftest import wait_until
from tests.test_browser import ARTIFACTS, browser, log_in  # noqa: F401  (browser is a fixture)
from tests.test_sockets import token


def _wallboard(stack) -> socketio.Client:
    client = socketio.Client(reconnection=False)
    client.connect(stack.url(), namespaces=["/supervisor"], auth={"token": token(stack, "sue")},
                   transports=["websocket"], wait_timeout=5)
    return client


def _agent(stack, login: str) -> Agent:
    with transaction(stack.sessions) as session:
        agent = session.scalar(select(Agent).where(Agent.login == login))
        session.expunge(agent)
        return agent


def test_a_supervisor_changes_an_agents_state_and_logs_them_out(stack):
    ana = stack.agent("ana")
    assert ana.call("set_presence", {"presence": "available"}) == {"ok": True}
    ana_id = _agent(stack, "ana").id
    board = _wallboard(stack)
    try:
        def act(event, data):
            return board.call(event, data, namespace="/supervisor", timeout=10)

        assert act("set_agent_presence", {"agent_id": ana_id, "presence": "break"})["ok"] is False  # no reason
        assert act("set_agent_presence", {"agent_id": ana_id, "presence": "break", "reason": "meeting"}) == {"ok": True}
        state = ana.wait_for(lambda s: s["agent"]["presence"] == "break", what="the break the supervisor chose")
        assert state["agent"]["break_reason"] == "meeting"
        assert act("set_agent_presence", {"agent_id": "ana", "presence": "available"})["error"] == \
            "agent_id must be a whole number"
        assert act("log_out_agent", {"agent_id": 9999}) == {"ok": False, "error": "agent 9999 is not known to routing"}
        assert ana.sio.connected  # nobody else's console closed
        assert act("log_out_agent", {"agent_id": ana_id}) == {"ok": True}
        wait_until(lambda: not ana.sio.connected, seconds=10, message="ana's console closed")
        assert _agent(stack, "ana").presence == "offline"
    finally:
        board.disconnect()


def test_an_agent_cannot_use_the_supervisors_actions(stack):
    with pytest.raises(socketio.exceptions.ConnectionError):
        client = socketio.Client(reconnection=False)
        client.connect(stack.url(), namespaces=["/supervisor"], auth={"token": token(stack, "ana")},
                       transports=["websocket"], wait_timeout=5)


def test_a_supervisor_pauses_resumes_and_switches_a_campaign_out_of_preview(stack):
    campaign_id = seed_campaign(stack.sessions, ["ana"], [dict(phone="+12125550111", status="preview")],
                                mode="preview", status="running")
    ana_id = _agent(stack, "ana").id
    with transaction(stack.sessions) as session:
        session.scalar(select(Lead)).preview_agent_id = ana_id
    board = _wallboard(stack)
    try:
        def act(event, data):
            return board.call(event, data, namespace="/supervisor", timeout=10)

        assert act("campaign_action", {"campaign_id": campaign_id, "action": "pause"}) == {"ok": True}
        assert act("campaign_action", {"campaign_id": campaign_id, "action": "pause"})["ok"] is False  # paused
        assert act("campaign_action", {"campaign_id": campaign_id, "action": "resume"}) == {"ok": True}
        refused = act("set_campaign_mode", {"campaign_id": campaign_id, "mode": "turbo"})
        assert refused["ok"] is False and "mode" in refused["error"]
        assert act("set_campaign_mode", {"campaign_id": campaign_id, "mode": "predictive"}) == {"ok": True}
    finally:
        board.disconnect()
    with transaction(stack.sessions) as session:
        campaign = session.get(Campaign, campaign_id)
        lead = session.scalar(select(Lead))
        assert (campaign.status, campaign.mode) == ("running", "predictive")
        assert (lead.status, lead.preview_agent_id) == ("ready", None)  # no lead stays held by preview


@pytest.mark.browser
def test_the_wallboard_puts_an_agent_on_a_break_and_pauses_a_campaign(stack, browser):  # noqa: F811
    campaign_id = seed_campaign(stack.sessions, ["ana"], [], status="running")
    ana = stack.agent("ana")
    assert ana.call("set_presence", {"presence": "available"}) == {"ok": True}
    board = log_in(browser, stack.url(), "sue")
    row = board.locator('tr[data-agent-login="ana"]')
    expect(row).to_contain_text("Available")
    row.get_by_label("Change Ana's state").click()
    row.get_by_label("Put Ana on a meeting break").click()
    expect(row.locator("td.presence")).to_have_text("Break (Meeting)", timeout=10000)
    expect(board.locator("#action-status")).to_contain_text("done")
    assert ana.wait_for(lambda s: s["agent"]["presence"] == "break")["agent"]["break_reason"] == "meeting"

    campaign = board.locator('tr[data-campaign="Solar"]')
    status, mode = campaign.locator("td.campaign-status"), campaign.locator("td").nth(1)
    expect(status).to_have_text("Running")
    expect(mode).to_have_text("Progressive")
    campaign.get_by_label("Change campaign Solar").click()
    campaign.get_by_label("Pause Solar").click()
    expect(status).to_have_text("Paused", timeout=10000)
    campaign.get_by_label("Change campaign Solar").click()
    campaign.get_by_label("Switch Solar to preview mode").click()
    expect(mode).to_have_text("Preview", timeout=10000)
    board.screenshot(path=os.path.join(ARTIFACTS, "wallboard-actions.png"))
    with transaction(stack.sessions) as session:
        assert (session.get(Campaign, campaign_id).status, session.get(Campaign, campaign_id).mode) == \
            ("paused", "preview")
