"""A worker killed between writing a dial intent and hearing back from the carrier loses no lead and dials
no one twice: the reconciler settles each stuck intent against the carrier (the simulator, over REST)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from campaigns.models import Campaign, DialAttempt, Lead
from campaigns.reconciler import reconcile
from hub.columns import utcnow
from hub.db import transaction
from hub.models import Call
from hub.services import build_services
from simulator.carrier import CarrierConfig
from simulator.server import SimulatorServer
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, make_settings, wait_until

CALLER_ID = "+14155550100"


@pytest.fixture
def services(database_url, redis_client):
    # every call is busy after about a second; webhooks go nowhere (the hub is not running)
    sim = SimulatorServer(CarrierConfig(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, public_url="http://127.0.0.1:9",
                                        pstn_answer_probability=0.0, pstn_busy_probability=1.0)).start()
    services = build_services(make_settings(database_url, twilio_api_url=sim.url))
    yield services
    services.close()
    sim.stop()


def _intent(session, campaign, phone, minutes_ago=1):
    lead = Lead(campaign_id=campaign.id, phone=phone, status="dialing", attempts=1)
    session.add(lead)
    session.flush()
    attempt = DialAttempt(idempotency_key=f"{lead.id}:1", campaign_id=campaign.id, lead_id=lead.id, number=1,
                          created_at=utcnow() - timedelta(minutes=minutes_ago))
    session.add(attempt)
    session.flush()
    return attempt.id


def test_stuck_intents_are_settled_against_the_carrier(services):
    with transaction(services.sessions) as s:
        campaign = Campaign(name="Solar", caller_id=CALLER_ID, status="running", abandon_message="Solar, 415 555 0100")
        s.add(campaign)
        s.flush()
        never_placed = _intent(s, campaign, "+12125550011")  # killed after the commit, before the REST call
        placed = _intent(s, campaign, "+12125550012")  # killed after the REST call, before recording its answer
        fresh = _intent(s, campaign, "+12125550013", minutes_ago=0)  # may still be on its way: left alone
    # the lost REST call: the carrier has it, the database does not
    sid = services.telephony.dial(to="+12125550012", from_=CALLER_ID, voice_url="http://127.0.0.1:9/x",
                                  status_url="http://127.0.0.1:9/y").sid

    assert reconcile(services) == {"tied": 1, "not_placed": 1, "ended": 0}
    with transaction(services.sessions) as s:
        a = {x.id: x for x in s.scalars(select(DialAttempt))}
        assert a[never_placed].status == "not_placed" and a[never_placed].outcome is None
        assert s.get(Lead, a[never_placed].lead_id).status == "ready"  # back on the list, nothing lost
        assert a[placed].status == "dialed" and a[placed].call_sid == sid
        assert s.scalar(select(Call).where(Call.sid == sid)).campaign_id == campaign.id
        assert a[fresh].status == "intent"

    # a second round changes nothing: no new call, nothing settled twice
    assert reconcile(services) == {"tied": 0, "not_placed": 0, "ended": 0}

    # the carrier ended the placed call (busy) and its callbacks were lost too: the reconciler reads it
    wait_until(lambda: services.telephony.fetch_status(sid) == "busy", seconds=15, message="the busy signal")
    with transaction(services.sessions) as s:
        s.get(DialAttempt, placed).created_at = utcnow() - timedelta(minutes=5)
    assert reconcile(services)["ended"] == 1
    with transaction(services.sessions) as s:
        attempt = s.get(DialAttempt, placed)
        lead = s.get(Lead, attempt.lead_id)
        assert attempt.status == "ended" and attempt.outcome == "busy"
        assert lead.status == "ready" and lead.last_outcome == "busy" and lead.next_check_at is not None
    calls_to = [c for c in services.telephony.find_calls("+12125550012", CALLER_ID, utcnow() - timedelta(hours=1))]
    assert len(calls_to) == 1  # dialed once
    assert services.telephony.find_calls("+12125550011", CALLER_ID, utcnow() - timedelta(hours=1)) == []
