"""What the JSON API blueprints share: errors as JSON, the CSRF rule for cookie sessions, reading a JSON body,
paging, and which customers the caller may read or record an order for (hub.customer_access: an agent only the
customer of the work they hold; a 403 otherwise).

Writes made with a session cookie need the X-CSRF-Token header (the value the pages carry); bearer-token
requests cannot be forged cross-site and are exempt.
"""
from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, abort, jsonify, request, session
from flask_login import current_user
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException

from hub.auth import check_csrf
from hub.call_controls import Actor
from hub.customer_access import check_customer_access, check_may_record_order, check_may_search
from hub.errors import FlowError
from hub.models import Customer

MAX_PAGE = 500


def install(bp: Blueprint, problem_key: str) -> None:
    """Give a blueprint JSON errors (a refusal lists its problems under `problem_key`, e.g. "setting") and the
    CSRF rule."""

    @bp.errorhandler(HTTPException)
    def _json_error(exc: HTTPException):
        return jsonify(error=exc.name, message=exc.description), exc.code

    @bp.errorhandler(FlowError)
    def _flow_error(exc: FlowError):
        body = {"error": "Refused", "message": exc.message}
        if getattr(exc, "problems", None):
            body["problems"] = [{problem_key: name, "message": message} for name, message in exc.problems]
        return jsonify(body), exc.status

    @bp.before_request
    def _csrf_for_cookie_sessions():
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return
        from_cookie = "_user_id" in session  # Flask-Login prefers the session over a bearer token
        if (from_cookie or not request.headers.get("Authorization", "").startswith("Bearer ")) \
                and current_user.is_authenticated:
            check_csrf()


def json_body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, description="send a JSON object")
    return body


def page() -> tuple[int, int]:
    """The request's `limit` (1 to MAX_PAGE, default 50) and `offset`."""
    limit = min(max(request.args.get("limit", 50, type=int), 1), MAX_PAGE)
    return limit, max(request.args.get("offset", 0, type=int), 0)


def current_actor() -> Actor:
    return Actor(current_user.id, current_user.has_role("supervisor"))


def _as_http_error(check: Callable[[], None]) -> None:
    """Run an access check; its refusal becomes the HTTP error every JSON blueprint renders alike."""
    try:
        check()
    except FlowError as exc:
        abort(exc.status, description=exc.message)


def readable_customer(db: Session, customer_id: int) -> Customer:
    """The customer the signed-in user asks for. An agent whose work in hand is not this customer gets a 403,
    asked before the lookup so that it tells nothing of which ids exist; a missing customer is a 404."""
    _as_http_error(lambda: check_customer_access(db, current_actor(), customer_id))
    customer = db.get(Customer, customer_id)
    if customer is None:
        abort(404, description=f"no customer {customer_id}")
    return customer


def check_order_allowed(db: Session, customer_id: int) -> None:
    """A 403 for an agent who records an order for a customer other than the one of the work they hold, asked
    before the lookup as for the reads."""
    _as_http_error(lambda: check_may_record_order(db, current_actor(), customer_id))


def check_searching_allowed(db: Session) -> None:
    """A 403 for an agent who looks customers up without a call in hand (whose caller to identify)."""
    _as_http_error(lambda: check_may_search(db, current_actor()))
