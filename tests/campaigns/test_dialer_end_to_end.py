"""The dialer on the real stack: an RQ worker paces a progressive campaign, the carrier simulator answers,
the campaign's agent is connected through the conference, dispositions close the leads; leads outside their
calling window or on the do-not-call list are never dialed and say why."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from campaigns.control import change_status
from campaigns.models import Campaign, DialAttempt, Handoff, Lead
from campaigns.stats import campaign_summary
from hub.db import transaction
from hub.models import Agent, Call, Customer, CustomerPhone, TimelineEntry
from hub.services import build_services
from tests.campaigns.helpers import answering_stack, numbers, seed_campaign
from tests.conftest import wait_until


@pytest.fixture
def stack(processes, sqlite_url, redis_client):
    stack = answering_stack(processes, sqlite_url)
    yield stack
    stack.stop()


def test_a_progressive_campaign_dials_its_leads_connects_its_agent_and_skips_what_it_may_not_dial(stack):
    now = datetime.now(UTC)
    good = numbers(True, 3, now)
    late = numbers(False, 1, now)[0]
    dnc = good[0][:-2] + "99"
    stack.seed([("ana", {})])
    with transaction(stack.sessions) as session:
        customer = Customer(name="Ada Lovelace", phones=[CustomerPhone(number=good[0])])
        session.add(customer)
        session.flush()
        customer_id = customer.id
        ana_id = session.scalar(select(Agent.id).where(Agent.login == "ana"))
    campaign_id = seed_campaign(stack.sessions, ["ana"], [
        dict(phone=number, customer_id=customer_id if i == 0 else None, priority=10 - i)
        for i, number in enumerate([*good, late, dnc])], dnc=[dnc])
    stack.start()
    agent = stack.agent("ana")
    assert agent.call("set_presence", {"presence": "available"}) == {"ok": True}
    services = build_services(stack.settings)
    try:
        assert change_status(services, campaign_id, "start") == "running"
        for expected in good:  # priority order: one line at a time for the one agent
            talking = agent.wait_for(lambda s: s["call"] and s["agent"]["work"] == "on_call", seconds=40,
                                     what=f"the call to {expected}")
            sid = talking["call"]["call_sid"]
            assert "qualified" in talking["dispositions"]
            agent.wait_for(lambda s: s["agent"]["work"] == "wrap_up", what="wrap-up")
            assert agent.call("wrap_up", {"call_sid": sid, "disposition": "qualified", "note": "wants a quote"}) == {"ok": True}
            agent.wait_for(lambda s: s["agent"]["work"] == "idle", what="idle")
            with transaction(stack.sessions) as session:
                assert session.scalar(select(Call.to_number).where(Call.sid == sid)) == expected
        wait_until(lambda: _all_settled(stack, campaign_id), seconds=30, message="every attempt settled")
        with transaction(stack.sessions) as session:
            attempts = session.scalars(select(DialAttempt).order_by(DialAttempt.id)).all()
            assert [session.get(Lead, a.lead_id).phone for a in attempts] == good  # each dialed once, in order
            for a in attempts:
                assert a.outcome == "human" and a.answered_by == "human" and a.agent_id == ana_id  # AMD is on by default
                assert a.seconds_to_agent is not None and a.abandoned == (a.seconds_to_agent > 2.0)
            leads = {lead.phone: lead for lead in session.scalars(select(Lead))}
            assert all(leads[n].status == "done" and leads[n].disposition == "qualified" for n in good)
            handed = session.scalars(select(Handoff)).all()  # no webhook configured: listed for field sales
            assert sorted(h.lead_id for h in handed) == sorted(leads[n].id for n in good)
            assert {h.status for h in handed} == {"listed"}
            assert leads[late].status == "ready" and leads[late].skip_code == "outside_window"
            assert leads[late].next_check_at is not None
            assert leads[dnc].status == "ready" and leads[dnc].skip_code == "dnc_internal"
            kinds = [e.kind for e in session.scalars(select(TimelineEntry).where(
                TimelineEntry.customer_id == customer_id))]
            assert "outbound" in kinds and "disposition" in kinds
            summary = campaign_summary(session, session.get(Campaign, campaign_id), datetime.now(UTC))
        assert summary["funnel"] == {"leads": 5, "attempted": 3, "contacted": 3, "qualified": 3, "handed_off": 3,
                                     "won": 0, "revenue": 0.0}
        assert summary["leads"]["not_dialable_now"] == {"outside_window": 1, "dnc_internal": 1}
        assert summary["abandon"]["today"]["live"] == 3 and summary["lines_in_flight"] == 0
        assert summary["answer_rate_today"] == 1.0
        assert change_status(services, campaign_id, "pause") == "paused"
    finally:
        services.close()


def _all_settled(stack, campaign_id):
    with transaction(stack.sessions) as session:
        statuses = session.scalars(select(DialAttempt.status).where(DialAttempt.campaign_id == campaign_id)).all()
        return len(statuses) == 3 and set(statuses) == {"ended"}


@pytest.fixture
def machine_stack(processes, sqlite_url, redis_client):
    stack = answering_stack(processes, sqlite_url, machines=1.0, talk_s=20.0)
    yield stack
    stack.stop()


def test_predictive_dialing_uses_async_amd_and_a_machine_frees_the_agent_at_once(machine_stack):
    stack = machine_stack
    good = numbers(True, 2, datetime.now(UTC))
    stack.seed([("ana", {})])
    campaign_id = seed_campaign(stack.sessions, ["ana"], [dict(phone=n) for n in good], mode="predictive",
                                machine_action="hang_up")
    stack.start()
    agent = stack.agent("ana")
    assert agent.call("set_presence", {"presence": "available"}) == {"ok": True}
    services = build_services(stack.settings)
    try:
        change_status(services, campaign_id, "start")
        wait_until(lambda: _ended_attempts(stack) >= 1, seconds=60, message="the machine call settled")
        change_status(services, campaign_id, "pause")
        agent.wait_for(lambda s: s["agent"]["work"] == "idle" and s["call"] is None, seconds=20,
                       what="ana free again")
    finally:
        services.close()
    with transaction(stack.sessions) as session:
        attempt = session.scalars(select(DialAttempt).where(DialAttempt.status == "ended")).first()
        lead = session.get(Lead, attempt.lead_id)
        # async AMD: the answered call was put through to ana at once (her leg was placed), before the verdict
        legs = session.scalars(select(Call).where(Call.parent_sid == attempt.call_sid, Call.leg == "agent")).all()
        ana_id = session.scalar(select(Agent.id).where(Agent.login == "ana"))
        assert [leg.agent_id for leg in legs] == [ana_id]
        assert attempt.outcome == "machine" and attempt.answered_by.startswith("machine")
        assert not attempt.abandoned  # machines are not in the abandon ledger
        assert lead.status == "ready" and lead.last_outcome == "machine" and lead.next_check_at > attempt.ended_at
        summary = campaign_summary(session, session.get(Campaign, campaign_id), datetime.now(UTC))
        assert summary["abandon"]["today"]["live"] == 0 and summary["machine_rate_today"] > 0
        agent_row = session.scalar(select(Agent).where(Agent.login == "ana"))
        assert agent_row.work == "idle"  # no wrap-up for a machine


def _ended_attempts(stack) -> int:
    with transaction(stack.sessions) as session:
        return len(session.scalars(select(DialAttempt.id).where(DialAttempt.status == "ended")).all())


def test_in_preview_mode_the_agent_sees_each_lead_first_then_dials_or_skips_it(stack):
    good = numbers(True, 2, datetime.now(UTC))
    stack.seed([("ana", {})])
    campaign_id = seed_campaign(stack.sessions, ["ana"], [dict(phone=good[0], first_name="Ada", priority=10),
                                                         dict(phone=good[1], first_name="Bo", priority=5)],
                                mode="preview")
    stack.start()
    agent = stack.agent("ana")
    assert agent.call("set_presence", {"presence": "available"}) == {"ok": True}
    services = build_services(stack.settings)
    try:
        change_status(services, campaign_id, "start")
        first = agent.wait_for(lambda s: s["preview"] is not None, seconds=20, what="the first preview")["preview"]
        assert first["lead"]["phone"] == good[0] and first["customer"]["name"] == "Ada"
        assert agent.call("preview_skip", {"lead_id": first["lead_id"]}) == {"ok": True}
        second = agent.wait_for(lambda s: s["preview"] is not None and s["preview"]["lead"]["phone"] == good[1],
                                seconds=20, what="the next preview")["preview"]
        assert agent.call("preview_dial", {"lead_id": first["lead_id"]})["ok"] is False  # not yours any more
        assert agent.call("preview_dial", {"lead_id": second["lead_id"]}) == {"ok": True}
        talking = agent.wait_for(lambda s: s["agent"]["work"] == "on_call", seconds=30, what="the previewed call")
        assert talking["call"]["outbound"]["lead"]["phone"] == good[1] and talking["preview"] is None
        agent.wait_for(lambda s: s["agent"]["work"] == "wrap_up", what="wrap-up")
        sid = agent.latest["call"]["call_sid"]
        assert agent.call("wrap_up", {"call_sid": sid, "disposition": "not_interested"}) == {"ok": True}
        agent.wait_for(lambda s: s["agent"]["work"] == "idle", what="idle")
        change_status(services, campaign_id, "stop")
    finally:
        services.close()
    with transaction(stack.sessions) as session:
        leads = {lead.phone: lead for lead in session.scalars(select(Lead))}
        attempts = session.scalars(select(DialAttempt)).all()
        ana_id = session.scalar(select(Agent.id).where(Agent.login == "ana"))
    assert [(a.lead_id, a.agent_id) for a in attempts] == [(leads[good[1]].id, ana_id)]  # dialed once, for ana
    skipped = leads[good[0]]
    assert skipped.status == "ready" and skipped.preview_agent_id is None
    assert skipped.next_check_at > datetime.now(UTC) and skipped.skip_detail == "skipped by an agent in preview"
    assert leads[good[1]].status == "done" and leads[good[1]].disposition == "not_interested"
