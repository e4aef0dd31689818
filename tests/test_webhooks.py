"""Twilio's webhooks through the Flask app, signed with the twilio library, on SQLite and PostgreSQL."""
from __future__ import annotations

import random
from email.utils import format_datetime
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

import pytest
from sqlalchemy import func, select

from hub.admin import add_agent, add_queue
from hub.app import create_app
from hub.db import transaction
from hub.services import utcnow
from hub.models import Agent, Call, CallEvent, Customer, CustomerPhone, TimelineEntry
from tests.conftest import ACCOUNT_SID, make_settings, new_sid, sign

QUEUE_NUMBER = "+14155550100"


@pytest.fixture
def hub(database_url, redis_client):
    settings = make_settings(database_url)
    app = create_app(settings)
    services = app.extensions["switchboard"]
    with transaction(services.sessions) as session:
        add_queue(session, "Support", QUEUE_NUMBER, {"support": 1})
        session.add(Customer(name="Grace Hopper", value_tier="gold",
                             phones=[CustomerPhone(number="+12125550001")]))
    yield app
    services.close()


def post(app, path: str, params: dict[str, str], *, signature: str | None = None, headers=None):
    url = app.extensions["switchboard"].settings.public_url + path
    sig = sign(url, params) if signature is None else signature
    response = app.test_client().post(path, data=params, headers={"X-Twilio-Signature": sig, **(headers or {})})
    response.close()  # as a WSGI server does once the answer is sent: wakes the router (hub.deferred_routing)
    assert app.extensions["deferred_router"].drain(), "the deferred router did not finish its round"
    return response


def voice_params(sid: str, from_: str = "+12125550001", status: str = "ringing") -> dict[str, str]:
    return {"CallSid": sid, "AccountSid": ACCOUNT_SID, "From": from_, "To": QUEUE_NUMBER, "CallStatus": status,
            "Direction": "inbound", "ApiVersion": "2010-04-01"}


def status_params(sid: str, status: str, seq: int, **extra) -> dict[str, str]:
    params = voice_params(sid, status=status)
    params.update(CallbackSource="call-progress-events", SequenceNumber=str(seq),
                  Timestamp=format_datetime(datetime(2026, 11, 22, 9, 0, seq, tzinfo=UTC), usegmt=True), **extra)
    return params


def count(app, model) -> int:
    with transaction(app.extensions["switchboard"].sessions) as session:
        return session.scalar(select(func.count()).select_from(model))


def the_call(app, sid: str) -> Call:
    with transaction(app.extensions["switchboard"].sessions) as session:
        return session.scalar(select(Call).where(Call.sid == sid))


def test_a_signed_incoming_call_is_recorded_and_held_in_its_own_conference(hub):
    sid = new_sid()
    response = post(hub, "/webhooks/voice/incoming", voice_params(sid))
    assert response.status_code == 200 and response.mimetype == "text/xml"
    doc = ElementTree.fromstring(response.data)
    conference = doc.find("./Dial/Conference")
    assert conference.text == sid
    assert conference.get("startConferenceOnEnter") == "false"
    assert conference.get("waitUrl").startswith("http://127.0.0.1:5000/webhooks/voice/hold")
    call = the_call(hub, sid)
    assert call.routing_state == "waiting" and call.customer.name == "Grace Hopper"
    assert call.queue.name == "Support"


@pytest.mark.parametrize("signature", ["", "bm90IGEgc2lnbmF0dXJl", "forged"])
def test_a_forged_or_unsigned_webhook_gets_403_and_writes_nothing(hub, signature):
    for path in ("/webhooks/voice/incoming", "/webhooks/voice/status", "/webhooks/voice/conference",
                 "/webhooks/voice/agent?call=CAx&agent=1", "/webhooks/voice/hold"):
        assert post(hub, path, voice_params(new_sid()), signature=signature).status_code == 403
    assert count(hub, Call) == 0 and count(hub, CallEvent) == 0 and count(hub, Customer) == 1


def test_a_signature_for_other_parameters_is_refused(hub):
    params = voice_params(new_sid())
    url = "http://127.0.0.1:5000/webhooks/voice/incoming"
    tampered = dict(params, From="+19995550000")
    assert post(hub, "/webhooks/voice/incoming", tampered, signature=sign(url, params)).status_code == 403
    assert count(hub, Call) == 0


def test_a_retried_incoming_webhook_creates_one_call(hub):
    sid = new_sid()
    first = post(hub, "/webhooks/voice/incoming", voice_params(sid))
    second = post(hub, "/webhooks/voice/incoming", voice_params(sid))
    assert first.data == second.data
    assert count(hub, Call) == 1


def test_an_unknown_caller_becomes_a_prospect_and_a_withheld_number_stays_anonymous(hub):
    new_caller, withheld = new_sid(), new_sid()
    post(hub, "/webhooks/voice/incoming", voice_params(new_caller, from_="(415) 555-0177"))
    post(hub, "/webhooks/voice/incoming", voice_params(withheld, from_="anonymous"))
    created = the_call(hub, new_caller).customer
    assert created.name == "Unknown caller" and [p.number for p in created.phones] == ["+14155550177"]
    anonymous = the_call(hub, withheld)
    assert anonymous.customer_id is None and anonymous.from_number == "withheld"


def test_a_webhook_missing_its_call_sid_is_a_clear_400(hub):
    params = voice_params("x")
    del params["CallSid"]
    response = post(hub, "/webhooks/voice/incoming", params)
    assert response.status_code == 400 and b"CallSid" in response.data


def test_duplicate_and_reordered_status_callbacks_leave_one_final_state(hub):
    sid = new_sid()
    post(hub, "/webhooks/voice/incoming", voice_params(sid))
    callbacks = [status_params(sid, "ringing", 0), status_params(sid, "in-progress", 1),
                 status_params(sid, "completed", 2, CallDuration="42", Duration="1")]
    deliveries = callbacks + callbacks[:2] + [callbacks[2]]
    random.Random(4).shuffle(deliveries)
    deliveries.append(status_params(sid, "ringing", 0))  # late, after everything else
    outcomes = [post(hub, "/webhooks/voice/status", p).get_json()["outcome"] for p in deliveries]
    assert outcomes.count("duplicate") == 4
    call = the_call(hub, sid)
    assert call.status == "completed" and call.duration_s == 42 and call.routing_state == "ended"
    assert count(hub, CallEvent) == 3
    # the abandoned call is on the caller's timeline once
    with transaction(hub.extensions["switchboard"].sessions) as session:
        entries = session.scalars(select(TimelineEntry).where(TimelineEntry.call_id == call.id)).all()
    assert [e.kind for e in entries] == ["call"] and "abandoned" in entries[0].summary


def test_a_conference_callback_is_applied_once_and_its_conference_remembered(hub):
    sid, conference = new_sid(), "CF" + new_sid()[2:]
    post(hub, "/webhooks/voice/incoming", voice_params(sid))
    join = {"AccountSid": ACCOUNT_SID, "ConferenceSid": conference, "FriendlyName": sid, "CallSid": sid,
            "StatusCallbackEvent": "participant-join", "SequenceNumber": "1"}
    outcomes = [post(hub, "/webhooks/voice/conference", join).get_json()["outcome"] for _ in range(3)]
    assert outcomes == ["applied", "duplicate", "duplicate"]
    assert count(hub, CallEvent) == 1 and the_call(hub, sid).conference_sid == conference
    ended = dict(join, StatusCallbackEvent="conference-end", SequenceNumber="2", ConferenceSid=conference)
    assert post(hub, "/webhooks/voice/conference", ended).get_json()["outcome"] == "applied"
    assert the_call(hub, sid).conference_sid == conference  # the end does not forget it


def test_a_completed_callback_before_the_answered_one_is_not_undone(hub):
    sid = new_sid()
    post(hub, "/webhooks/voice/incoming", voice_params(sid))
    post(hub, "/webhooks/voice/status", status_params(sid, "completed", 3, CallDuration="9"))
    assert post(hub, "/webhooks/voice/status", status_params(sid, "in-progress", 1)).get_json()["outcome"] == "stale"
    assert the_call(hub, sid).status == "completed"


def test_a_status_callback_for_an_unknown_call_writes_nothing(hub):
    response = post(hub, "/webhooks/voice/status", status_params(new_sid(), "completed", 0))
    assert response.status_code == 200 and response.get_json()["outcome"] == "unknown"
    assert count(hub, CallEvent) == 0 and count(hub, Call) == 0


def test_an_incoming_call_is_offered_to_an_available_agent_and_timed(hub, redis_client):
    services = hub.extensions["switchboard"]
    with transaction(services.sessions) as session:
        add_agent(session, "ana", "Ana", "password1", skills={"support": 2})
    from hub.agent_flows import change_presence

    with transaction(services.sessions) as session:
        agent_id = session.scalar(select(Agent.id).where(Agent.login == "ana"))
    change_presence(services, agent_id, "available")
    sid = new_sid()
    post(hub, "/webhooks/voice/incoming", voice_params(sid))
    call = the_call(hub, sid)
    assert call.routing_state == "offered" and call.agent_id == agent_id
    assert call.offer_expires_at - call.created_at == pytest.approx(timedelta(seconds=15), abs=timedelta(seconds=1))
    # the offer's timeout is a scheduled RQ job
    scheduled = redis_client.zrange(f"rq:scheduled:{services.settings.rq_queue}", 0, -1, withscores=True)
    assert len(scheduled) == 1
    # RQ keeps whole seconds; the timer is rounded up so an offer never expires before its time
    assert call.offer_expires_at.timestamp() <= scheduled[0][1] < call.offer_expires_at.timestamp() + 1


def _available_agent(services) -> int:
    from hub.agent_flows import change_presence

    with transaction(services.sessions) as session:
        add_agent(session, "ana", "Ana", "password1", skills={"support": 2})
        agent_id = session.scalar(select(Agent.id).where(Agent.login == "ana"))
    change_presence(services, agent_id, "available")
    return agent_id


def _unsent(app, path: str, params: dict[str, str]):
    """A webhook whose answer the server has not finished sending (nothing waiting on it ran)."""
    url = app.extensions["switchboard"].settings.public_url + path
    return app.test_client().post(path, data=params, headers={"X-Twilio-Signature": sign(url, params)})


def _unsent_incoming(app, sid: str):
    return _unsent(app, "/webhooks/voice/incoming", voice_params(sid))


def test_the_twiml_goes_out_before_routing_and_a_burst_is_routed_in_one_batch(hub):
    services = hub.extensions["switchboard"]
    agent_id = _available_agent(services)
    first, second = new_sid(), new_sid()
    answers = [_unsent_incoming(hub, first), _unsent_incoming(hub, second)]
    assert all(a.status_code == 200 and b"<Conference" in a.data for a in answers)
    assert {the_call(hub, sid).routing_state for sid in (first, second)} == {"arriving"}
    with transaction(services.sessions) as session:
        assert session.scalar(select(Agent.work).where(Agent.id == agent_id)) == "idle"
    answers[1].close()  # one sent answer wakes the router: every call still arriving is routed, oldest first
    assert hub.extensions["deferred_router"].drain()
    assert (the_call(hub, first).routing_state, the_call(hub, first).agent_id) == ("offered", agent_id)
    assert the_call(hub, second).routing_state == "waiting"
    answers[0].close()  # nothing left to route: changes nothing
    assert hub.extensions["deferred_router"].drain()
    assert the_call(hub, second).routing_state == "waiting"


def test_the_sweeper_puts_in_line_a_call_whose_web_process_died_before_routing_it(hub):
    from hub.sweeper import sweep

    services = hub.extensions["switchboard"]
    agent_id = _available_agent(services)
    sid = new_sid()
    _unsent_incoming(hub, sid)  # the process dies here: the answer went out, the routing never ran
    assert sweep(services) == [] and the_call(hub, sid).routing_state == "arriving"  # too young to be stuck
    services.clock = lambda: utcnow() + timedelta(seconds=10)
    assert sweep(services) == ["1 incoming call(s) or hang-up(s) recorded but never routed"]
    call = the_call(hub, sid)
    assert (call.routing_state, call.agent_id) == ("offered", agent_id)


def test_a_hang_up_is_routed_after_its_answer_and_by_the_sweeper_if_that_never_ran(hub):
    from hub.sweeper import sweep

    services = hub.extensions["switchboard"]
    agent_id = _available_agent(services)
    offered, waiting = new_sid(), new_sid()
    post(hub, "/webhooks/voice/incoming", voice_params(offered))
    post(hub, "/webhooks/voice/incoming", voice_params(waiting))
    answer = _unsent(hub, "/webhooks/voice/status", status_params(offered, "completed", 1, CallDuration="9"))
    assert answer.get_json() == {"outcome": "deferred"}
    call = the_call(hub, offered)  # stored, not yet routed: the agent still holds the offer
    assert (call.status, call.routing_state, call.agent_id) == ("completed", "offered", agent_id)
    answer.close()
    assert hub.extensions["deferred_router"].drain()
    assert (the_call(hub, offered).routing_state, the_call(hub, offered).agent_id) == ("ended", None)
    assert the_call(hub, waiting).routing_state == "offered"  # the freed agent is offered the next caller
    # the next hang-up's process dies before routing it: the sweeper does, once it is old enough
    hang_up = dict(status_params(waiting, "completed", 1, CallDuration="12"),
                   Timestamp=format_datetime(utcnow(), usegmt=True))  # the sweeper's grace counts from the hang-up
    _unsent(hub, "/webhooks/voice/status", hang_up)
    assert sweep(services) == [] and the_call(hub, waiting).routing_state == "offered"
    services.clock = lambda: utcnow() + timedelta(seconds=10)
    assert sweep(services) == ["1 incoming call(s) or hang-up(s) recorded but never routed"]
    assert the_call(hub, waiting).routing_state == "ended"
    with transaction(services.sessions) as session:
        assert session.scalar(select(Agent.work).where(Agent.id == agent_id)) == "idle"


def test_a_caller_who_hangs_up_before_routing_is_never_offered(hub):
    services = hub.extensions["switchboard"]
    agent_id = _available_agent(services)
    sid = new_sid()
    answer = _unsent_incoming(hub, sid)
    post(hub, "/webhooks/voice/status", status_params(sid, "completed", 1, CallDuration="1"))
    answer.close()
    assert hub.extensions["deferred_router"].drain()
    call = the_call(hub, sid)
    assert call.routing_state == "ended" and call.agent_id is None
    with transaction(services.sessions) as session:
        assert session.scalar(select(Agent.work).where(Agent.id == agent_id)) == "idle"


def test_a_call_the_engine_refuses_is_taken_out_of_line_and_does_not_hold_up_the_others(hub):
    services = hub.extensions["switchboard"]
    agent_id = _available_agent(services)
    broken, waiting, fine = new_sid(), new_sid(), new_sid()
    post(hub, "/webhooks/voice/incoming", voice_params(broken))
    post(hub, "/webhooks/voice/incoming", voice_params(waiting))
    with transaction(services.sessions) as session:  # a state routing cannot have made: an offer without its agent
        agent = session.get(Agent, agent_id)
        agent.work, agent.call_sid, agent.presence, agent.break_reason = "idle", None, "break", "meeting"
    answers = [_unsent(hub, "/webhooks/voice/status", status_params(broken, "completed", 1, CallDuration="3")),
               _unsent(hub, "/webhooks/voice/status", status_params(waiting, "completed", 2, CallDuration="4")),
               _unsent_incoming(hub, fine)]
    for answer in answers:
        answer.close()
    assert hub.extensions["deferred_router"].drain()
    assert (the_call(hub, broken).routing_state, the_call(hub, broken).routing_outcome) == ("ended", "routing_error")
    assert the_call(hub, waiting).routing_state == "ended" and the_call(hub, fine).routing_state == "waiting"


def test_a_closed_queue_answers_with_voicemail_and_books_it(hub):
    services = hub.extensions["switchboard"]
    from hub.admin import configure_queue
    from hub.models import Queue

    with transaction(services.sessions) as session:
        queue = session.scalar(select(Queue))
        configure_queue(queue, hours={"timezone": "Pacific/Kiritimati", "days": {}})  # never open
    sid = new_sid()
    doc = ElementTree.fromstring(post(hub, "/webhooks/voice/incoming", voice_params(sid)).data)
    assert doc.find("./Record") is not None and doc.find("./Dial") is None
    assert doc.find("./Record").get("action").endswith(f"/webhooks/voice/voicemail/recorded?call={sid}")
    post(hub, "/webhooks/voice/voicemail/recorded?call=" + sid,
         dict(voice_params(sid, status="in-progress"), RecordingUrl="https://example.com/r.wav", RecordingDuration="7"))
    post(hub, "/webhooks/voice/status", status_params(sid, "completed", 0, CallDuration="20"))
    call = the_call(hub, sid)
    assert call.routing_outcome == "voicemail_after_hours" and call.routing_state == "ended"
    with transaction(services.sessions) as session:
        kinds = {e.kind: e.summary for e in session.scalars(select(TimelineEntry).where(
            TimelineEntry.customer_id == call.customer_id))}
    assert kinds["voicemail"] == "Voicemail, 7 s" and "(closed), sent to voicemail" in kinds["call"]
    queues = hub.test_client().get("/api/v1/queues", headers={"Authorization": "Bearer " + _token(hub)}).get_json()
    support = queues["queues"][0]
    assert (support["after_hours_today"], support["abandoned_today"], support["service_level_today"]) == (1, 0, None)


def _token(app) -> str:
    services = app.extensions["switchboard"]
    with transaction(services.sessions) as session:
        if session.scalar(select(Agent).where(Agent.login == "sup")) is None:
            add_agent(session, "sup", "Sup", "password1", "supervisor")
    return app.test_client().post("/api/v1/auth/token", json={"login": "sup", "password": "password1"}).get_json()["token"]


def test_a_callers_lifetime_value_adds_to_their_tiers_head_start_in_line(hub):
    from crm.models import CustomerValue

    with transaction(hub.extensions["switchboard"].sessions) as session:
        grace = session.scalar(select(Customer).where(Customer.name == "Grace Hopper"))
        session.add(CustomerValue(customer_id=grace.id, clv_cents=300_000))  # 3,000 of expected value
    sid = new_sid()
    assert post(hub, "/webhooks/voice/incoming", voice_params(sid)).status_code == 200
    assert the_call(hub, sid).priority_s == 120 + 15  # gold's 120 s, and 5 s per 1,000 of lifetime value
