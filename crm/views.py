"""The CRM's REST API under /api/v1: orders (one, or a CSV of purchase history), a customer's value and its
history, recomputes and their runs, CRM settings, and segments (live counts, CSV export, seeding a campaign).
An agent reads the orders and value, and records an order, only for the customer of the work they hold
(hub.customer_access).

Same auth, errors and CSRF rule as campaigns/views.py: writes made with a session cookie need the
X-CSRF-Token header; bearer-token requests are exempt.
"""
from __future__ import annotations

import codecs

from flask import Blueprint, Response, abort, current_app, jsonify, request, stream_with_context
from flask_login import current_user
from sqlalchemy import select

from crm import tasks
from crm.config import current_settings, settings_dict, update_settings
from crm.customer_value import value_dict, value_with_history
from crm.models import CustomerValue, ModelRun, OrderSource, Segment
from crm.orders import add_order, import_orders, list_orders, order_dict, text_lines
from crm.recompute import mark_advocate
from crm.segments import (count_segment, export_segment, find_segment, save_segment, seed_campaign,
                          segment_dict, validate_criteria)
from hub.auth import role_required
from hub.db import transaction
from hub.json_api import check_order_allowed, install, json_body, page, readable_customer

bp = Blueprint("crm_api", __name__, url_prefix="/api/v1")


def _services():
    return current_app.extensions["switchboard"]


install(bp, "criterion")
_json_body = json_body
_page = page


# ---------------------------------------------------------------- orders


@bp.post("/customers/<int:customer_id>/orders")
@role_required("agent", api=True)
def order_add(customer_id: int):
    services = _services()
    with transaction(services.sessions) as db:
        check_order_allowed(db, customer_id)
        order, created = add_order(db, customer_id, _json_body(), OrderSource.API.value, services.clock())
        body = order_dict(order)
    if created:  # after the commit: the worker must see the order
        tasks.enqueue_customer(services, customer_id, f"order {body['id']} of {body['amount']} {body['currency']}")
    return jsonify(body), 201 if created else 200


@bp.get("/customers/<int:customer_id>/orders")
@role_required("agent", api=True)
def orders(customer_id: int):
    limit, offset = _page()
    with transaction(_services().sessions) as db:
        readable_customer(db, customer_id)
        total, rows = list_orders(db, customer_id, limit, offset)
        return jsonify(total=total, limit=limit, offset=offset, orders=[order_dict(o) for o in rows])


@bp.post("/crm/orders")
@role_required("supervisor", api=True)
def orders_import():
    if request.mimetype != "text/csv":
        abort(415, description="send the purchase history as a text/csv body")
    charset = request.mimetype_params.get("charset", "utf-8-sig")
    try:
        codecs.lookup(charset)
    except LookupError:
        abort(415, description=f"unknown charset {charset[:40]!r}: send UTF-8")
    services = _services()
    with transaction(services.sessions) as db:
        report = import_orders(db, text_lines(request.stream, charset), services.settings.default_region,
                               services.clock())
    body = report.as_dict()
    if report.imported:
        body["recompute_job"] = tasks.enqueue_full(services)
    return jsonify(body)


# ---------------------------------------------------------------- a customer's value


@bp.get("/customers/<int:customer_id>/value")
@role_required("agent", api=True)
def customer_value(customer_id: int):
    with transaction(_services().sessions) as db:
        return jsonify(value_with_history(db, readable_customer(db, customer_id)))


@bp.post("/customers/<int:customer_id>/advocate")
@role_required("supervisor", api=True)
def customer_advocate(customer_id: int):
    body = _json_body()
    if not isinstance(body.get("advocate"), bool):
        abort(400, description='send {"advocate": true} or {"advocate": false}')
    services = _services()
    with transaction(services.sessions) as db:
        mark_advocate(db, customer_id, body["advocate"], services.clock())
        return jsonify(value_dict(readable_customer(db, customer_id), db.get(CustomerValue, customer_id)))


# ---------------------------------------------------------------- recompute and settings


def _run_dict(run: ModelRun) -> dict:
    return {"id": run.id, "status": run.status, "started_at": run.started_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None, "customers": run.customers,
            "buyers": run.buyers, "orders": run.orders, "tier_changes": run.tier_changes,
            "stage_changes": run.stage_changes, "error": run.error, "parameters": run.parameters}


@bp.post("/crm/recompute")
@role_required("supervisor", api=True)
def recompute():
    return jsonify(job=tasks.enqueue_full(_services())), 202


@bp.get("/crm/runs")
@role_required("supervisor", api=True)
def runs():
    limit, offset = _page()
    with transaction(_services().sessions) as db:
        rows = db.scalars(select(ModelRun).order_by(ModelRun.id.desc()).limit(limit).offset(offset))
        return jsonify(runs=[_run_dict(r) for r in rows])


@bp.get("/crm/settings")
@role_required("supervisor", api=True)
def crm_settings():
    with transaction(_services().sessions) as db:
        return jsonify(settings_dict(current_settings(db)))


@bp.patch("/crm/settings")
@role_required("supervisor", api=True)
def crm_settings_update():
    services = _services()
    with transaction(services.sessions) as db:
        return jsonify(settings_dict(update_settings(db, _json_body(), services.clock())))


# ---------------------------------------------------------------- segments


@bp.get("/crm/segments")
@role_required("supervisor", api=True)
def segments():
    services = _services()
    with transaction(services.sessions) as db:
        now = services.clock()
        return jsonify(segments=[segment_dict(s, count_segment(db, s.criteria, now))
                                 for s in db.scalars(select(Segment).order_by(Segment.name))])


@bp.post("/crm/segments")
@role_required("supervisor", api=True)
def segment_create():
    services = _services()
    with transaction(services.sessions) as db:
        segment = save_segment(db, _json_body(), services.clock(), current_user.id)
        return jsonify(segment_dict(segment, count_segment(db, segment.criteria, services.clock()))), 201


@bp.post("/crm/segments/count")
@role_required("supervisor", api=True)
def segment_preview():
    """Count the customers some criteria match now, without saving them."""
    services = _services()
    criteria = validate_criteria(_json_body().get("criteria", {}))
    with transaction(services.sessions) as db:
        return jsonify(criteria=criteria, count=count_segment(db, criteria, services.clock()))


@bp.get("/crm/segments/<key>")
@role_required("supervisor", api=True)
def segment(key: str):
    services = _services()
    with transaction(services.sessions) as db:
        row = find_segment(db, key)
        return jsonify(segment_dict(row, count_segment(db, row.criteria, services.clock())))


@bp.patch("/crm/segments/<key>")
@role_required("supervisor", api=True)
def segment_update(key: str):
    services = _services()
    with transaction(services.sessions) as db:
        row = save_segment(db, _json_body(), services.clock(), segment=find_segment(db, key))
        return jsonify(segment_dict(row, count_segment(db, row.criteria, services.clock())))


@bp.delete("/crm/segments/<key>")
@role_required("supervisor", api=True)
def segment_delete(key: str):
    with transaction(_services().sessions) as db:
        row = find_segment(db, key)
        db.delete(row)
        return jsonify(deleted=row.name)


@bp.get("/crm/segments/<key>/customers.csv")
@role_required("supervisor", api=True)
def segment_csv(key: str):
    services = _services()
    with transaction(services.sessions) as db:
        row = find_segment(db, key)
        criteria, name = row.criteria, row.name

    def lines():
        with transaction(services.sessions) as db:
            yield from export_segment(db, criteria, services.clock())

    filename = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name) or "segment"
    return Response(stream_with_context(lines()), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'})


@bp.post("/crm/segments/<key>/seed")
@role_required("supervisor", api=True)
def segment_seed(key: str):
    """Add the segment's customers as leads of a campaign (body: {"campaign_id": N})."""
    campaign_id = _json_body().get("campaign_id")
    if not isinstance(campaign_id, int) or isinstance(campaign_id, bool):
        abort(400, description="campaign_id must be the campaign's id")
    services = _services()
    with transaction(services.sessions) as db:
        segment_id = find_segment(db, key).id
    report = seed_campaign(services.sessions, segment_id, campaign_id, services.settings.default_region,
                           services.clock())
    return jsonify(report.as_dict())
