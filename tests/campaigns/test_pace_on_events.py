"""The dialer plans on events, not only once a second, as the pacing benchmark does: a line that stops ringing
(answered or ended), or a campaign agent who comes free, asks for a pacing step at once. Steps of one
campaign never overlap (the campaign's row is locked on PostgreSQL; SQLite serialises writers)."""
from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, text

from campaigns import dialer
from campaigns.models import Campaign, CampaignAgent, DialAttempt, Lead
from hub.admin import add_agent
from hub.agent_flows import change_presence
from hub.app import create_app
from hub.db import transaction
from tests.campaigns.helpers import numbers, seed_campaign
from tests.conftest import ACCOUNT_SID, make_settings, new_sid
from tests.test_webhooks import post

@pytest.fixture
def hub(database_url, redis_client):
    app = create_app(make_settings(database_url))
    services = app.extensions["switchboard"]
    with transaction(services.sessions) as s:
        ana = add_agent(s, "ana", "Ana", "password1")  # on the campaign
        add_agent(s, "ben", "Ben", "password1")  # not on it
        campaign = Campaign(name="Solar", caller_id="+14155550100", mode="predictive", status="running",
                            abandon_message="This is Solar calling from 415 555 0100.")
        s.add(campaign)
        s.flush()
        s.add(CampaignAgent(campaign_id=campaign.id, agent_id=ana.id))
        lead = Lead(campaign_id=campaign.id, phone="+12125550011", status="dialing", attempts=1)
        s.add(lead)
        s.flush()
        s.add(DialAttempt(idempotency_key=f"{lead.id}:1", campaign_id=campaign.id, lead_id=lead.id, number=1))
    yield app
    services.close()


def _steps_asked(app) -> list[tuple]:
    """The pacing steps waiting for a worker now (not the once-a-second ones scheduled for later)."""
    queue = app.extensions["switchboard"].jobs.queue
    return [tuple(job.args) for job in queue.get_jobs() if job.func_name == "campaigns.tasks.pace"]


def _ids(app) -> tuple[int, int, int, int]:
    with transaction(app.extensions["switchboard"].sessions) as s:
        attempt = s.scalars(select(DialAttempt)).one()
        ana, ben = (s.scalar(text("SELECT id FROM agents WHERE login = :l"), {"l": login}) for login in ("ana", "ben"))
        return attempt.campaign_id, attempt.id, ana, ben


def _status(sid: str, status: str) -> dict[str, str]:
    return {"CallSid": sid, "AccountSid": ACCOUNT_SID, "From": "+14155550100", "To": "+12125550011",
            "CallStatus": status, "Direction": "outbound-api", "ApiVersion": "2010-04-01", "CallDuration": "0"}


def test_a_line_that_stops_ringing_asks_for_one_step_now(hub):
    campaign_id, attempt_id, _, _ = _ids(hub)
    sid = new_sid()
    url = f"/webhooks/outbound/status?attempt={attempt_id}"
    assert post(hub, url, _status(sid, "ringing")).status_code == 200
    assert _steps_asked(hub) == []  # still ringing: nothing changed for the plan
    assert post(hub, url, _status(sid, "no-answer")).status_code == 200
    assert _steps_asked(hub) == [(campaign_id,)]
    post(hub, url, _status(sid, "no-answer"))  # the carrier repeats itself: no second step
    assert _steps_asked(hub) == [(campaign_id,)]


def test_an_answered_line_asks_for_a_step(hub):
    campaign_id, attempt_id, _, _ = _ids(hub)
    params = _status(new_sid(), "in-progress")
    assert post(hub, f"/webhooks/outbound/answer?attempt={attempt_id}", params).status_code == 200
    assert _steps_asked(hub) == [(campaign_id,)]


def test_a_campaign_agent_who_comes_free_asks_for_a_step_of_that_campaign_only(hub):
    campaign_id, _, ana, ben = _ids(hub)
    services = hub.extensions["switchboard"]
    change_presence(services, ben, "available")
    assert _steps_asked(hub) == []  # ben dials for no campaign
    change_presence(services, ana, "available")
    assert _steps_asked(hub) == [(campaign_id,)]
    change_presence(services, ana, "break", "lunch")  # busy again: nothing new to plan for
    assert _steps_asked(hub) == [(campaign_id,)]


def test_two_steps_of_one_campaign_never_plan_at_once(database_url, redis_client):
    """Two workers step the same campaign at the same moment (an event's step and the once-a-second one):
    one free agent, progressive, so exactly one line may open (the account's call rate allows more)."""
    app = create_app(make_settings(database_url, dial_cps=10.0))
    services = app.extensions["switchboard"]
    try:
        with transaction(services.sessions) as s:
            add_agent(s, "ana", "Ana", "password1").presence = "available"
        phones = numbers(True, 30, datetime.now(UTC))  # more than one step's batch: both could find leads
        campaign_id = seed_campaign(services.sessions, ["ana"], [dict(phone=p) for p in phones], status="running")
        results = []
        with transaction(services.sessions) as holder:  # both steps start while another holds the campaign
            holder.get(Campaign, campaign_id, with_for_update=True)
            steps = [threading.Thread(target=lambda: results.append(dialer.pace(services, campaign_id)))
                     for _ in range(2)]
            for step in steps:
                step.start()
            steps[0].join(1.0)  # time for both to plan, were they not held back
        for step in steps:
            step.join(30)
        with transaction(services.sessions) as s:
            intents = s.scalar(select(func.count()).select_from(DialAttempt))
        assert sorted(len(r.intents) for r in results) == [0, 1] and intents == 1
    finally:
        services.close()
