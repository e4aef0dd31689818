"""The unknown caller's screen pop over HTTP: search, name, merge. Session login, roles and CSRF (JSON bodies)."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify, request
from flask_login import current_user
from werkzeug.exceptions import HTTPException

from hub import complaints, unknown_callers
from hub.auth import check_csrf, role_required
from hub.call_controls import Actor
from hub.errors import FlowError

bp = Blueprint("console_customers", __name__, url_prefix="/console")


def _services():
    return current_app.extensions["switchboard"]


def _actor() -> Actor:
    return Actor(current_user.id, current_user.has_role("supervisor"))


def _body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, description="send a JSON object")
    return body


@bp.errorhandler(HTTPException)
def _json_error(exc: HTTPException):
    return jsonify(ok=False, error=exc.description), exc.code


@bp.errorhandler(FlowError)
def _flow_error(exc: FlowError):
    return jsonify(ok=False, error=exc.message), exc.status


@bp.get("/customers")
@role_required("agent", api=True)
def search():
    return jsonify(ok=True, customers=unknown_callers.find_customers(_services(), _actor(), request.args.get("q", "")))


@bp.post("/calls/<sid>/customer")
@role_required("agent", api=True)
def name_caller(sid: str):
    check_csrf()
    body = _body()
    customer = unknown_callers.name_caller(_services(), _actor(), sid, str(body.get("name") or ""),
                                           str(body.get("email") or "") or None)
    return jsonify(ok=True, customer=customer), 201


@bp.post("/calls/<sid>/customer/merge")
@role_required("agent", api=True)
def merge_caller(sid: str):
    check_csrf()
    body = _body()
    target = body.get("customer_id")
    if isinstance(target, bool) or not isinstance(target, int):
        abort(400, description="customer_id must be a whole number")
    return jsonify(ok=True, customer=unknown_callers.merge_caller(_services(), _actor(), sid, target))


@bp.post("/complaints/<int:complaint_id>/close")
@role_required("agent", api=True)
def close_complaint(complaint_id: int):
    """Close a complaint with its resolution: supervisors any, agents the ones they opened."""
    check_csrf()
    body = _body()
    complaints.close_complaint(_services(), _actor(), complaint_id, str(body.get("resolution") or ""))
    return jsonify(ok=True)
