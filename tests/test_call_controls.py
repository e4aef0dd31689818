"""In-call controls on the real stack: hub web and worker processes, Socket.IO consoles, and the carrier
simulator, which validates every REST request (participant updates and creates included) against Twilio's
published OpenAPI description and plays the conference: hold music, mute, coaching, participants joining."""
from __future__ import annotations

import re

import pytest
import requests
import socketio
from sqlalchemy import select

from hub.admin import add_agent
from hub.db import transaction
from hub.models import Call, Customer, CustomerPhone, Leg, TimelineEntry
from tests.conftest import sign, wait_until
from tests.stack import PASSWORD, QUEUE_NUMBER, Stack

GRACE = "+12125550001"  # Grace Hopper, on file
STRANGER = "+13125550077"  # never called before: an unknown caller


@pytest.fixture
def stack(processes, sqlite_url, redis_client):
    stack = Stack(processes, sqlite_url)
    yield stack
    stack.stop()


@pytest.fixture
def any_db_stack(processes, database_url, redis_client):
    stack = Stack(processes, database_url)
    yield stack
    stack.stop()


def _talking(stack, client, caller=GRACE, talk_seconds=60):
    """Place a call, have `client` accept it, and wait until the in-call controls are usable."""
    assert client.call("set_presence", {"presence": "available"})["ok"]
    sid = stack.sim.place_inbound_call(caller, QUEUE_NUMBER, talk_seconds=talk_seconds, patience_seconds=60)
    client.wait_for(lambda s: s["offer"] and s["offer"]["call_sid"] == sid, what="the offer")
    assert client.call("accept", {"call_sid": sid}) == {"ok": True}
    client.wait_for(lambda s: s["call"] and s["call"]["controls"]["ready"], what="controls ready")
    wait_until(lambda: _participant(stack, sid), message="the caller in the conference (after the greeting)")
    return sid


def _participant(stack, call_sid):
    """The carrier's view of a leg's conference participant (None once it left)."""
    carrier = stack.sim.carrier
    with carrier.lock:
        leg = carrier.get(call_sid)
        conf = carrier.conferences.by_sid.get(leg.conference_sid or "") if leg else None
        p = conf.participants.get(call_sid) if conf else None
        return None if p is None else {"hold": p.hold, "muted": p.muted, "coaching": p.coaching,
                                       "coach": p.call_sid_to_coach, "end": p.end, "conference": conf.sid}


def _legs(stack, parent_sid, kind):
    with transaction(stack.sessions) as session:
        return list(session.scalars(select(Call).where(Call.parent_sid == parent_sid, Call.leg == kind)
                                    .order_by(Call.id)))


def _supervisor_socket(stack, login):
    token = requests.post(f"{stack.url()}/api/v1/auth/token", json={"login": login, "password": PASSWORD},
                          timeout=10).json()["token"]
    client = socketio.Client(reconnection=False)
    client.connect(stack.url(), namespaces=["/supervisor"], auth={"token": token}, transports=["websocket"],
                   wait_timeout=10)
    return client


def test_the_agent_holds_resumes_mutes_and_writes_notes_that_reach_the_call_and_timeline(any_db_stack):
    stack = any_db_stack
    stack.seed([("ana", {"support": 1}), ("ben", {"support": 1})])
    stack.start()
    ana, ben = stack.agent("ana"), stack.agent("ben")
    sid = _talking(stack, ana)
    assert stack.call_row(sid).conference_sid == _participant(stack, sid)["conference"]

    assert ana.call("hold", {"call_sid": sid, "hold": True}) == {"ok": True}
    ana.wait_for(lambda s: s["call"]["controls"]["on_hold"], what="the call on hold")
    assert _participant(stack, sid)["hold"] is True
    # the held customer hears the hub's hold music (the carrier fetched the signed HoldUrl)
    wait_until(lambda: any(e["path"] == "/webhooks/voice/hold-music" and e["http_status"] == 200
                           for e in stack.sim.carrier.get(sid).events), message="the hold music fetched")
    assert ana.call("hold", {"call_sid": sid, "hold": True}) == {"ok": True}  # a repeated click does no harm
    assert ana.call("hold", {"call_sid": sid, "hold": False}) == {"ok": True}
    ana.wait_for(lambda s: not s["call"]["controls"]["on_hold"], what="the call resumed")
    assert _participant(stack, sid)["hold"] is False

    assert ana.call("mute", {"call_sid": sid, "muted": True}) == {"ok": True}
    ana.wait_for(lambda s: s["call"]["controls"]["muted"], what="ana muted")
    agent_leg = _legs(stack, sid, Leg.AGENT.value)[0].sid
    assert _participant(stack, agent_leg)["muted"] is True and _participant(stack, sid)["muted"] is False
    assert ana.call("mute", {"call_sid": sid, "muted": False}) == {"ok": True}
    ana.wait_for(lambda s: not s["call"]["controls"]["muted"], what="ana unmuted")

    # another agent may not touch ana's call; bad input gets a message
    refused = ben.call("hold", {"call_sid": sid, "hold": True})
    assert refused["ok"] is False and "not on that call" in refused["error"]
    assert ana.call("hold", {"call_sid": sid, "hold": "yes"})["error"] == "hold must be true or false"
    assert ana.call("add_note", {"call_sid": sid, "text": "  "})["ok"] is False

    assert ana.call("add_note", {"call_sid": sid, "text": "Wants the invoice resent"}) == {"ok": True}
    noted = ana.wait_for(lambda s: s["call"]["controls"]["notes"], what="the note in the snapshot")
    assert [n["text"] for n in noted["call"]["controls"]["notes"]] == ["Wants the invoice resent"]
    assert stack.call_row(sid).note == "Wants the invoice resent"  # saved on the call before wrap-up
    ana.close()  # a reload: a new console reads the note back from the server
    again = stack.agent("ana")
    assert [n["text"] for n in again.wait_for(lambda s: s["call"] is not None)["call"]["controls"]["notes"]] == [
        "Wants the invoice resent"]

    assert again.call("hang_up", {"call_sid": sid}) == {"ok": True}
    again.wait_for(lambda s: s["agent"]["work"] == "wrap_up", what="wrap-up")
    assert again.call("wrap_up", {"call_sid": sid, "disposition": "resolved", "note": "Sent it"})["ok"]
    call = stack.wait_for_call(sid, lambda c: c.disposition == "resolved", "the disposition")
    assert call.note == "Wants the invoice resent\nSent it"
    with transaction(stack.sessions) as session:
        notes = session.scalars(select(TimelineEntry).where(TimelineEntry.call_id == call.id,
                                                            TimelineEntry.kind == "note")).all()
        assert [n.details["note"] for n in notes] == ["Wants the invoice resent"]


def test_a_cold_transfer_to_a_queue_requeues_the_caller_on_hold_and_the_next_agent_takes_them(any_db_stack):
    stack = any_db_stack
    stack.seed([("ana", {"support": 1}), ("ben", {"support": 1})])
    stack.start()
    ana, ben = stack.agent("ana"), stack.agent("ben")
    assert ben.call("set_presence", {"presence": "break", "reason": "meeting"})["ok"]
    sid = _talking(stack, ana)
    ana_leg = _legs(stack, sid, Leg.AGENT.value)[0].sid

    assert ana.call("transfer", {"call_sid": sid, "kind": "cold", "queue": "Support"}) == {"ok": True}
    ana.wait_for(lambda s: s["agent"]["work"] == "wrap_up", what="ana's wrap-up after the cold transfer")
    wait_until(lambda: stack.sim.carrier.get(ana_leg).ended, message="ana's leg gone")
    # the customer stayed, on hold with the music, and waits in line again (with their arrival time)
    assert not stack.sim.carrier.get(sid).ended and _participant(stack, sid)["hold"] is True
    with transaction(stack.sessions) as session:
        row = session.scalar(select(Call).where(Call.parent_sid == sid, Call.transfer_kind == "cold"))
        original = session.scalar(select(Call).where(Call.sid == sid))
        assert row.routing_state == "waiting" and row.created_at == original.created_at
        transfer_sid = row.sid
    assert ana.call("wrap_up", {"call_sid": sid, "disposition": "resolved", "note": ""})["ok"]

    assert ben.call("set_presence", {"presence": "available"})["ok"]
    ben.wait_for(lambda s: s["offer"] and s["offer"]["call_sid"] == transfer_sid, what="the transferred offer")
    assert ben.call("accept", {"call_sid": transfer_sid}) == {"ok": True}
    talking = ben.wait_for(lambda s: s["call"] and s["call"]["controls"]["ready"], what="ben talking")
    assert talking["call"]["controls"]["transferred_from"] == "Ana"
    assert talking["call"]["customer"]["name"] == "Grace Hopper"
    wait_until(lambda: _participant(stack, sid) and _participant(stack, sid)["hold"] is False,
               message="the customer taken off hold when ben joined")
    # ben's controls act on the customer's real leg
    assert ben.call("hold", {"call_sid": transfer_sid, "hold": True}) == {"ok": True}
    wait_until(lambda: _participant(stack, sid)["hold"] is True, message="held by ben")
    assert ben.call("hang_up", {"call_sid": transfer_sid}) == {"ok": True}
    ben.wait_for(lambda s: s["agent"]["work"] == "wrap_up", what="ben's wrap-up")
    assert ben.call("wrap_up", {"call_sid": transfer_sid, "disposition": "sale", "note": ""})["ok"]
    stack.wait_for_call(transfer_sid, lambda c: c.disposition == "sale", "ben's disposition")
    with transaction(stack.sessions) as session:
        summaries = [e.summary for e in session.scalars(select(TimelineEntry).where(
            TimelineEntry.customer_id == original.customer_id))]
    assert "Cold transfer to Support by Ana" in summaries
    assert any(s.startswith("Transferred call in Support, answered by Ben") for s in summaries)
    assert any(s.startswith("Inbound call to Support, answered by Ana") for s in summaries)


def test_a_warm_transfer_keeps_the_agent_on_until_the_target_joins_then_they_leave(stack):
    stack.seed([("ana", {"support": 1}), ("ben", {"support": 1})])
    stack.start()
    ana, ben = stack.agent("ana"), stack.agent("ben")
    sid = _talking(stack, ana)
    busy = ana.call("transfer", {"call_sid": sid, "kind": "warm"})
    assert busy["ok"] is False and "choose who" in busy["error"]
    assert ben.call("set_presence", {"presence": "break", "reason": "lunch"})["ok"]
    targets = ana.call("transfer_targets")
    assert [(a["name"], a["free"]) for a in targets["agents"]] == [("Ben", False)] and targets["queues"] == ["Support"]
    ben_id = targets["agents"][0]["id"]
    refused = ana.call("transfer", {"call_sid": sid, "kind": "warm", "agent_id": ben_id})
    assert refused["ok"] is False and "not free" in refused["error"]  # ben is on a break

    assert ben.call("set_presence", {"presence": "available"})["ok"]
    assert ana.call("transfer", {"call_sid": sid, "kind": "warm", "agent_id": ben_id}) == {"ok": True}
    offer = ben.wait_for(lambda s: s["offer"] is not None, what="ben's offer")["offer"]
    pending = ana.wait_for(lambda s: s["call"]["controls"]["transfer"], what="the transfer pending")
    assert pending["agent"]["work"] == "on_call" and pending["call"]["controls"]["transfer"]["kind"] == "warm"
    early = ana.call("complete_transfer", {"call_sid": sid})
    assert early["ok"] is False and "joined" in early["error"]
    assert ben.call("accept", {"call_sid": offer["call_sid"]}) == {"ok": True}
    ana.wait_for(lambda s: (s["call"]["controls"]["transfer"] or {}).get("state") == "connected", what="ben joined")
    conference = _participant(stack, sid)["conference"]
    with stack.sim.carrier.lock:
        assert len(stack.sim.carrier.conferences.by_sid[conference].participants) == 3  # three-way

    assert ana.call("complete_transfer", {"call_sid": sid}) == {"ok": True}
    ana.wait_for(lambda s: s["agent"]["work"] == "wrap_up", what="ana's wrap-up")
    ana_leg = _legs(stack, sid, Leg.AGENT.value)[0].sid
    wait_until(lambda: stack.sim.carrier.get(ana_leg).ended, message="ana's leg gone")
    assert not stack.sim.carrier.get(sid).ended  # the customer is still talking, now to ben
    with stack.sim.carrier.lock:
        assert len(stack.sim.carrier.conferences.by_sid[conference].participants) == 2
    assert ben.wait_for(lambda s: s["call"] is not None)["agent"]["work"] == "on_call"


def test_supervisors_listen_whisper_and_barge_and_agents_can_bring_one_in_but_not_monitor(stack):
    stack.seed([("ana", {"support": 1})])
    with transaction(stack.sessions) as session:
        sue_id = add_agent(session, "sue", "Sue", PASSWORD, "supervisor").id
    stack.start()
    ana = stack.agent("ana")
    sid = _talking(stack, ana)
    ana_leg = _legs(stack, sid, Leg.AGENT.value)[0].sid
    sue = _supervisor_socket(stack, "sue")
    try:
        assert sue.call("monitor", {"call_sid": sid, "mode": "listen"}, namespace="/supervisor") == {"ok": True}
        legs = wait_until(lambda: [leg for leg in _legs(stack, sid, Leg.SUPERVISOR.value)
                                   if _participant(stack, leg.sid)], message="sue's leg in the conference")
        sue_leg = legs[0].sid
        assert _participant(stack, sue_leg)["muted"] is True and _participant(stack, sue_leg)["end"] is False
        assert sue.call("monitor", {"call_sid": sid, "mode": "whisper"}, namespace="/supervisor") == {"ok": True}
        whisper = _participant(stack, sue_leg)
        assert whisper["coaching"] is True and whisper["coach"] == ana_leg and whisper["muted"] is False
        assert sue.call("monitor", {"call_sid": sid, "mode": "barge"}, namespace="/supervisor") == {"ok": True}
        barge = _participant(stack, sue_leg)
        assert barge["coaching"] is False and barge["muted"] is False
        assert len(_legs(stack, sid, Leg.SUPERVISOR.value)) == 1  # one leg, three modes
        shown = ana.wait_for(lambda s: any(v["mode"] == "barge" for v in s["call"]["controls"]["supervisors"]),
                             what="sue shown on ana's console")
        assert shown["call"]["controls"]["supervisors"] == [{"name": "Sue", "mode": "barge"}]
        bad = sue.call("monitor", {"call_sid": sid, "mode": "shout"}, namespace="/supervisor")
        assert bad["ok"] is False and "listen" in bad["error"]
        assert sue.call("stop_monitoring", {"call_sid": sid}, namespace="/supervisor") == {"ok": True}
        wait_until(lambda: _participant(stack, sue_leg) is None, message="sue left")
        assert not stack.sim.carrier.get(sid).ended  # her leaving did not end the call
    finally:
        sue.disconnect()

    # the agent cannot monitor (no such action on /agent, and the flow itself refuses agents)...
    from hub.call_controls import Actor, monitor
    from hub.errors import FlowError
    from hub.services import build_services

    services = build_services(stack.settings)
    try:
        with pytest.raises(FlowError, match="only a supervisor"):
            monitor(services, Actor(id=1, supervisor=False), sid, "listen")
    finally:
        services.close()
    # ...but she can bring a supervisor in: sue's phone joins everyone, unmuted. The hub may not have heard
    # yet that sue's last leg hung up (its status callback is on its way): pin that moment with a leg row
    # the hub still thinks live but the conference no longer holds; she is rung again, not refused.
    stale = "CA" + "5" * 32
    with transaction(stack.sessions) as session:
        session.add(Call(sid=stale, parent_sid=sid, leg=Leg.SUPERVISOR.value, agent_id=sue_id, status="in-progress",
                         direction="outbound-api", from_number="+15005550006", to_number="client:sue"))
    assert ana.call("bring_in_supervisor", {"call_sid": sid, "supervisor_id": sue_id}) == {"ok": True}
    joined = wait_until(lambda: [leg for leg in _legs(stack, sid, Leg.SUPERVISOR.value)
                                 if _participant(stack, leg.sid)], message="sue brought in")
    assert joined[0].sid != stale
    assert _participant(stack, joined[0].sid)["muted"] is False
    not_sup = ana.call("bring_in_supervisor", {"call_sid": sid, "supervisor_id": 1})
    assert not_sup["ok"] is False and "not a supervisor" in not_sup["error"]


def _browser_session(stack, login):
    """A logged-in HTTP session like the browser's, with the page's CSRF token."""
    http = requests.Session()
    page = http.get(f"{stack.url()}/login", timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    http.post(f"{stack.url()}/login", data={"login": login, "password": PASSWORD, "csrf_token": token}, timeout=10)
    console = http.get(f"{stack.url()}/agent", timeout=10).text
    return http, re.search(r'<meta name="csrf-token" content="([^"]+)"', console).group(1)


def test_an_unknown_caller_is_merged_into_an_existing_customer_with_their_history(any_db_stack):
    stack = any_db_stack
    stack.seed([("ana", {"support": 1}), ("ben", {"support": 1})])
    stack.start()
    ana = stack.agent("ana")
    sid = _talking(stack, ana, caller=STRANGER)
    card = ana.wait_for(lambda s: s["call"] is not None)["call"]["customer"]
    assert card["known"] is False
    unknown_id = card["id"]
    http, csrf = _browser_session(stack, "ana")

    found = http.get(f"{stack.url()}/console/customers", params={"q": "grace"}, timeout=10).json()["customers"]
    assert [c["name"] for c in found] == ["Grace Hopper"]
    assert http.get(f"{stack.url()}/console/customers", params={"q": "2125550001"}, timeout=10).json()[
        "customers"][0]["name"] == "Grace Hopper"
    grace_id = found[0]["id"]
    url = f"{stack.url()}/console/calls/{sid}/customer/merge"
    assert http.post(url, json={"customer_id": grace_id}, timeout=10).status_code == 400  # no CSRF token
    other, other_csrf = _browser_session(stack, "ben")
    # ben holds no call: he has no caller to identify, so no customer data either
    nosy = other.get(f"{stack.url()}/console/customers", params={"q": "grace"}, timeout=10)
    assert nosy.status_code == 403 and "current call" in nosy.json()["error"]
    refused = other.post(url, json={"customer_id": grace_id}, headers={"X-CSRF-Token": other_csrf}, timeout=10)
    assert refused.status_code == 403 and "your own current call" in refused.json()["error"]
    assert requests.post(url, json={"customer_id": grace_id}, timeout=10).status_code == 401

    merged = http.post(url, json={"customer_id": grace_id}, headers={"X-CSRF-Token": csrf}, timeout=10)
    assert merged.status_code == 200 and STRANGER in merged.json()["customer"]["phones"]
    pop = ana.wait_for(lambda s: s["call"]["customer"]["name"] == "Grace Hopper", what="the screen pop refreshed")
    assert pop["call"]["customer"]["known"] is True
    with transaction(stack.sessions) as session:
        assert session.get(Customer, unknown_id) is None  # the prospect is gone
        assert session.scalar(select(CustomerPhone).where(CustomerPhone.number == STRANGER)).customer_id == grace_id
        assert session.scalar(select(Call).where(Call.sid == sid)).customer_id == grace_id
    again = http.post(url, json={"customer_id": grace_id}, headers={"X-CSRF-Token": csrf}, timeout=10)
    assert again.status_code == 400 and "only an unknown caller" in again.json()["error"]

    # the call's end lands on Grace's timeline
    assert ana.call("hang_up", {"call_sid": sid})["ok"]
    stack.wait_for_call(sid, lambda c: c.routing_state == "ended" and c.ended_at, "the call to end")
    with transaction(stack.sessions) as session:
        kinds = {e.kind for e in session.scalars(select(TimelineEntry).where(TimelineEntry.customer_id == grace_id))}
    assert {"call", "note"} <= kinds


def test_an_unknown_caller_is_named_from_the_screen_pop(stack):
    stack.seed([("ana", {"support": 1})])
    stack.start()
    ana = stack.agent("ana")
    sid = _talking(stack, ana, caller=STRANGER)
    http, csrf = _browser_session(stack, "ana")
    url = f"{stack.url()}/console/calls/{sid}/customer"
    bad = http.post(url, json={"name": "Ada", "email": "not-an-email"}, headers={"X-CSRF-Token": csrf}, timeout=10)
    assert bad.status_code == 400 and "email" in bad.json()["error"]
    assert http.post(url, json={"name": ""}, headers={"X-CSRF-Token": csrf}, timeout=10).status_code == 400
    created = http.post(url, json={"name": "Ada Lovelace", "email": "ada@example.org"},
                        headers={"X-CSRF-Token": csrf}, timeout=10)
    assert created.status_code == 201 and created.json()["customer"]["email"] == "ada@example.org"
    pop = ana.wait_for(lambda s: s["call"]["customer"]["name"] == "Ada Lovelace", what="the screen pop refreshed")
    assert pop["call"]["customer"]["known"] is True and pop["call"]["customer"]["phones"] == [STRANGER]


def test_the_hold_music_webhook_is_signed_twiml(stack):
    stack.seed([("ana", {"support": 1})])
    stack.start()
    url = f"{stack.url()}/webhooks/voice/hold-music?call=CA1"
    params = {"CallSid": "CA" + "1" * 32}
    assert requests.post(url, data=params, timeout=10).status_code == 403
    answer = requests.post(url, data=params, headers={"X-Twilio-Signature": sign(url, params)}, timeout=10)
    assert answer.status_code == 200 and "<Say>" in answer.text and "<Pause" in answer.text
