"""The REST API under /api/v1, described by /api/v1/openapi.json. Session or bearer-token auth, with roles; an
agent reads only the customer of the work they hold (hub.customer_access)."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify, request
from flask_login import current_user
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from hub.auth import check_credentials, issue_token, role_required
from hub.customers import customer_dict, entry_dict, find_by_number, timeline
from hub.db import transaction
from hub.json_api import check_searching_allowed, readable_customer
from hub.models import Call, RoutingTrace
from hub.openapi import openapi_document
from hub.phone import InvalidNumber, to_e164
from hub.snapshots import board

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def _services():
    return current_app.extensions["switchboard"]


@bp.errorhandler(HTTPException)
def _json_error(exc: HTTPException):
    return jsonify(error=exc.name, message=exc.description), exc.code


@bp.get("/openapi.json")
def openapi():
    return jsonify(openapi_document())


@bp.post("/auth/token")
def token():
    body = request.get_json(silent=True) or {}
    user = check_credentials(str(body.get("login", "")), str(body.get("password", "")))
    if user is None:
        abort(401, description="wrong login or password")
    return jsonify(token=issue_token(user.id), agent={"id": user.id, "login": user.login, "role": user.role})


@bp.get("/customers")
@role_required("agent", api=True)
def customers_by_phone():
    raw = request.args.get("phone", "")
    if not raw:
        abort(400, description="give a phone number: /api/v1/customers?phone=+14155550100")
    try:
        number = to_e164(raw, _services().settings.default_region)
    except InvalidNumber as exc:
        abort(400, description=f"phone: {exc}")
    with transaction(_services().sessions) as session:
        check_searching_allowed(session)  # an agent looks a number up to identify the caller of their call
        customer = find_by_number(session, number)
        return jsonify(customers=[customer_dict(customer)] if customer else [])


@bp.get("/customers/<int:customer_id>")
@role_required("agent", api=True)
def customer(customer_id: int):
    with transaction(_services().sessions) as session:
        return jsonify(customer_dict(readable_customer(session, customer_id)))


@bp.get("/customers/<int:customer_id>/timeline")
@role_required("agent", api=True)
def customer_timeline(customer_id: int):
    limit = min(max(request.args.get("limit", 50, type=int), 1), 500)
    with transaction(_services().sessions) as session:
        readable_customer(session, customer_id)
        return jsonify(entries=[entry_dict(e) for e in timeline(session, customer_id, limit)])


@bp.get("/agents")
@role_required("supervisor", api=True)
def agents():
    services = _services()
    with transaction(services.sessions) as session:
        return jsonify(agents=board(session, services.clock())["agents"])


@bp.get("/queues")
@role_required("agent", api=True)
def queues():
    services = _services()
    with transaction(services.sessions) as session:
        return jsonify(queues=board(session, services.clock())["queues"])


def _readable_call(session, sid: str) -> Call:
    row = session.scalar(select(Call).where(Call.sid == sid))
    if row is None:
        abort(404, description=f"no call {sid}")
    if not current_user.has_role("supervisor") and row.agent_id != current_user.id:
        abort(403, description="that call was not yours")
    return row


@bp.get("/calls/<sid>/trace")
@role_required("agent", api=True)
def call_trace(sid: str):
    with transaction(_services().sessions) as session:
        _readable_call(session, sid)
        traces = session.scalars(select(RoutingTrace).where(RoutingTrace.call_sid == sid)
                                 .order_by(RoutingTrace.at, RoutingTrace.id))
        return jsonify(call_sid=sid, decisions=[t.data for t in traces])


@bp.get("/calls/<sid>")
@role_required("agent", api=True)
def call(sid: str):
    with transaction(_services().sessions) as session:
        row = _readable_call(session, sid)
        return jsonify(
            sid=row.sid, leg=row.leg, direction=row.direction, status=row.status,
            routing_state=row.routing_state, routing_outcome=row.routing_outcome,
            queue=row.queue.name if row.queue else None,
            agent=row.agent.login if row.agent else None, customer_id=row.customer_id,
            created_at=row.created_at.isoformat(),
            connected_at=row.connected_at.isoformat() if row.connected_at else None,
            ended_at=row.ended_at.isoformat() if row.ended_at else None,
            duration=row.duration_s, disposition=row.disposition, note=row.note,
        )
