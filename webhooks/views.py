"""Twilio's voice webhooks. Each one checks the signature, turns the form into a flow call, renders TwiML."""
from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, request

from hub import call_flows
from webhooks import twiml
from webhooks.signature import signed_by_twilio

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks/voice")


def _services():
    return current_app.extensions["switchboard"]


def _xml(document: str) -> Response:
    return Response(document, mimetype="text/xml")


def _url(path: str) -> str:
    return _services().settings.public_url + path


def _required(*names: str) -> None:
    missing = [n for n in names if not request.form.get(n)]
    if missing:
        abort(400, description=f"missing {', '.join(missing)}")


def _agent_leg_args() -> tuple[str | None, int | None]:
    call_sid = request.args.get("call")
    try:
        agent_id = int(request.args["agent"]) if "agent" in request.args else None
    except ValueError:
        agent_id = None
    return call_sid, agent_id


@bp.post("/incoming")
@signed_by_twilio
def incoming():
    _required("CallSid")
    result = call_flows.receive_incoming_call(_services(), request.form)
    if result.queue_name is None:
        return _xml(twiml.cannot_take_call())
    if result.diverted == "voicemail":
        return _xml(twiml.voicemail(_url(f"/webhooks/voice/voicemail/recorded?call={result.call_sid}")))
    if result.diverted == "callback":
        return _xml(twiml.callback_offer(_choice_url(result.call_sid, result.closed), result.closed))
    response = _xml(
        twiml.wait_for_agent(
            result.queue_name,
            result.call_sid,
            hold_url=_url(f"/webhooks/voice/hold?queue={result.queue_name}"),
            conference_url=_url("/webhooks/voice/conference"),
        )
    )
    if result.route_later:
        _route_after_answer(response)
    return response


def _route_after_answer(response: Response) -> None:
    """Route what this webhook deferred once the server has sent the answer: the carrier hears it first."""
    response.call_on_close(current_app.extensions["deferred_router"].wake)


@bp.post("/hold")
@signed_by_twilio
def hold():
    return _xml(twiml.hold_loop(request.args.get("queue", "our")))


@bp.post("/hold-music")
@signed_by_twilio
def hold_music():
    """The HoldUrl of a participant the agent put on hold (hub.call_controls)."""
    return _xml(twiml.hold_music())


@bp.post("/agent")
@signed_by_twilio
def agent_leg():
    _required("CallSid")
    call_sid, agent_id = _agent_leg_args()
    if not call_sid or agent_id is None:
        return _xml(twiml.caller_gone())
    plan = call_flows.plan_agent_leg(_services(), request.form, call_sid, agent_id)
    if not plan.join:
        return _xml(twiml.caller_gone())
    return _xml(twiml.join_caller(plan.conference, _url("/webhooks/voice/conference")))


@bp.post("/status")
@signed_by_twilio
def status():
    _required("CallSid", "CallStatus")
    call_sid, agent_id = _agent_leg_args()
    outcome = call_flows.record_status(
        _services(), request.form, idempotency_token=request.headers.get("I-Twilio-Idempotency-Token"),
        parent_sid=call_sid, agent_id=agent_id, leg_kind=request.args.get("leg"),
    )
    response = current_app.make_response({"outcome": outcome})
    if outcome == "deferred":
        _route_after_answer(response)
    return response


@bp.post("/conference")
@signed_by_twilio
def conference():
    _required("ConferenceSid", "StatusCallbackEvent")
    return {"outcome": call_flows.record_conference_event(_services(), request.form)}


@bp.post("/voicemail")
@signed_by_twilio
def voicemail():
    call_sid = request.args.get("call") or request.form.get("CallSid", "")
    return _xml(twiml.voicemail(_url(f"/webhooks/voice/voicemail/recorded?call={call_sid}")))


@bp.post("/voicemail/recorded")
@signed_by_twilio
def voicemail_recorded():
    call_sid = request.args.get("call") or request.form.get("CallSid", "")
    call_flows.record_voicemail(_services(), call_sid, request.form)
    return _xml(twiml.goodbye())


def _choice_url(call_sid: str, closed: bool) -> str:
    return _url(f"/webhooks/voice/callback-choice?call={call_sid}" + ("&closed=1" if closed else ""))


def _hold_again(call_sid: str, queue_name: str) -> str:
    return twiml.wait_for_agent(queue_name, call_sid, hold_url=_url(f"/webhooks/voice/hold?queue={queue_name}"),
                                conference_url=_url("/webhooks/voice/conference"),
                                greeting="Thank you for holding. You keep your place in line.")


@bp.post("/callback-offer")
@signed_by_twilio
def callback_offer():
    call_sid = request.args.get("call") or request.form.get("CallSid", "")
    closed = request.args.get("closed") == "1"
    return _xml(twiml.callback_offer(_choice_url(call_sid, closed), closed))


@bp.post("/callback-choice")
@signed_by_twilio
def callback_choice():
    call_sid = request.args.get("call") or request.form.get("CallSid", "")
    closed = request.args.get("closed") == "1"
    if request.form.get("Digits") == "1" and call_flows.choose_callback(_services(), call_sid, closed):
        return _xml(twiml.callback_booked())
    if closed:
        call_flows.decline_after_hours_callback(_services(), call_sid)
        return _xml(twiml.voicemail(_url(f"/webhooks/voice/voicemail/recorded?call={call_sid}")))
    return _xml(_hold_again(call_sid, call_flows.queue_name_of(_services(), call_sid) or "our"))


@bp.post("/callback-leg")
@signed_by_twilio
def callback_leg():
    _required("CallSid")
    call_sid = request.args.get("call", "")
    plan = call_flows.plan_callback_leg(_services(), request.form, call_sid)
    if not plan.join:
        return _xml(twiml.callback_cancelled())
    return _xml(twiml.join_caller(plan.conference, _url("/webhooks/voice/conference")))
