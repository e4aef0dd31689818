"""TwiML verbs beyond the main flow: Gather, Dial Client (child leg), Redirect, Hangup; PSTN legs with AMD."""
from __future__ import annotations

from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from tests.simulator.conftest import CALLER, QUEUE_NUMBER

STATUS = "/webhooks/voice/status"


def test_gather_dial_client_redirect_hangup(sim, hub, client):
    def incoming(form):
        r = VoiceResponse()
        g = Gather(num_digits=1, action=hub.url + "/webhooks/voice/menu", timeout=5)
        g.say("Press 1 for sales")
        r.append(g)
        r.say("We did not get that")
        r.hangup()
        return str(r)

    def menu(form):
        r = VoiceResponse()
        d = Dial(action=hub.url + "/webhooks/voice/dialdone", timeout=10)
        d.client("bob", status_callback=hub.url + STATUS, status_callback_event="initiated ringing answered completed")
        r.append(d)
        return str(r)

    def dialdone(form):
        r = VoiceResponse()
        r.redirect(hub.url + "/webhooks/voice/bye")
        return str(r)

    def bye(form):
        r = VoiceResponse()
        r.say("Goodbye")
        r.hangup()
        r.say("never spoken")
        return str(r).replace("<Response>", "<Response><Frobnicate />")  # unknown verbs are skipped

    hub.routes.update(incoming=incoming, menu=menu, dialdone=dialdone, bye=bye)
    caller = sim.place_inbound_call(CALLER, QUEUE_NUMBER, talk_seconds=30, patience_seconds=30, digits="1")
    assert hub.wait_for(lambda: hub.of("/webhooks/voice/menu", caller))[0].form["Digits"] == "1"
    child_status = hub.wait_for(lambda: [h.form for h in hub.of(STATUS) if h.form.get("ParentCallSid") == caller
                                         and h.form["CallStatus"] == "in-progress"])
    child = child_status[0]["CallSid"]
    assert child_status[0]["Direction"] == "outbound-dial" and child_status[0]["To"] == "client:bob"
    assert sim.carrier.get(caller).talking
    client.calls(child).update(status="completed")
    done = hub.wait_for(lambda: hub.of("/webhooks/voice/dialdone", caller))[0].form
    assert done["DialCallStatus"] == "completed" and done["DialCallSid"] == child
    hub.wait_for(lambda: hub.of("/webhooks/voice/bye", caller))
    final = hub.wait_for(lambda: hub.of(STATUS, caller))[0].form
    assert final["CallStatus"] == "completed"
    verbs = sim.carrier.get(caller).verbs
    assert verbs == ["Gather", "Dial", "Redirect", "Frobnicate", "Say", "Hangup"]
    assert all(h.signature_ok for h in hub.hits)


def test_pstn_leg_with_async_amd_and_no_answer(sim_factory, hub):
    from hub.telephony import LocalPeerHttpClient
    from twilio.rest import Client

    from tests.simulator.conftest import ACCOUNT_SID, AUTH_TOKEN

    sim = sim_factory(pstn_answer_probability=1.0, machine_probability=0.0, pstn_ring_seconds=(1.0, 2.0))
    c = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=LocalPeerHttpClient(sim.url, timeout=10))
    campaign = VoiceResponse()
    campaign.say("Hello from the campaign")
    campaign.pause(length=10)
    hub.routes["campaign"] = lambda form: str(campaign)
    call = c.calls.create(to="+15005550199", from_="+15005550006", url=hub.url + "/webhooks/voice/campaign",
                          status_callback=hub.url + STATUS, status_callback_event=["answered", "completed"],
                          machine_detection="Enable", async_amd="true",
                          async_amd_status_callback=hub.url + "/webhooks/voice/amd", timeout=20)
    amd = hub.wait_for(lambda: hub.of("/webhooks/voice/amd", call.sid))[0].form
    assert amd["AnsweredBy"] == "human" and int(amd["MachineDetectionDuration"]) > 0
    voice = hub.of("/webhooks/voice/campaign", call.sid)[0].form
    assert voice["Direction"] == "outbound-api" and voice["CallStatus"] == "in-progress"
    statuses = hub.wait_for(lambda: len(hub.of(STATUS, call.sid)) >= 2 and hub.of(STATUS, call.sid))
    assert [h.form["CallStatus"] for h in statuses] == ["in-progress", "completed"]

    unanswered = sim_factory(pstn_answer_probability=0.0, pstn_busy_probability=0.0)
    c2 = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=LocalPeerHttpClient(unanswered.url, timeout=10))
    missed = c2.calls.create(to="+15005550198", from_="+15005550006", url=hub.url + "/webhooks/voice/campaign",
                             status_callback=hub.url + STATUS, timeout=5)
    final = hub.wait_for(lambda: hub.of(STATUS, missed.sid))[0].form
    assert final["CallStatus"] == "no-answer" and final["CallDuration"] == "0"
    assert c2.calls(missed.sid).fetch().status == "no-answer"
