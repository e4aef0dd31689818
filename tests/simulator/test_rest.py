"""The REST peer: auth, OpenAPI validation, Twilio's resource and error shapes."""
from __future__ import annotations

import re

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from hub.telephony import LocalPeerHttpClient
from simulator.spec import SpecMissing, load_spec
from tests.simulator.conftest import ACCOUNT_SID, AUTH_TOKEN

CALLS = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"


def test_create_call_without_to_is_rejected_naming_the_field(sim):
    resp = requests.post(sim.url + CALLS, data={"From": "+15005550006", "Url": "http://127.0.0.1:9/x"},
                         auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5)
    assert resp.status_code == 400
    body = resp.json()
    assert set(body) == {"code", "message", "more_info", "status"}
    assert body["status"] == 400
    assert "'To' is a required property" in body["message"]


def test_invalid_types_and_empty_bodies_are_rejected(sim):
    bad_timeout = requests.post(sim.url + CALLS, data={"To": "+15005550001", "From": "+15005550006",
                                                       "Url": "http://127.0.0.1:9/x", "Timeout": "abc"},
                                auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5)
    assert bad_timeout.status_code == 400 and "abc" in bad_timeout.json()["message"]
    empty = requests.post(sim.url + CALLS, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5)
    assert empty.status_code == 400
    bad_status = requests.post(sim.url + f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/CA{'0' * 32}.json",
                               data={"Status": "bogus"}, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5)
    assert bad_status.status_code == 400 and "bogus" in bad_status.json()["message"]


def test_bad_auth_gets_401(sim):
    wrong = Client(ACCOUNT_SID, "wrong-token", http_client=LocalPeerHttpClient(sim.url, timeout=5))
    with pytest.raises(TwilioRestException) as info:
        wrong.calls.create(to="client:alice", from_="+15005550006", url="http://127.0.0.1:9/x")
    assert info.value.status == 401
    resp = requests.get(sim.url + CALLS.replace("Calls.json", f"Calls/CA{'0' * 32}.json"), timeout=5)
    assert resp.status_code == 401 and resp.json()["code"] == 20003


def test_unknown_call_is_404_with_twilio_error(client, sim):
    with pytest.raises(TwilioRestException) as info:
        client.calls("CA" + "f" * 32).fetch()
    assert info.value.status == 404 and info.value.code == 20404


def test_repeated_status_callback_event_is_accepted_and_resource_is_twilio_shaped(client, hub):
    call = client.calls.create(
        to="client:alice", from_="+15005550006", url=hub.url + "/webhooks/voice/agent?call=CAx",
        method="POST", status_callback=hub.url + "/webhooks/voice/status", status_callback_method="POST",
        status_callback_event=["initiated", "ringing", "answered", "completed"], timeout=20,
    )
    assert re.fullmatch(r"CA[0-9a-f]{32}", call.sid)
    assert call.account_sid == ACCOUNT_SID and call.to == "client:alice"
    assert call.status == "queued" and call.direction == "outbound-api"
    assert call.date_created is not None and call.uri.endswith(f"/Calls/{call.sid}.json")
    fetched = client.calls(call.sid).fetch()
    assert fetched.sid == call.sid


def test_conferences_list_is_readable(client):
    assert list(client.conferences.list(status="in-progress")) == []


def test_missing_spec_gives_one_line_hint(tmp_path):
    with pytest.raises(SpecMissing) as info:
        load_spec(tmp_path)
    assert "npm ci" in str(info.value) and "\n" not in str(info.value)


def test_sim_endpoints_place_and_describe_calls(sim, hub):
    resp = requests.post(sim.url + "/sim/calls", json={"from": "+15005550123", "to": "+15005550100",
                                                       "talk_seconds": 0.2, "patience_seconds": 0.5}, timeout=5)
    assert resp.status_code == 201
    sid = resp.json()["call_sid"]
    hub.wait_for(lambda: requests.get(sim.url + f"/sim/calls/{sid}", timeout=5).json()["status"] == "completed")
    snap = requests.get(sim.url + f"/sim/calls/{sid}", timeout=5).json()
    assert snap["direction"] == "inbound" and snap["verbs"][:2] == ["Say", "Dial"]
    kinds = [e["kind"] for e in snap["events"]]
    assert kinds[0] == "voice" and "status" in kinds and "conference" in kinds
    assert requests.get(sim.url + "/sim/calls/CAnope", timeout=5).status_code == 404
