"""The REST peer: the part of Twilio's API v2010 the hub uses, plus the simulator's own /sim endpoints."""
from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from simulator.carrier import Carrier
from simulator.spec import SpecValidator
from simulator.wire import API_VERSION, error_body

log = logging.getLogger(__name__)

ACCOUNT = f"/{API_VERSION}/Accounts/<account_sid>"


def _error(status: int, code: int, message: str):
    """A Twilio-shaped JSON error response."""
    return jsonify(error_body(status, code, message)), status


def _not_found(what: str):
    return _error(404, 20404, f"The requested resource {what} was not found")


def create_app(carrier: Carrier, validator: SpecValidator) -> Flask:
    """Build the Flask app that plays Twilio's REST API (and /sim) for `carrier`."""
    app = Flask("simulator")
    cfg = carrier.config

    @app.before_request
    def authenticate_and_validate():
        if not request.path.startswith(f"/{API_VERSION}/"):
            return None
        auth = request.authorization
        if auth is None or auth.username != cfg.account_sid or auth.password != cfg.auth_token:
            return _error(401, 20003, "Authenticate")
        if request.url_rule is None:
            return _not_found(request.path)
        problem = validator.problem(request)
        if problem is not None:
            log.info("rejected %s %s: %s", request.method, request.path, problem)
            return _error(400, 20001, f"Invalid request: {problem}")
        if (request.view_args or {}).get("account_sid") != cfg.account_sid:
            return _not_found(request.path)
        return None

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if request.path.startswith(f"/{API_VERSION}/"):
            if exc.code == 404:
                return _not_found(request.path)
            return _error(exc.code or 500, 20001, exc.description or exc.name)
        return jsonify({"error": exc.name, "message": exc.description}), exc.code

    # ---- calls ----------------------------------------------------------------------------------
    @app.post(f"{ACCOUNT}/Calls.json")
    def create_call(account_sid: str):
        form = request.form
        if not form.get("Url") and not form.get("Twiml") and not form.get("ApplicationSid"):
            return _error(400, 21205, "Invalid request: one of Url, Twiml or ApplicationSid is required")
        with carrier.lock:
            leg = carrier.create_call(form)
            return jsonify(leg.resource()), 201

    @app.get(f"{ACCOUNT}/Calls.json")
    def list_calls(account_sid: str):
        args = request.args
        since = args.get("StartTime>")
        after = parsedate_or_iso(since) if since else None
        with carrier.lock:
            legs = [
                leg for leg in carrier.legs.values()
                if (not args.get("To") or leg.to == args["To"]) and (not args.get("From") or leg.from_ == args["From"])
                and (after is None or (leg.start_time or leg.date_created) >= after)
            ]
            return jsonify(_page("calls", [leg.resource() for leg in legs], request.full_path))

    @app.get(f"{ACCOUNT}/Calls/<call_sid>.json")
    def fetch_call(account_sid: str, call_sid: str):
        with carrier.lock:
            leg = carrier.get(call_sid)
            if leg is None:
                return _not_found(request.path)
            return jsonify(leg.resource())

    @app.post(f"{ACCOUNT}/Calls/<call_sid>.json")
    def update_call(account_sid: str, call_sid: str):
        with carrier.lock:
            leg = carrier.get(call_sid)
            if leg is None:
                return _not_found(request.path)
            if leg.ended and (request.form.get("Url") or request.form.get("Twiml")):
                return _error(400, 21220, "Call is not in-progress. Cannot redirect.")
            carrier.update_call(leg, request.form)
            return jsonify(leg.resource())

    # ---- conferences ----------------------------------------------------------------------------
    @app.get(f"{ACCOUNT}/Conferences.json")
    def list_conferences(account_sid: str):
        status = request.args.get("Status")
        with carrier.lock:
            rooms = carrier.conferences.list(request.args.get("FriendlyName"), status)
            items = [c.resource() for c in rooms]
        return jsonify(_page("conferences", items, request.full_path))

    @app.get(f"{ACCOUNT}/Conferences/<conf_sid>.json")
    def fetch_conference(account_sid: str, conf_sid: str):
        with carrier.lock:
            conf = carrier.conferences.by_sid.get(conf_sid)
            return jsonify(conf.resource()) if conf else _not_found(request.path)

    @app.post(f"{ACCOUNT}/Conferences/<conf_sid>.json")
    def update_conference(account_sid: str, conf_sid: str):
        with carrier.lock:
            conf = carrier.conferences.by_sid.get(conf_sid)
            if conf is None:
                return _not_found(request.path)
            if request.form.get("Status") == "completed":
                carrier.conferences.end(conf, "conference-ended-via-api", None)
            return jsonify(conf.resource())

    @app.get(f"{ACCOUNT}/Conferences/<conf_sid>/Participants.json")
    def list_participants(account_sid: str, conf_sid: str):
        with carrier.lock:
            conf = carrier.conferences.by_sid.get(conf_sid)
            if conf is None:
                return _not_found(request.path)
            items = [conf.participant_resource(p) for p in conf.participants.values()]
        return jsonify(_page("participants", items, request.full_path))

    @app.post(f"{ACCOUNT}/Conferences/<conf_sid>/Participants.json")
    def add_participant(account_sid: str, conf_sid: str):
        with carrier.lock:
            conf = carrier.conferences.by_sid.get(conf_sid)
            if conf is None:
                return _not_found(request.path)
            if conf.status == "completed":
                return _error(400, 20001, "Invalid request: the conference is over")
            try:
                leg = carrier.conferences.add_participant(conf, request.form)
            except ValueError as exc:
                return _error(400, 20001, f"Invalid request: {exc}")
            return jsonify(carrier.conferences.pending_resource(conf, leg)), 201

    @app.route(f"{ACCOUNT}/Conferences/<conf_sid>/Participants/<call_sid>.json", methods=["GET", "POST"])
    def participant(account_sid: str, conf_sid: str, call_sid: str):
        with carrier.lock:
            conf = carrier.conferences.by_sid.get(conf_sid)
            p = conf.participants.get(call_sid) if conf else None
            if conf is None or p is None:
                return _not_found(request.path)
            if request.method == "POST":
                carrier.conferences.update_participant(conf, p, request.form)
            return jsonify(conf.participant_resource(p))

    # ---- the simulator's own endpoints ----------------------------------------------------------
    @app.post("/sim/calls")
    def sim_place_call():
        body: dict[str, Any] = request.get_json(silent=True) or {}
        from_, to = body.get("from"), body.get("to")
        if not from_ or not to:
            return jsonify({"error": "'from' and 'to' are required"}), 400
        sid = carrier.place_inbound_call(
            str(from_), str(to), talk_seconds=body.get("talk_seconds"),
            patience_seconds=body.get("patience_seconds"), digits=body.get("digits"),
        )
        return jsonify({"call_sid": sid}), 201

    @app.get("/sim/calls/<call_sid>")
    def sim_call(call_sid: str):
        with carrier.lock:
            leg = carrier.get(call_sid)
            if leg is None:
                return jsonify({"error": "unknown call"}), 404
            return jsonify(leg.snapshot())

    @app.get("/sim/calls")
    def sim_calls():
        with carrier.lock:
            return jsonify({"calls": [
                {"call_sid": leg.sid, "status": leg.status, "direction": leg.direction, "role": leg.role}
                for leg in carrier.legs.values()
            ]})

    @app.get("/sim/health")
    def sim_health():
        return jsonify({"ok": True})

    return app


def parsedate_or_iso(raw: str) -> datetime:
    """Twilio's list filters take a date or an ISO 8601 moment."""
    moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _page(key: str, items: list[dict[str, Any]], uri: str) -> dict[str, Any]:
    """A single-page v2010 list response."""
    return {
        key: items, "end": max(len(items) - 1, 0), "first_page_uri": uri, "next_page_uri": None, "page": 0,
        "page_size": 50, "previous_page_uri": None, "start": 0, "uri": uri,
    }
