"""Twilio's webhooks for campaign calls: answered, status, asynchronous AMD, the machine message."""
from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, request

from campaigns import call_flows as outbound
from hub import call_flows
from webhooks import twiml
from webhooks.signature import signed_by_twilio

bp = Blueprint("outbound_webhooks", __name__, url_prefix="/webhooks/outbound")


def _services():
    return current_app.extensions["switchboard"]


def _url(path: str) -> str:
    return _services().settings.public_url + path


def _xml(document: str) -> Response:
    return Response(document, mimetype="text/xml")


def _attempt() -> int:
    try:
        return int(request.args["attempt"])
    except (KeyError, ValueError):
        abort(400, description="missing attempt")


def _required(*names: str) -> None:
    missing = [n for n in names if not request.form.get(n)]
    if missing:
        abort(400, description=f"missing {', '.join(missing)}")


@bp.post("/answer")
@signed_by_twilio
def answer():
    _required("CallSid")
    plan = outbound.answer(_services(), _attempt(), request.form)
    if plan.action == "connect":
        return _xml(twiml.connect_lead(plan.call_sid, _url("/webhooks/outbound/silence"),
                                       _url("/webhooks/voice/conference")))
    return _xml(twiml.message_then_hang_up(plan.message))


@bp.post("/status")
@signed_by_twilio
def status():
    _required("CallSid", "CallStatus")
    return {"outcome": call_flows.record_campaign_status(
        _services(), _attempt(), request.form, idempotency_token=request.headers.get("I-Twilio-Idempotency-Token"))}


@bp.post("/amd")
@signed_by_twilio
def amd():
    _required("CallSid", "AnsweredBy")
    return {"outcome": outbound.machine_detected(_services(), _attempt(), request.form)}


@bp.post("/machine")
@signed_by_twilio
def machine():
    return _xml(twiml.message_then_hang_up(outbound.machine_message(_services(), _attempt())))


@bp.post("/silence")
@signed_by_twilio
def silence():
    return _xml(twiml.silence())
