"""End-to-end call flows between the simulator and a fake hub, through the real twilio client."""
from __future__ import annotations

import time

from twilio.rest import Client

from hub.telephony import LocalPeerHttpClient
from simulator.legs import FINAL_STATUSES
from tests.simulator.conftest import ACCOUNT_SID, AUTH_TOKEN, CALLER, QUEUE_NUMBER, FakeHub

CONF = "/webhooks/voice/conference"
STATUS = "/webhooks/voice/status"


def _final(sim, sid: str) -> bool:
    leg = sim.carrier.get(sid)
    return leg is not None and leg.status in FINAL_STATUSES


def _dial_agent(client, hub: FakeHub, caller_sid: str, login: str = "alice") -> str:
    """Place the agent leg exactly as the contract says the hub does."""
    placed = client.calls.create(
        to=f"client:{login}", from_="+15005550006", url=hub.url + f"/webhooks/voice/agent?call={caller_sid}",
        method="POST", status_callback=hub.url + STATUS, status_callback_method="POST",
        status_callback_event=["initiated", "ringing", "answered", "completed"], timeout=20,
    )
    assert placed.status == "queued"
    return placed.sid


def test_inbound_call_waits_agent_joins_caller_hangs_up(sim, hub, client):
    caller = sim.place_inbound_call(CALLER, QUEUE_NUMBER, talk_seconds=0.6, patience_seconds=30)
    incoming = hub.wait_for(lambda: hub.of("/webhooks/voice/incoming", caller))
    assert incoming[0].form["Direction"] == "inbound" and incoming[0].form["CallStatus"] == "ringing"
    assert incoming[0].form["ApiVersion"] == "2010-04-01" and incoming[0].form["To"] == QUEUE_NUMBER
    hub.wait_for(lambda: hub.of("/webhooks/voice/hold", caller))  # hold loop fetched while waiting
    agent = _dial_agent(client, hub, caller)
    hub.wait_for(lambda: _final(sim, caller) and _final(sim, agent))
    hub.wait_for(lambda: len(hub.of(STATUS, agent)) >= 4 and hub.of(STATUS, caller))
    time.sleep(0.2)

    assert all(h.signature_ok for h in hub.hits), [h.path for h in hub.hits if not h.signature_ok]

    agent_voice = hub.of("/webhooks/voice/agent", agent)[0].form
    assert agent_voice["Direction"] == "outbound-api" and agent_voice["CallStatus"] == "in-progress"
    assert agent_voice["To"] == "client:alice"

    events = [(h.form["StatusCallbackEvent"], h.form.get("CallSid")) for h in hub.of(CONF)]
    names = [e for e, _ in events]
    assert names.count("participant-join") == 2 and "conference-start" in names and "conference-end" in names
    assert ("participant-leave", caller) in events and ("participant-leave", agent) in events
    conf_hits = hub.of(CONF)
    seqs = sorted(int(h.form["SequenceNumber"]) for h in conf_hits)
    assert seqs == list(range(len(conf_hits)))
    assert {h.form["FriendlyName"] for h in conf_hits} == {caller}
    assert all(h.form["ConferenceSid"].startswith("CF") and len(h.form["ConferenceSid"]) == 34 for h in conf_hits)
    join_agent = [h.form for h in conf_hits if h.form["StatusCallbackEvent"] == "participant-join"
                  and h.form["CallSid"] == agent][0]
    assert join_agent["StartConferenceOnEnter"] == "true" and join_agent["EndConferenceOnExit"] == "true"
    assert join_agent["Muted"] == "false" and join_agent["Hold"] == "false" and join_agent["Coaching"] == "false"

    agent_status = sorted((h.form for h in hub.of(STATUS, agent)), key=lambda f: int(f["SequenceNumber"]))
    assert [f["CallStatus"] for f in agent_status] == ["initiated", "ringing", "in-progress", "completed"]
    assert [f["SequenceNumber"] for f in agent_status] == ["0", "1", "2", "3"]
    assert all(f["CallbackSource"] == "call-progress-events" and f["Timestamp"] for f in agent_status)
    assert "CallDuration" in agent_status[-1] and "Duration" in agent_status[-1]

    caller_status = [h.form for h in hub.of(STATUS, caller)]
    assert len(caller_status) == 1  # inbound numbers report only `completed`
    assert caller_status[0]["CallStatus"] == "completed" and caller_status[0]["SequenceNumber"] == "0"
    assert int(caller_status[0]["CallDuration"]) >= 0 and caller_status[0]["Direction"] == "inbound"

    snap = sim.carrier.get(caller).snapshot()
    assert "Say" in snap["verbs"] and "Dial" in snap["verbs"] and any(v.startswith("wait:") for v in snap["verbs"])


def test_patience_expiry_abandons_waiting_caller(sim, hub):
    caller = sim.place_inbound_call(CALLER, QUEUE_NUMBER, talk_seconds=5, patience_seconds=0.8)
    hub.wait_for(lambda: hub.of(STATUS, caller))
    status = hub.of(STATUS, caller)[0].form
    assert status["CallStatus"] == "completed"
    hub.wait_for(lambda: [h for h in hub.of(CONF, caller) if h.form["StatusCallbackEvent"] == "participant-leave"])
    assert not sim.carrier.get(caller).talking
    assert all(h.signature_ok for h in hub.hits)


def test_rest_hang_up_ends_leg_and_conference(sim, hub, client):
    caller = sim.place_inbound_call(CALLER, QUEUE_NUMBER, talk_seconds=60, patience_seconds=60)
    hub.wait_for(lambda: hub.of("/webhooks/voice/hold", caller))
    agent = _dial_agent(client, hub, caller)
    hub.wait_for(lambda: [h for h in hub.of(CONF) if h.form["StatusCallbackEvent"] == "conference-start"])
    assert client.calls(caller).fetch().status == "in-progress"
    client.calls(caller).update(status="completed")
    hub.wait_for(lambda: _final(sim, agent))
    assert client.calls(caller).fetch().status == "completed"
    assert client.calls(agent).fetch().status == "completed"
    hub.wait_for(lambda: [h for h in hub.of(CONF) if h.form["StatusCallbackEvent"] == "conference-end"])
    hub.wait_for(lambda: [h for h in hub.of(STATUS, agent) if h.form["CallStatus"] == "completed"])
    assert client.calls(caller).update(status="completed").status == "completed"  # ending twice is fine


def test_duplicate_rate_sends_each_status_callback_twice(sim_factory, hub):
    dup = sim_factory(duplicate_rate=1.0)
    dup_client = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=LocalPeerHttpClient(dup.url, timeout=10))
    caller = dup.place_inbound_call(CALLER, QUEUE_NUMBER, talk_seconds=0.3, patience_seconds=30)
    hub.wait_for(lambda: hub.of("/webhooks/voice/incoming", caller))
    agent = _dial_agent(dup_client, hub, caller, "bob")
    hub.wait_for(lambda: len(hub.of(STATUS, agent)) >= 8 and len(hub.of(STATUS, caller)) >= 2)
    time.sleep(0.3)
    agent_seqs = sorted(h.form["SequenceNumber"] for h in hub.of(STATUS, agent))
    assert agent_seqs == ["0", "0", "1", "1", "2", "2", "3", "3"]
    first, second = [h.form for h in hub.of(STATUS, caller)]
    assert first == second
    assert all(h.signature_ok for h in hub.hits)
