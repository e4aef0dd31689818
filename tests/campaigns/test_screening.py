"""What an agent's disposition of a campaign call decides, on SQLite and PostgreSQL: qualified needs answers
that meet the script and hands the lead off; a callback is booked in the lead's own time zone inside its
calling hours; do-not-call suppresses the number in every campaign at once."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from campaigns import gate
from campaigns.models import Campaign, DialAttempt, DncEntry, Handoff, Lead
from campaigns.screening import lead_view, screened
from hub.admin import add_agent
from hub.db import transaction
from hub.errors import FlowError
from hub.models import Call
from tests.conftest import new_sid

NY = ZoneInfo("America/New_York")
SCRIPT = {"questions": [{"key": "owner", "text": "Own your home?", "type": "yes_no"}],
          "qualify": [{"key": "owner", "equals": "yes"}]}
NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 10:00 in New York


def _call(session, phone="+12125550011"):
    agent = add_agent(session, f"ana{new_sid()[-6:]}", "Ana", "password1")
    campaign = Campaign(name=f"Solar {new_sid()[-6:]}", caller_id="+14155550100", script=SCRIPT,
                        abandon_message="Solar", status="running", requires_registry=False,
                        schedule={"timezone": "UTC", "days": list(range(7)), "start": "00:00", "end": "23:59"})
    session.add(campaign)
    session.flush()
    lead = Lead(campaign_id=campaign.id, phone=phone, status="done", attempts=1)
    session.add(lead)
    session.flush()
    sid = new_sid()
    session.add(DialAttempt(idempotency_key=f"{lead.id}:1", campaign_id=campaign.id, lead_id=lead.id, number=1,
                            status="ended", outcome="human", call_sid=sid, agent_id=agent.id))
    call = Call(sid=sid, direction="outbound-api", from_number="+14155550100", to_number=phone, status="completed",
                routing_state="ended", campaign_id=campaign.id, agent_id=agent.id)
    session.add(call)
    session.flush()
    return call, lead, campaign, agent


def test_qualified_needs_answers_that_meet_the_script_and_hands_the_lead_off(sessions):
    with transaction(sessions) as s:
        call, lead, _, _ = _call(s)
        with pytest.raises(FlowError, match="do not qualify"):
            screened(s, call, "qualified", "", NOW, answers={"owner": "no"})
        handoff_id = screened(s, call, "qualified", "keen", NOW, answers={"owner": "yes", "stray": "x"},
                              handoff_url="http://127.0.0.1:9/leads")
        assert lead.answers == {"owner": "yes"} and lead.disposition == "qualified" and lead.status == "done"
        assert s.get(Handoff, handoff_id).payload["note"] == "keen"


def test_a_callback_is_booked_in_the_leads_time_zone_inside_its_calling_hours(sessions):
    with transaction(sessions) as s:
        call, lead, campaign, agent = _call(s)
        assert lead_view(s, call, NOW)["zone"] == "America/New_York"
        with pytest.raises(FlowError, match="pick the date and time"):
            screened(s, call, "callback", "", NOW)
        with pytest.raises(FlowError, match="outside the lead's calling hours"):
            screened(s, call, "callback", "", NOW, callback={"at": "2026-11-23T21:30", "owner": "me"})
        with pytest.raises(FlowError, match="future"):
            screened(s, call, "callback", "", NOW, callback={"at": "2026-11-23T09:00", "owner": "me"})
        screened(s, call, "callback", "call after lunch", NOW, callback={"at": "2026-11-24T13:15", "owner": "me"})
        assert lead.callback_at == datetime(2026, 11, 24, 13, 15, tzinfo=NY).astimezone(UTC)
        assert lead.callback_agent_id == agent.id and lead.status == "ready"
        # the gate holds the lead until its callback time, then allows it
        before = gate.judge(s, campaign, [lead], lead.callback_at - timedelta(minutes=1), "US")[lead.id]
        at = gate.judge(s, campaign, [lead], lead.callback_at, "US")[lead.id]
        assert "callback_pending" in before.codes and at.allowed

        team_call, team_lead, _, _ = _call(s, "+13125550012")
        screened(s, team_call, "callback", "", NOW, callback={"at": "2026-11-24T09:00", "owner": "team"})
        assert team_lead.callback_agent_id is None  # Chicago: 09:00 Central


def test_do_not_call_suppresses_the_number_in_every_campaign_at_once(sessions):
    with transaction(sessions) as s:
        call, lead, _, _ = _call(s)
        other_call, other_lead, _, _ = _call(s)  # the same number in another campaign, waiting to be dialed
        other_lead.status = "ready"
        screened(s, call, "do_not_call", "", NOW)
        assert s.scalar(select(DncEntry.source).where(DncEntry.phone == lead.phone)) == "internal"
        s.flush()
        s.refresh(other_lead)
        assert other_lead.skip_code == "dnc_internal"
        campaign = s.get(Campaign, other_lead.campaign_id)
        assert "dnc_internal" in gate.judge(s, campaign, [other_lead], NOW, "US")[other_lead.id].codes
