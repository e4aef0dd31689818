"""The campaigns REST API under /api/v1: campaigns, their leads (JSON or streamed CSV), do-not-call, running
a campaign and its live figures, handoffs to field sales and their outcomes.

Same auth and errors as hub/api.py. Writes made with a session cookie need the X-CSRF-Token header
(the value the pages carry); bearer-token requests cannot be forged cross-site and are exempt.
"""
from __future__ import annotations

import io
from datetime import date

from flask import Blueprint, Response, abort, current_app, jsonify, request, stream_with_context
from flask_login import current_user
from sqlalchemy import select

from campaigns import dnc, gate
from campaigns.admin import campaign_dict, create_campaign, update_campaign
from campaigns.control import change_status
from campaigns.export import export_handoffs, export_leads
from campaigns.handoff import handoff_dict, record_outcome
from campaigns.leads import add_lead, import_leads, lead_dict, list_leads
from campaigns.models import Campaign, CampaignAgent, DncSource, Handoff, Lead, LeadStatus
from campaigns.stats import campaign_summary, funnel_report
from hub.auth import role_required
from hub.db import transaction
from hub.json_api import install, json_body, page
from hub.errors import FlowError
from hub.models import Agent
from hub.phone import InvalidNumber, to_e164

bp = Blueprint("campaigns_api", __name__, url_prefix="/api/v1")


def _services():
    return current_app.extensions["switchboard"]


def _region() -> str:
    return _services().settings.default_region


install(bp, "setting")
_json_body = json_body
_page = page


def _campaign_or_404(db, campaign_id: int) -> Campaign:
    campaign = db.get(Campaign, campaign_id)
    if campaign is None:
        abort(404, description=f"no campaign {campaign_id}")
    return campaign


def _logins(db) -> dict[int, str]:
    return dict(db.execute(select(Agent.id, Agent.login)).all())


@bp.get("/campaigns")
@role_required("supervisor", api=True)
def campaigns():
    with transaction(_services().sessions) as db:
        logins = _logins(db)
        rows = db.scalars(select(Campaign).order_by(Campaign.id))
        return jsonify(campaigns=[campaign_dict(c, logins) for c in rows])


@bp.post("/campaigns")
@role_required("supervisor", api=True)
def campaign_create():
    with transaction(_services().sessions) as db:
        campaign = create_campaign(db, _json_body(), _region())
        return jsonify(campaign_dict(campaign, _logins(db))), 201


@bp.get("/campaigns/<int:campaign_id>")
@role_required("agent", api=True)
def campaign(campaign_id: int):
    with transaction(_services().sessions) as db:
        row = _campaign_or_404(db, campaign_id)
        if not current_user.has_role("supervisor") and db.get(CampaignAgent, (campaign_id, current_user.id)) is None:
            abort(403, description="you are not an agent of this campaign")
        return jsonify(campaign_dict(row, _logins(db)))


@bp.patch("/campaigns/<int:campaign_id>")
@role_required("supervisor", api=True)
def campaign_update(campaign_id: int):
    with transaction(_services().sessions) as db:
        row = update_campaign(db, _campaign_or_404(db, campaign_id), _json_body(), _region())
        return jsonify(campaign_dict(row, _logins(db)))


@bp.post("/campaigns/<int:campaign_id>/leads")
@role_required("supervisor", api=True)
def leads_add(campaign_id: int):
    services = _services()
    if request.mimetype == "text/csv":
        stream = io.TextIOWrapper(request.stream, encoding=request.mimetype_params.get("charset", "utf-8-sig"),
                                  newline="")
        with transaction(services.sessions) as db:
            report = import_leads(db, campaign_id, stream, _region(), services.clock(),
                                  list_name=request.args.get("list"))
            return jsonify(report.as_dict())
    with transaction(services.sessions) as db:
        lead = add_lead(db, campaign_id, _json_body(), _region(), services.clock())
        return jsonify(lead_dict(lead)), 201


@bp.get("/campaigns/<int:campaign_id>/leads")
@role_required("supervisor", api=True)
def leads(campaign_id: int):
    status = request.args.get("status") or None
    if status and status not in {s.value for s in LeadStatus}:
        abort(400, description=f"status must be one of {', '.join(s.value for s in LeadStatus)}")
    limit, offset = _page()
    with transaction(_services().sessions) as db:
        total, rows = list_leads(db, campaign_id, status=status, skip_code=request.args.get("skip_code") or None,
                                 limit=limit, offset=offset)
        return jsonify(total=total, limit=limit, offset=offset, leads=[lead_dict(x) for x in rows])


@bp.get("/campaigns/<int:campaign_id>/leads.csv")
@role_required("supervisor", api=True)
def leads_csv(campaign_id: int):
    sessions = _services().sessions
    with transaction(sessions) as db:
        name = _campaign_or_404(db, campaign_id).name

    def lines():
        with transaction(sessions) as db:
            yield from export_leads(db, campaign_id)

    filename = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name) or "campaign"
    return Response(stream_with_context(lines()), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}-leads.csv"'})


def _phone(raw: str) -> str:
    try:
        return to_e164(raw, _region())
    except InvalidNumber as exc:
        abort(400, description=f"phone: {exc}")


@bp.get("/dnc")
@role_required("supervisor", api=True)
def dnc_list():
    phone = _phone(request.args["phone"]) if request.args.get("phone") else None
    source = request.args.get("source") or None
    if source and source not in {s.value for s in DncSource}:
        abort(400, description="source must be internal, registry or complaint")
    limit, offset = _page()
    with transaction(_services().sessions) as db:
        total, rows = dnc.list_entries(db, phone=phone, source=source, limit=limit, offset=offset)
        extract = dnc.latest_extract(db)
        today = _services().clock().date()
        return jsonify(total=total, limit=limit, offset=offset, entries=[dnc.entry_dict(e) for e in rows],
                       registry={"extract_date": extract.extract_date.isoformat() if extract else None,
                                 "rows": extract.rows if extract else 0,
                                 "stale": dnc.is_stale(extract.extract_date if extract else None, today)})


@bp.post("/dnc")
@role_required("agent", api=True)
def dnc_add():
    body = _json_body()
    kind = body.get("kind", "opt_out")
    if kind not in ("opt_out", "complaint"):
        abort(400, description="kind must be opt_out or complaint")
    if not body.get("phone"):
        abort(400, description="phone is required")
    add = dnc.add_opt_out if kind == "opt_out" else dnc.add_complaint
    services = _services()
    with transaction(services.sessions) as db:
        entry = add(db, str(body["phone"]), str(body.get("reason") or "") or None, services.clock(), _region())
        return jsonify(dnc.entry_dict(entry)), 201


@bp.delete("/dnc/<phone>")
@role_required("supervisor", api=True)
def dnc_remove(phone: str):
    reason = request.args.get("reason") or (request.get_json(silent=True) or {}).get("reason") or ""
    services = _services()
    with transaction(services.sessions) as db:
        dnc.remove(db, phone, str(reason), services.clock(), _region())
    return jsonify(removed=_phone(phone))


@bp.post("/dnc/registry")
@role_required("supervisor", api=True)
def dnc_registry():
    try:
        extract_date = date.fromisoformat(request.args.get("extract_date", ""))
    except ValueError:
        abort(400, description="give the extract's date: ?extract_date=YYYY-MM-DD")
    if request.mimetype != "text/csv":
        abort(415, description="send the extract as a text/csv body")
    services = _services()
    stream = io.TextIOWrapper(request.stream, encoding="utf-8-sig", newline="")
    with transaction(services.sessions) as db:
        report = dnc.import_registry_extract(db, stream, extract_date, _region(), services.clock())
        return jsonify(report.as_dict())


# ---------------------------------------------------------------- running a campaign


@bp.post("/campaigns/<int:campaign_id>/start", defaults={"action": "start"})
@bp.post("/campaigns/<int:campaign_id>/pause", defaults={"action": "pause"})
@bp.post("/campaigns/<int:campaign_id>/resume", defaults={"action": "resume"})
@bp.post("/campaigns/<int:campaign_id>/stop", defaults={"action": "stop"})
@role_required("supervisor", api=True)
def campaign_control(campaign_id: int, action: str):
    status = change_status(_services(), campaign_id, action)
    return jsonify(id=campaign_id, status=status)


@bp.get("/campaigns/<int:campaign_id>/status")
@role_required("supervisor", api=True)
def campaign_status(campaign_id: int):
    services = _services()
    with transaction(services.sessions) as db:
        return jsonify(campaign_summary(db, _campaign_or_404(db, campaign_id), services.clock()))


@bp.get("/campaigns/<int:campaign_id>/funnel")
@role_required("supervisor", api=True)
def campaign_funnel(campaign_id: int):
    with transaction(_services().sessions) as db:
        return jsonify(funnel_report(db, _campaign_or_404(db, campaign_id)))


@bp.get("/campaigns/<int:campaign_id>/leads/<int:lead_id>/why")
@role_required("supervisor", api=True)
def lead_why(campaign_id: int, lead_id: int):
    """Ask the compliance gate about one lead now: every reason it may not be dialed."""
    services = _services()
    now = services.clock()
    with transaction(services.sessions) as db:
        campaign = _campaign_or_404(db, campaign_id)
        lead = db.get(Lead, lead_id)
        if lead is None or lead.campaign_id != campaign_id:
            abort(404, description=f"no lead {lead_id} in campaign {campaign_id}")
        verdict = gate.judge(db, campaign, [lead], now, _region())[lead.id]
        return jsonify(lead_id=lead.id, status=lead.status, may_dial_now=verdict.allowed,
                       reasons=[{"code": skip.code.value, "detail": skip.detail} for skip in verdict.reasons],
                       next_allowed_at=verdict.next_allowed_at.isoformat() if verdict.next_allowed_at else None,
                       time_zones=list(verdict.zones))


# ---------------------------------------------------------------- handoffs to field sales


def _handoff_rows(db):
    query = select(Handoff).order_by(Handoff.id)
    if request.args.get("campaign_id"):
        query = query.where(Handoff.campaign_id == request.args.get("campaign_id", type=int))
    if request.args.get("status"):
        query = query.where(Handoff.status == request.args["status"])
    return query


@bp.get("/handoffs")
@role_required("supervisor", api=True)
def handoffs():
    limit, offset = _page()
    with transaction(_services().sessions) as db:
        rows = db.scalars(_handoff_rows(db).limit(limit).offset(offset))
        return jsonify(limit=limit, offset=offset, handoffs=[handoff_dict(h) for h in rows])


@bp.get("/handoffs.csv")
@role_required("supervisor", api=True)
def handoffs_csv():
    sessions = _services().sessions

    def lines():
        with transaction(sessions) as db:
            yield from export_handoffs(db.scalars(_handoff_rows(db)))

    return Response(stream_with_context(lines()), mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="handoffs.csv"'})


@bp.post("/handoffs/<int:handoff_id>/outcome")
@role_required("supervisor", api=True)
def handoff_outcome(handoff_id: int):
    body = _json_body()
    services = _services()
    with transaction(services.sessions) as db:
        handoff = record_outcome(db, handoff_id, str(body.get("outcome") or ""), body.get("amount"),
                                 body.get("reason"), services.clock())
        return jsonify(handoff_dict(handoff))
