"""End to end on the real stack: simulator -> signed webhooks -> hub web process -> Socket.IO console ->
REST agent leg -> conference -> status callbacks -> wrap-up -> the customer's timeline. RQ timers run on a
real worker process."""
from __future__ import annotations

import pytest
import requests
from sqlalchemy import select

from hub.admin import add_agent
from hub.db import transaction
from hub.models import Call, CallEvent
from tests.stack import QUEUE_NUMBER, Stack


@pytest.fixture
def stack(processes, sqlite_url, redis_client):
    stack = Stack(processes, sqlite_url)
    yield stack
    stack.stop()


def test_an_inbound_call_reaches_the_agent_and_lands_on_the_customer_timeline(stack):
    stack.seed([("ana", {"support": 2})])
    stack.start()
    ana = stack.agent("ana")
    assert ana.wait_for(lambda s: True)["agent"]["presence"] == "offline"
    assert ana.call("set_presence", {"presence": "available"}) == {"ok": True}

    sid = stack.sim.place_inbound_call("+12125550001", QUEUE_NUMBER, talk_seconds=2, patience_seconds=60)
    offered = ana.wait_for(lambda s: s["offer"] and s["offer"]["call_sid"] == sid, what="the offer")
    customer = offered["offer"]["customer"]
    assert customer["name"] == "Grace Hopper" and customer["tier"] == "gold" and customer["stage"] == "loyal"
    assert offered["agent"]["work"] == "offered"

    assert ana.call("accept", {"call_sid": sid}) == {"ok": True}
    talking = ana.wait_for(lambda s: s["call"] and s["call"]["connected_at"], what="the connected call")
    assert talking["agent"]["work"] == "on_call"
    # the simulated caller hangs up after 2 s of talk; the completed callback starts wrap-up
    wrapping = ana.wait_for(lambda s: s["agent"]["work"] == "wrap_up", what="wrap-up")
    assert wrapping["call"]["call_sid"] == sid and wrapping["call"]["wrap_up_until"]

    assert ana.call("wrap_up", {"call_sid": sid, "disposition": "resolved", "note": "Reset her router"}) == {"ok": True}
    ana.wait_for(lambda s: s["agent"]["work"] == "idle" and s["call"] is None, what="idle after wrap-up")

    call = stack.call_row(sid)
    assert call.status == "completed" and call.disposition == "resolved" and call.duration_s >= 2
    token = requests.post(f"{stack.url()}/api/v1/auth/token", json={"login": "ana", "password": "password1"},
                          timeout=10).json()["token"]
    with transaction(stack.sessions) as session:
        add_agent(session, "sue", "Sue", "password1", "supervisor")
    sue = requests.post(f"{stack.url()}/api/v1/auth/token", json={"login": "sue", "password": "password1"},
                        timeout=10).json()["token"]
    timeline_url = f"{stack.url()}/api/v1/customers/{call.customer_id}/timeline"
    # ana's work with Grace is done, so is her access to Grace's data; a supervisor reads it
    assert requests.get(timeline_url, headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 403
    timeline = requests.get(timeline_url, headers={"Authorization": f"Bearer {sue}"}, timeout=10).json()["entries"]
    trace = requests.get(f"{stack.url()}/api/v1/calls/{sid}/trace", headers={"Authorization": f"Bearer {token}"},
                         timeout=10).json()["decisions"]
    assert [d["outcome"] for d in trace] == ["offered"]
    assert trace[0]["chosen_agent_id"] == call.agent_id and "longest idle" in trace[0]["rule"]
    by_kind = {e["kind"]: e for e in timeline if e["call_sid"] == sid}
    assert by_kind["call"]["duration"] == call.duration_s and by_kind["call"]["agent"] == "Ana"
    assert by_kind["call"]["disposition"] == "resolved"
    assert by_kind["disposition"]["note"] == "Reset her router"
    with transaction(stack.sessions) as session:
        legs = session.scalars(select(Call).where(Call.parent_sid == sid)).all()
        assert [(leg.leg, leg.status, leg.agent_id) for leg in legs] == [("agent", "completed", call.agent_id)]
        sequences = session.scalars(select(CallEvent.sequence_number).where(
            CallEvent.source_sid == legs[0].sid).order_by(CallEvent.sequence_number)).all()
        assert sequences == list(range(len(sequences))) and len(sequences) >= 3


def test_an_unanswered_offer_moves_to_the_next_agent_when_the_worker_times_it_out(stack):
    stack.seed([("ana", {"support": 1}), ("ben", {"support": 1})], offer_timeout_s=2)
    stack.start()
    ana, ben = stack.agent("ana"), stack.agent("ben")
    assert ana.call("set_presence", {"presence": "available"})["ok"]
    assert ben.call("set_presence", {"presence": "available"})["ok"]
    sid = stack.sim.place_inbound_call("+12125550001", QUEUE_NUMBER, talk_seconds=1, patience_seconds=60)
    # ana has been idle longest, so she is offered first; she lets it ring out
    ana.wait_for(lambda s: s["offer"] and s["offer"]["call_sid"] == sid, what="the first offer")
    ben.wait_for(lambda s: s["offer"] and s["offer"]["call_sid"] == sid, seconds=20, what="the offer after timeout")
    late = ana.call("accept", {"call_sid": sid})
    assert late["ok"] is False and "not offered" in late["error"]
    ana.wait_for(lambda s: s["offer"] is None and s["agent"]["work"] == "idle", what="the offer withdrawn")
    assert ben.call("accept", {"call_sid": sid}) == {"ok": True}
    stack.wait_for_call(sid, lambda c: c.status == "completed", "the call to complete")
    assert stack.call_row(sid).agent.login == "ben"


def test_a_caller_who_runs_out_of_patience_is_booked_as_abandoned(stack):
    stack.seed([("ana", {"support": 1})])
    stack.start()
    sid = stack.sim.place_inbound_call("+12125550001", QUEUE_NUMBER, talk_seconds=5, patience_seconds=1.5)
    call = stack.wait_for_call(sid, lambda c: c.routing_state == "ended", "the abandoned call")
    assert call.connected_at is None and call.agent_id is None and call.status == "completed"
    with transaction(stack.sessions) as session:
        hold_fetches = session.scalars(select(CallEvent).where(CallEvent.call_sid == sid)).all()
    assert hold_fetches, "the conference and status events of the abandoned call were recorded"


def test_every_status_callback_delivered_twice_still_leaves_one_correct_final_state(processes, sqlite_url,
                                                                                   redis_client):
    stack = Stack(processes, sqlite_url, duplicate_rate=1.0)
    try:
        stack.seed([("ana", {"support": 1})])
        stack.start()
        ana = stack.agent("ana")
        assert ana.call("set_presence", {"presence": "available"})["ok"]
        sid = stack.sim.place_inbound_call("+12125550001", QUEUE_NUMBER, talk_seconds=1, patience_seconds=60)
        ana.wait_for(lambda s: s["offer"] and s["offer"]["call_sid"] == sid, what="the offer")
        assert ana.call("accept", {"call_sid": sid})["ok"]
        ana.wait_for(lambda s: s["agent"]["work"] == "wrap_up", what="wrap-up")
        assert ana.call("wrap_up", {"call_sid": sid, "disposition": "resolved", "note": ""})["ok"]
        call = stack.wait_for_call(sid, lambda c: c.disposition == "resolved", "the disposition")
        with transaction(stack.sessions) as session:
            leg = session.scalars(select(Call).where(Call.parent_sid == sid)).one()
            events = session.scalars(select(CallEvent).where(CallEvent.kind == "status")).all()
        assert call.status == "completed" and leg.status == "completed"
        keys = [(e.source_sid, e.sequence_number) for e in events]
        assert len(keys) == len(set(keys)) and len([k for k in keys if k[0] == leg.sid]) == 4
        # the timeline got the call once, not once per delivery
        timeline = [e for e in _timeline(stack, call.customer_id) if e.call_id == call.id and e.kind == "call"]
        assert len(timeline) == 1
    finally:
        stack.stop()


def _timeline(stack, customer_id):
    from hub.customers import timeline

    with transaction(stack.sessions) as session:
        return timeline(session, customer_id)


def test_a_caller_past_the_maximum_wait_is_redirected_to_voicemail_by_the_worker(stack):
    stack.seed([("ana", {"support": 1})])
    from hub.admin import configure_queue
    from hub.models import Queue

    with transaction(stack.sessions) as session:
        configure_queue(session.scalar(select(Queue)), max_wait_s=2, overflow="voicemail")
    stack.start()  # ana stays offline: nobody can answer
    sid = stack.sim.place_inbound_call("+12125550001", QUEUE_NUMBER, talk_seconds=5, patience_seconds=120)
    call = stack.wait_for_call(sid, lambda c: c.status == "completed", "the diverted call to end", seconds=40)
    assert call.routing_outcome == "voicemail" and call.connected_at is None
    leg = stack.sim.carrier.get(sid)
    assert "Record" in leg.verbs, leg.verbs  # the carrier played the voicemail TwiML
    with transaction(stack.sessions) as session:
        from hub.models import RoutingTrace

        rules = [t.rule for t in session.scalars(select(RoutingTrace).where(RoutingTrace.call_sid == sid))]
    assert any("to voicemail" in r for r in rules)


def test_a_caller_who_chooses_a_callback_is_called_back_by_the_next_free_agent(processes, sqlite_url, redis_client):
    # every customer answers quickly and talks 2 s; callbacks allowed all day so the test passes at any hour
    stack = Stack(processes, sqlite_url, carrier=dict(pstn_answer_probability=1.0, machine_probability=0.0,
                                                      pstn_ring_seconds=(0.5, 1.0), pstn_mean_talk=2.0),
                  calling_hours="00:00-23:59")
    try:
        stack.seed([("ana", {"support": 1})])
        from hub.admin import configure_queue
        from hub.models import Queue

        with transaction(stack.sessions) as session:
            configure_queue(session.scalar(select(Queue)), max_wait_s=2, overflow="callback")
        stack.start()
        ana = stack.agent("ana")
        sid = stack.sim.place_inbound_call("+12125550001", QUEUE_NUMBER, talk_seconds=5, patience_seconds=120,
                                           digits="1")
        # nobody answers within 2 s: the caller is offered a callback, presses 1 and hangs up
        stack.wait_for_call(sid, lambda c: c.callback and c.status == "completed", "the booked callback")
        assert stack.call_row(sid).routing_state == "waiting"  # still in line, without holding
        assert ana.call("set_presence", {"presence": "available"})["ok"]
        offered = ana.wait_for(lambda s: s["offer"] and s["offer"]["call_sid"] == sid, what="the callback offer")
        assert offered["offer"]["callback"] is True
        assert ana.call("accept", {"call_sid": sid}) == {"ok": True}
        ana.wait_for(lambda s: s["agent"]["work"] == "wrap_up", seconds=40, what="wrap-up after the callback")
        assert ana.call("wrap_up", {"call_sid": sid, "disposition": "resolved", "note": "Called back"})["ok"]
        call = stack.wait_for_call(sid, lambda c: c.disposition == "resolved", "the disposition")
        with transaction(stack.sessions) as session:
            legs = {leg.leg: leg for leg in session.scalars(select(Call).where(Call.parent_sid == sid))}
            assert legs["callback"].status == "completed" and legs["callback"].to_number == "+12125550001"
            assert legs["agent"].agent_id == call.agent_id
        summaries = [e.summary for e in _timeline(stack, call.customer_id) if e.call_id == call.id]
        assert any(s.startswith("Asked to be called back") for s in summaries)
        assert any(s.startswith("Called back from Support by Ana") for s in summaries)
    finally:
        stack.stop()
