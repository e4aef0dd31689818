"""The campaign calls' webhooks through the Flask app, signed with the twilio library, on SQLite and
PostgreSQL: an answer with no free agent is abandoned with the recorded message and booked; a forged or
repeated webhook changes nothing."""
from __future__ import annotations

from xml.etree import ElementTree

import pytest
from sqlalchemy import func, select

from campaigns.ledger import abandon_budget
from campaigns.models import Campaign, CampaignAgent, DialAttempt, Lead
from hub.admin import add_agent
from hub.app import create_app
from hub.columns import utcnow
from hub.db import transaction
from hub.models import Agent, Call, CallEvent
from tests.conftest import ACCOUNT_SID, make_settings, new_sid
from tests.test_webhooks import post

MESSAGE = "This is Solar calling from 415 555 0100. Sorry we missed you; we will call back."


@pytest.fixture
def hub(database_url, redis_client):
    app = create_app(make_settings(database_url))
    services = app.extensions["switchboard"]
    with transaction(services.sessions) as s:
        agent = add_agent(s, "ana", "Ana", "password1")
        agent.presence, agent.work = "available", "on_call"  # busy: nobody is free for the answered call
        campaign = Campaign(name="Solar", caller_id="+14155550100", mode="predictive", status="running",
                            abandon_message=MESSAGE)
        s.add(campaign)
        s.flush()
        s.add(CampaignAgent(campaign_id=campaign.id, agent_id=agent.id))
        lead = Lead(campaign_id=campaign.id, phone="+12125550011", status="dialing", attempts=1)
        s.add(lead)
        s.flush()
        s.add(DialAttempt(idempotency_key=f"{lead.id}:1", campaign_id=campaign.id, lead_id=lead.id, number=1,
                          covered=False))
    yield app
    services.close()


def _attempt(app) -> DialAttempt:
    with transaction(app.extensions["switchboard"].sessions) as s:
        return s.scalars(select(DialAttempt)).one()


def answer_params(sid: str) -> dict[str, str]:
    return {"CallSid": sid, "AccountSid": ACCOUNT_SID, "From": "+14155550100", "To": "+12125550011",
            "CallStatus": "in-progress", "Direction": "outbound-api", "ApiVersion": "2010-04-01"}


def test_an_answer_with_no_free_agent_plays_the_message_and_is_booked_as_abandoned(hub):
    attempt_id = _attempt(hub).id
    sid = new_sid()
    response = post(hub, f"/webhooks/outbound/answer?attempt={attempt_id}", answer_params(sid))
    assert response.status_code == 200
    doc = ElementTree.fromstring(response.data)
    assert [child.tag for child in doc] == ["Say", "Hangup"] and doc[0].text == MESSAGE
    attempt = _attempt(hub)
    assert attempt.call_sid == sid and attempt.status == "answered" and attempt.answered_at is not None
    assert attempt.abandoned and attempt.message_played and attempt.agent_id is None

    # the carrier repeats the webhook: the same answer, nothing booked twice
    again = post(hub, f"/webhooks/outbound/answer?attempt={attempt_id}", answer_params(sid))
    assert again.data == response.data
    # the call ends: the lead goes back for a retry by the "abandoned" rule, the ledger keeps the abandon
    done = dict(answer_params(sid), CallStatus="completed", CallDuration="9", SequenceNumber="3")
    assert post(hub, f"/webhooks/outbound/status?attempt={attempt_id}", done).get_json() == {"outcome": "applied"}
    assert post(hub, f"/webhooks/outbound/status?attempt={attempt_id}", done).get_json() == {"outcome": "duplicate"}
    attempt = _attempt(hub)
    assert attempt.status == "ended" and attempt.outcome == "abandoned" and attempt.abandoned
    with transaction(hub.extensions["switchboard"].sessions) as s:
        budget = abandon_budget(s, s.get(Campaign, attempt.campaign_id), utcnow())
    assert (budget.live_today, budget.abandons_today, budget.live_30d, budget.abandons_30d) == (1, 1, 1, 1)
    with transaction(hub.extensions["switchboard"].sessions) as s:
        lead = s.get(Lead, attempt.lead_id)
        assert lead.status == "ready" and lead.last_outcome == "abandoned"
        assert s.scalar(select(Agent.work).where(Agent.login == "ana")) == "on_call"  # untouched


def test_a_forged_outbound_webhook_gets_403_and_writes_nothing(hub):
    attempt_id = _attempt(hub).id
    for path in ("answer", "status", "amd"):
        params = dict(answer_params(new_sid()), AnsweredBy="machine_start")
        response = post(hub, f"/webhooks/outbound/{path}?attempt={attempt_id}", params, signature="forged")
        assert response.status_code == 403
    attempt = _attempt(hub)
    assert attempt.status == "intent" and attempt.call_sid is None
    with transaction(hub.extensions["switchboard"].sessions) as s:
        assert s.scalar(select(func.count()).select_from(Call)) == 0
        assert s.scalar(select(func.count()).select_from(CallEvent)) == 0


def test_a_status_callback_for_another_calls_attempt_is_ignored(hub):
    attempt_id = _attempt(hub).id
    sid, other = new_sid(), new_sid()
    post(hub, f"/webhooks/outbound/status?attempt={attempt_id}", dict(answer_params(sid), CallStatus="ringing",
                                                                     SequenceNumber="1"))
    crossed = dict(answer_params(other), CallStatus="completed", SequenceNumber="2")
    assert post(hub, f"/webhooks/outbound/status?attempt={attempt_id}", crossed).get_json() == {"outcome": "unknown"}
    assert _attempt(hub).call_sid == sid


@pytest.mark.parametrize("action, says", [("hang_up", []), ("message", ["Say"])])
def test_a_machine_gets_the_campaigns_machine_action_every_time_it_asks(hub, action, says):
    with transaction(hub.extensions["switchboard"].sessions) as s:
        campaign = s.scalars(select(Campaign)).one()
        campaign.machine_action, campaign.machine_message = action, "Sunny Roofs: call us at 415 555 0100."
    attempt_id, sid = _attempt(hub).id, new_sid()
    params = dict(answer_params(sid), AnsweredBy="machine_end_beep")
    for _ in range(2):  # the carrier may ask twice: the same answer
        doc = ElementTree.fromstring(post(hub, f"/webhooks/outbound/answer?attempt={attempt_id}", params).data)
        assert [child.tag for child in doc] == [*says, "Hangup"]
    assert _attempt(hub).answered_by == "machine_end_beep" and not _attempt(hub).abandoned
    crossed = post(hub, f"/webhooks/outbound/answer?attempt={attempt_id}", answer_params(new_sid()))
    assert [child.tag for child in ElementTree.fromstring(crossed.data)] == ["Hangup"]  # not this attempt's call
    assert _attempt(hub).call_sid == sid
