"""Complaints marked at wrap-up and what stays open for a customer (complaints, callbacks) on the screen pop:
flows on both databases, the real stack with Socket.IO consoles and the console's HTTP endpoint, and a browser."""
from __future__ import annotations

import os
import re
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from campaigns.models import DncEntry, Lead, LeadStatus
from hub.admin import add_agent, add_queue
from hub.complaints import open_complaint
from hub.customers import customer_card, find_by_number
from hub.scheduled_callbacks import book_callback, due_time
from hub.db import make_engine, make_session_factory, transaction
from hub.errors import FlowError
from hub.models import Agent, Call, Complaint, Customer, CustomerPhone, Queue, ScheduledCallback, TimelineEntry
from tests.campaigns.helpers import seed_campaign
from tests.stack import PASSWORD, QUEUE_NUMBER, Stack
from tests.test_browser import ARTIFACTS, browser, log_in  # noqa: F401  (browser is a fixture)
from tests.test_call_controls import _browser_session

GRACE = "+12125550001"  # Grace Hopper, on file (Stack.seed)
NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


@pytest.fixture
def sessions(database_url):
    engine = make_engine(database_url)
    yield make_session_factory(engine, check_routing_cache=True)
    engine.dispose()


@pytest.fixture
def any_db_stack(processes, database_url, redis_client):
    stack = Stack(processes, database_url)
    yield stack
    stack.stop()


@pytest.fixture
def stack(processes, sqlite_url, redis_client):
    stack = Stack(processes, sqlite_url)
    yield stack
    stack.stop()


def _wrapping_up(stack, client, caller=GRACE):
    """Place a call that `client` answers and the caller ends after 2 s; return its sid once in wrap-up."""
    assert client.call("set_presence", {"presence": "available"})["ok"]
    sid = stack.sim.place_inbound_call(caller, QUEUE_NUMBER, talk_seconds=2, patience_seconds=60)
    client.wait_for(lambda s: s["offer"] and s["offer"]["call_sid"] == sid, what="the offer")
    assert client.call("accept", {"call_sid": sid}) == {"ok": True}
    client.wait_for(lambda s: s["agent"]["work"] == "wrap_up" and s["call"]["call_sid"] == sid, what="wrap-up")
    return sid


# ---------------------------------------------------------------- flows on both databases


def test_a_complaint_on_a_campaign_call_also_puts_the_number_on_the_complaints_dnc_list(sessions):
    with transaction(sessions) as session:
        add_agent(session, "ana", "Ana", PASSWORD, "agent", {})
    campaign_id = seed_campaign(sessions, ["ana"], [dict(phone="+13125550111", first_name="Alan")])
    with transaction(sessions) as session:
        ana = session.scalar(select(Agent).where(Agent.login == "ana"))
        call = Call(sid="CA" + "1" * 32, direction="outbound-api", from_number="+14155550100",
                    to_number="+13125550111", campaign_id=campaign_id, agent_id=ana.id, status="completed",
                    routing_state="ended", connected_at=NOW - timedelta(minutes=3), ended_at=NOW)
        session.add(call)
        session.flush()
        complaint = open_complaint(session, call, ana.id, "  Called three   times today ", NOW)
        complaint_id = complaint.id
    with transaction(sessions) as session:
        complaint = session.get(Complaint, complaint_id)
        customer = find_by_number(session, "+13125550111")  # the lead was not on file: now they are
        assert complaint.customer_id == customer.id and complaint.summary == "Called three times today"
        assert complaint.closed_at is None and complaint.opener.login == "ana"
        entries = session.scalars(select(DncEntry).where(DncEntry.phone == "+13125550111")).all()
        assert [(e.source, e.reason) for e in entries] == [("complaint", "Called three times today")]
        lead = session.scalar(select(Lead).where(Lead.campaign_id == campaign_id))
        assert lead.skip_code == "dnc_complaint"  # the dialer skips it from now on
        kinds = {e.kind for e in session.scalars(select(TimelineEntry).where(TimelineEntry.customer_id == customer.id))}
        assert kinds == {"complaint", "dnc"}


def test_an_inbound_complaint_does_not_touch_the_dnc_list_and_a_withheld_caller_is_refused(sessions):
    with transaction(sessions) as session:
        grace = Customer(name="Grace Hopper", phones=[CustomerPhone(number=GRACE)])
        session.add(grace)
        session.flush()
        call = Call(sid="CA" + "2" * 32, direction="inbound", from_number=GRACE, to_number=QUEUE_NUMBER,
                    customer_id=grace.id, status="completed", routing_state="ended")
        withheld = Call(sid="CA" + "3" * 32, direction="inbound", from_number="anonymous", to_number=QUEUE_NUMBER,
                        status="completed", routing_state="ended")
        session.add_all([call, withheld])
        session.flush()
        assert open_complaint(session, call, None, "", NOW).summary == "Complaint (no details given)"
        with pytest.raises(FlowError, match="withheld"):
            open_complaint(session, withheld, None, "rude", NOW)
    with transaction(sessions) as session:
        assert session.scalars(select(DncEntry)).all() == []
        assert len(session.scalars(select(Complaint)).all()) == 1


def test_the_screen_pop_lists_open_complaints_and_every_kind_of_waiting_callback(sessions):
    with transaction(sessions) as session:
        add_agent(session, "ana", "Ana", PASSWORD, "agent", {})
        add_queue(session, "Support", QUEUE_NUMBER, {"support": 1})
    campaign_id = seed_campaign(sessions, ["ana"], [])
    other_campaign_id = seed_campaign(sessions, ["ana"], [], name="Boilers")
    with transaction(sessions) as session:
        ana = session.scalar(select(Agent).where(Agent.login == "ana"))
        grace = Customer(name="Grace Hopper", phones=[CustomerPhone(number=GRACE),
                                                      CustomerPhone(number="+12125550002")])
        other = Customer(name="Alan Turing", phones=[CustomerPhone(number="+12125550003")])
        session.add_all([grace, other])
        session.flush()
        session.add_all([
            # by her number, owned by ana; by her customer id, for the team; one already past; one done; another's
            Lead(campaign_id=campaign_id, phone="+12125550002", callback_at=NOW + timedelta(days=1),
                 callback_agent_id=ana.id, status=LeadStatus.READY.value),
            Lead(campaign_id=campaign_id, phone="+19175550000", customer_id=grace.id,
                 callback_at=NOW + timedelta(hours=2), status=LeadStatus.READY.value),
            Lead(campaign_id=campaign_id, phone=GRACE, callback_at=NOW - timedelta(hours=1)),
            Lead(campaign_id=other_campaign_id, phone=GRACE, callback_at=NOW + timedelta(hours=3),
                 status=LeadStatus.DONE.value),
            Lead(campaign_id=campaign_id, phone="+12125550003", callback_at=NOW + timedelta(hours=1)),
        ])
        queue_id = session.scalar(select(Queue.id).where(Queue.name == "Support"))
        session.add_all([
            Call(sid="CA" + "4" * 32, direction="inbound", from_number=GRACE, to_number=QUEUE_NUMBER,
                 customer_id=grace.id, queue_id=queue_id, status="completed", routing_state="waiting",
                 callback=True, created_at=NOW - timedelta(minutes=5)),
            Call(sid="CA" + "5" * 32, direction="inbound", from_number=GRACE, to_number=QUEUE_NUMBER,
                 customer_id=grace.id, queue_id=queue_id, status="in-progress", routing_state="waiting"),
            Call(sid="CA" + "6" * 32, direction="inbound", from_number=GRACE, to_number=QUEUE_NUMBER,
                 customer_id=grace.id, queue_id=queue_id, status="completed", routing_state="ended", callback=True),
        ])
        old = Complaint(customer_id=grace.id, opened_at=NOW - timedelta(days=3), opened_by=ana.id, summary="Late refund")
        closed = Complaint(customer_id=grace.id, opened_at=NOW - timedelta(days=9), summary="Rude agent",
                           closed_at=NOW - timedelta(days=8), resolution="Apologised")
        theirs = Complaint(customer_id=other.id, opened_at=NOW, summary="Not hers")
        session.add_all([old, closed, theirs])
        grace_id = grace.id
    with transaction(sessions) as session:
        card = customer_card(session, session.get(Customer, grace_id), GRACE, NOW)
    assert [(c["summary"], c["age_s"], c["opened_by"]) for c in card["complaints"]] == [
        ("Late refund", 3 * 86400, "Ana")]
    assert [(c["kind"], c["at"], c["where"], c["owner"]) for c in card["callbacks"]] == [
        ("queue", None, "Support", "the next agent free in the queue"),
        ("campaign", (NOW + timedelta(hours=2)).isoformat(), "Solar", "the campaign's team"),
        ("campaign", (NOW + timedelta(days=1)).isoformat(), "Solar", "Ana"),
    ]
    assert card["callbacks"][0]["since"] == (NOW - timedelta(minutes=5)).isoformat()


# ---------------------------------------------------------------- the real stack


def test_a_complaint_marked_at_wrap_up_shows_on_the_next_screen_pop_until_it_is_closed(any_db_stack):
    stack = any_db_stack
    stack.seed([("ana", {"support": 1}), ("ben", {"support": 1})])
    with transaction(stack.sessions) as session:
        add_agent(session, "sue", "Sue", PASSWORD, "supervisor")
    stack.start()
    ana, ben = stack.agent("ana"), stack.agent("ben")
    sid = _wrapping_up(stack, ana)
    # resolved AND a complaint: the complaint is separate from the disposition
    assert ana.call("wrap_up", {"call_sid": sid, "disposition": "resolved", "note": "Refund sent",
                                "complaint": {"summary": "Billed twice for March"}}) == {"ok": True}
    call = stack.wait_for_call(sid, lambda c: c.disposition == "resolved", "the disposition")
    with transaction(stack.sessions) as session:
        complaint = session.scalar(select(Complaint))
        assert (complaint.summary, complaint.call_id, complaint.customer_id) == (
            "Billed twice for March", call.id, call.customer_id)
        assert complaint.opener.login == "ana" and complaint.closed_at is None
        complaint_id = complaint.id
        assert session.scalars(select(DncEntry)).all() == []  # an inbound call: no do-not-call entry

    # the next call from Grace pops with the open complaint, and so does its wrap-up snapshot
    sid2 = stack.sim.place_inbound_call(GRACE, QUEUE_NUMBER, talk_seconds=2, patience_seconds=60)
    offered = ana.wait_for(lambda s: s["offer"] and s["offer"]["call_sid"] == sid2, what="the second offer")
    complaints = offered["offer"]["customer"]["complaints"]
    assert [(c["id"], c["summary"], c["opened_by"]) for c in complaints] == [
        (complaint_id, "Billed twice for March", "Ana")]
    assert any(e["kind"] == "complaint" and "Billed twice" in e["summary"] for e in offered["offer"]["customer"]["timeline"])
    assert ana.call("accept", {"call_sid": sid2}) == {"ok": True}
    ana.wait_for(lambda s: s["agent"]["work"] == "wrap_up", what="the second wrap-up")
    # the "complaint" disposition opens one too, from the note
    assert ana.call("wrap_up", {"call_sid": sid2, "disposition": "complaint", "note": "Still no refund"})["ok"]
    stack.wait_for_call(sid2, lambda c: c.disposition == "complaint", "the second disposition")

    # closing: another agent may not; no resolution is refused; the supervisor closes one over HTTP
    refused = ben.call("close_complaint", {"complaint_id": complaint_id, "resolution": "done"})
    assert refused["ok"] is False and "only a supervisor or the agent who opened it" in refused["error"]
    assert ana.call("close_complaint", {"complaint_id": complaint_id, "resolution": " "})["error"] == (
        "write how the complaint was resolved")
    assert ana.call("close_complaint", {"complaint_id": "1", "resolution": "x"})["error"] == (
        "complaint_id must be a whole number")
    http, csrf = _browser_session(stack, "sue")
    url = f"{stack.url()}/console/complaints/{complaint_id}/close"
    assert http.post(url, json={"resolution": "Refunded"}, timeout=10).status_code == 400  # no CSRF token
    reply = http.post(url, json={"resolution": "Refunded the double charge"}, headers={"X-CSRF-Token": csrf},
                      timeout=10)
    assert reply.status_code == 200 and reply.json() == {"ok": True}
    again = http.post(url, json={"resolution": "again"}, headers={"X-CSRF-Token": csrf}, timeout=10)
    assert again.status_code == 409 and again.json()["error"] == "that complaint is already closed"
    with transaction(stack.sessions) as session:
        rows = {c.id: c for c in session.scalars(select(Complaint))}
        sue = session.scalar(select(Agent).where(Agent.login == "sue"))
        assert rows[complaint_id].closed_by == sue.id and rows[complaint_id].resolution == "Refunded the double charge"
        (second,) = [c for c in rows.values() if c.id != complaint_id]
        assert second.summary == "Still no refund" and second.closed_at is None
        # the agent who opened the second one may close it herself, over the socket
        second_id = second.id
    assert ana.call("close_complaint", {"complaint_id": second_id, "resolution": "Refund confirmed"}) == {"ok": True}
    with transaction(stack.sessions) as session:
        grace = session.scalar(select(Customer).where(Customer.name == "Grace Hopper"))
        assert customer_card(session, grace, GRACE, datetime.now(UTC))["complaints"] == []
        closes = [e.summary for e in session.scalars(select(TimelineEntry).where(
            TimelineEntry.customer_id == grace.id, TimelineEntry.kind == "complaint").order_by(TimelineEntry.id))]
        assert closes == ["Complaint opened: Billed twice for March", "Complaint opened: Still no refund",
                          "Complaint closed: Refunded the double charge", "Complaint closed: Refund confirmed"]


@pytest.mark.browser
def test_an_agent_marks_a_complaint_in_the_browser_and_the_next_call_pops_with_it(stack, browser):  # noqa: F811
    stack.seed([("ana", {"support": 1})], wrap_up_s=120)
    stack.start()
    console = log_in(browser, stack.url(), "ana")
    expect(console.locator("#connection")).to_contain_text("Connected")
    console.locator("#btn-available").click()
    expect(console.locator("#presence")).to_contain_text("Available")

    stack.sim.place_inbound_call(GRACE, QUEUE_NUMBER, talk_seconds=2, patience_seconds=60)
    expect(console.locator("#offer")).to_be_visible(timeout=15000)
    expect(console.locator("#customer-open")).to_be_hidden()  # nothing open for Grace yet
    console.locator("#btn-accept").click()
    expect(console.locator("#wrapup")).to_be_visible(timeout=20000)
    expect(console.locator("#complaint-fields")).to_be_hidden()
    # an inbound callback is picked in the caller's time zone, owned by me or the call's queue
    console.locator("#disposition").select_option("callback")
    expect(console.locator("#callback-fields")).to_be_visible()
    expect(console.locator("#callback-zone")).to_have_text("America/New_York")
    expect(console.locator("#callback-owner-shared")).to_have_text("Anyone in Support")
    console.get_by_label("Mark a complaint").check()
    console.get_by_label("What is the complaint about?").fill("Engineer never came")
    console.locator("#disposition").select_option("resolved")
    expect(console.locator("#callback-fields")).to_be_hidden()
    console.locator("#note").fill("Rebooked for Tuesday")
    console.locator("#btn-finish").click()
    expect(console.locator("#work")).to_contain_text("Idle", timeout=10000)

    stack.sim.place_inbound_call(GRACE, QUEUE_NUMBER, talk_seconds=2, patience_seconds=60)
    expect(console.locator("#offer")).to_be_visible(timeout=15000)
    complaints = console.locator("#customer-complaints")
    expect(console.get_by_role("heading", name="Open complaints")).to_be_visible()
    expect(complaints).to_contain_text("Engineer never came")
    expect(complaints).to_contain_text(re.compile(r"open for (under a minute|\d+ min) by Ana"))
    expect(console.locator("#timeline")).to_contain_text("Complaint opened: Engineer never came")
    os.makedirs(ARTIFACTS, exist_ok=True)
    console.screenshot(path=os.path.join(ARTIFACTS, "console-open-complaint.png"))


# ---------------------------------------------------------------- callbacks booked at an inbound wrap-up

WINDOW = (time(8), time(21))


def test_a_callback_time_is_read_in_the_customers_zone_and_must_be_in_the_window_everywhere_and_later():
    ny = ("America/New_York",)
    assert due_time("2026-03-02T20:30", ny, WINDOW, NOW) == datetime(2026, 3, 3, 1, 30, tzinfo=UTC)
    with pytest.raises(FlowError, match=r"outside the customer's calling hours \(08:00-21:00 in America/New_York\)"):
        due_time("2026-03-02T21:30", ny, WINDOW, NOW)
    with pytest.raises(FlowError, match="in the future"):
        due_time("2026-03-02T09:59", ny, WINDOW, NOW)  # 14:59 UTC, a minute ago
    # 09:00 in New York is 06:00 in Los Angeles: a number that may be in either is not called then
    with pytest.raises(FlowError, match="outside"):
        due_time("2026-03-03T09:00", ("America/New_York", "America/Los_Angeles"), WINDOW, NOW)
    with pytest.raises(FlowError, match="time zone is unknown"):
        due_time("2026-03-03T12:00", (), WINDOW, NOW)
    with pytest.raises(FlowError, match="pick the date and time"):
        due_time("tomorrow", ny, WINDOW, NOW)


def test_a_callback_booked_at_wrap_up_is_offered_to_its_owner_at_the_due_time_and_dials_the_customer(
        processes, sqlite_url, redis_client):
    # every customer answers and talks 2 s; the calling window is the whole day so the test passes at any hour
    stack = Stack(processes, sqlite_url, carrier=dict(pstn_answer_probability=1.0, machine_probability=0.0,
                                                      pstn_ring_seconds=(0.5, 1.0), pstn_mean_talk=2.0),
                  calling_hours="00:00-23:59")
    try:
        stack.seed([("ana", {"support": 1}), ("ben", {"support": 1})])
        stack.start()
        ana, ben = stack.agent("ana"), stack.agent("ben")
        sid = _wrapping_up(stack, ana)
        # ben is free from now on: idle longer than ana, so without the owner's preference he would get it
        assert ben.call("set_presence", {"presence": "available"})["ok"]
        wrapping = ana.wait_for(lambda s: s["agent"]["work"] == "wrap_up", what="wrap-up")
        assert wrapping["call"]["callback_zone"] == "America/New_York"
        refused = ana.call("wrap_up", {"call_sid": sid, "disposition": "callback", "note": "Call me back"})
        assert refused["ok"] is False and refused["error"] == "pick the date and time to call back"
        due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=8)
        local = due.astimezone(ZoneInfo("America/New_York")).strftime("%Y-%m-%dT%H:%M:%S")
        assert ana.call("wrap_up", {"call_sid": sid, "disposition": "callback", "note": "Call me back",
                                    "callback": {"at": local, "owner": "me"}}) == {"ok": True}
        with transaction(stack.sessions) as session:
            booked = session.scalar(select(ScheduledCallback))
            assert (booked.due_at, booked.zone, booked.phone, booked.owner.login) == (
                due, "America/New_York", GRACE, "ana")
            grace = session.get(Customer, booked.customer_id)
            card = customer_card(session, grace, GRACE, datetime.now(UTC))
        if booked.status == "scheduled":  # not yet due (a very slow machine may have routed it already)
            assert [(c["kind"], c["at"], c["owner"]) for c in card["callbacks"]] == [
                ("scheduled", due.isoformat(), "Ana")]

        # at the due time it is offered to ana (the owner), not to ben who has waited longer
        routed = ana.wait_for(lambda s: s["offer"] and s["offer"]["call_sid"].startswith("SC"), seconds=40,
                              what="the booked callback's offer")
        assert routed["offer"]["callback"] is True and routed["offer"]["customer"]["name"] == "Grace Hopper"
        callback_sid = routed["offer"]["call_sid"]
        assert ben.latest is None or not (ben.latest["offer"] and ben.latest["offer"]["call_sid"] == callback_sid)
        assert ana.call("accept", {"call_sid": callback_sid}) == {"ok": True}
        ana.wait_for(lambda s: s["agent"]["work"] == "wrap_up" and s["call"]["call_sid"] == callback_sid,
                     seconds=40, what="wrap-up after the callback")
        assert ana.call("wrap_up", {"call_sid": callback_sid, "disposition": "resolved", "note": "Done"})["ok"]
        call = stack.wait_for_call(callback_sid, lambda c: c.disposition == "resolved", "the callback's disposition")
        with transaction(stack.sessions) as session:
            legs = {leg.leg: leg for leg in session.scalars(select(Call).where(Call.parent_sid == callback_sid))}
            assert legs["callback"].status == "completed" and legs["callback"].to_number == GRACE
            assert legs["agent"].agent_id == call.agent_id
            assert session.get(Agent, call.agent_id).login == "ana"
            booked = session.scalar(select(ScheduledCallback))
            assert (booked.status, booked.routed_sid) == ("routed", callback_sid)
            assert customer_card(session, session.get(Customer, booked.customer_id), GRACE,
                                 datetime.now(UTC))["callbacks"] == []
    finally:
        stack.stop()


def test_booking_needs_an_owner_and_an_open_queue_and_puts_the_callback_on_the_timeline(sessions):
    with transaction(sessions) as session:
        add_agent(session, "ana", "Ana", PASSWORD, "agent", {})
        add_queue(session, "Support", QUEUE_NUMBER, {"support": 1})
        queue = session.scalar(select(Queue))
        # open Monday to Friday, 09:00-17:00 New York time (NOW is Monday 2 March 2026, 10:00 there)
        queue.hours = {"timezone": "America/New_York", "days": {str(d): ["09:00", "17:00"] for d in range(5)}}
        ana = session.scalar(select(Agent))
        grace = Customer(name="Grace Hopper", phones=[CustomerPhone(number=GRACE)])
        session.add(grace)
        session.flush()
        call = Call(sid="CA" + "7" * 32, direction="inbound", from_number=GRACE, to_number=QUEUE_NUMBER,
                    customer_id=grace.id, queue_id=queue.id, status="completed", routing_state="ended")
        session.add(call)
        session.flush()
        with pytest.raises(FlowError, match="owned by you"):
            book_callback(session, call, ana.id, {"at": "2026-03-02T11:00", "owner": "team"}, NOW, WINDOW)
        with pytest.raises(FlowError, match="Support is closed at that time"):
            book_callback(session, call, ana.id, {"at": "2026-03-02T18:00", "owner": "me"}, NOW, WINDOW)
        booked = book_callback(session, call, ana.id, {"at": "2026-03-02T16:30", "owner": "queue"}, NOW, WINDOW)
        booked_id, grace_id = booked.id, grace.id
    with transaction(sessions) as session:
        booked = session.get(ScheduledCallback, booked_id)
        assert (booked.due_at, booked.owner_agent_id, booked.status) == (
            datetime(2026, 3, 2, 21, 30, tzinfo=UTC), None, "scheduled")
        entries = [e.summary for e in session.scalars(select(TimelineEntry).where(TimelineEntry.customer_id == grace_id))]
        assert entries == ["Callback booked for Mon 02 Mar 16:30 (America/New_York), by the queue"]
        card = customer_card(session, session.get(Customer, grace_id), GRACE, NOW)
        assert [(c["kind"], c["owner"], c["where"]) for c in card["callbacks"]] == [
            ("scheduled", "anyone in the queue", "Support")]


def test_the_sweeper_routes_a_booked_callback_whose_job_was_lost(database_url, redis_client):
    from hub.services import build_services
    from hub.sweeper import sweep
    from tests.conftest import make_settings

    services = build_services(make_settings(database_url))
    try:
        with transaction(services.sessions) as session:
            add_queue(session, "Support", QUEUE_NUMBER, {"support": 1})
            grace = Customer(name="Grace Hopper", phones=[CustomerPhone(number=GRACE)])
            session.add(grace)
            session.flush()
            # booked, but its RQ job never ran (Redis lost it): the database still says "scheduled"
            session.add(ScheduledCallback(customer_id=grace.id, queue_id=session.scalar(select(Queue.id)),
                                          phone=GRACE, due_at=datetime.now(UTC) - timedelta(minutes=2),
                                          zone="America/New_York", booked_at=datetime.now(UTC) - timedelta(hours=1),
                                          status="scheduled"))
            session.add(ScheduledCallback(customer_id=grace.id, queue_id=session.scalar(select(Queue.id)),
                                          phone=GRACE, due_at=datetime.now(UTC) + timedelta(hours=2),
                                          zone="America/New_York", booked_at=datetime.now(UTC), status="scheduled"))
        repairs = sweep(services)
        assert [r for r in repairs if "booked callback" in r] == ["booked callback 1 was past its due time and not routed"]
        assert not [r for r in sweep(services) if "booked callback" in r]  # routed once
        with transaction(services.sessions) as session:
            overdue, later = session.scalars(select(ScheduledCallback).order_by(ScheduledCallback.id)).all()
            assert overdue.status == "routed" and later.status == "scheduled"
            routed = session.scalar(select(Call).where(Call.sid == overdue.routed_sid))
            assert routed.callback and routed.routing_state == "waiting" and routed.customer_id == grace.id
    finally:
        services.close()
