"""OpenAPI 3.1 path items for the campaigns API (merged into /api/v1/openapi.json by hub/openapi.py)."""
from __future__ import annotations

from typing import Any

from hub.openapi_parts import operation, path_param

_op = operation
_path = path_param


def _query(name: str, kind: str = "string", required: bool = False, description: str = "") -> dict[str, Any]:
    param = {"name": name, "in": "query", "required": required, "schema": {"type": kind}}
    if description:
        param["description"] = description
    return param


_PAGE = [_query("limit", "integer", description="at most 500, default 50"), _query("offset", "integer")]
_CAMPAIGN = {
    "type": "object",
    "description": "Campaign settings (see docs/campaigns.md). name and caller_id are required to create.",
    "properties": {
        "name": {"type": "string"}, "caller_id": {"type": "string"},
        "mode": {"enum": ["preview", "progressive", "predictive"]},
        "schedule": {"type": "object", "properties": {"timezone": {"type": "string"},
                                                      "days": {"type": "array", "items": {"type": "integer"}},
                                                      "start": {"type": "string"}, "end": {"type": "string"}}},
        "script": {"type": "object", "properties": {"questions": {"type": "array"}, "qualify": {"type": "array"}}},
        "retry_rules": {"type": "object"}, "max_attempts": {"type": "integer", "minimum": 1},
        "abandon_target": {"type": "number", "exclusiveMinimum": 0, "maximum": 0.03},
        "ring_timeout_s": {"type": "integer", "minimum": 15}, "amd": {"type": "boolean"},
        "machine_action": {"enum": ["hang_up", "message"]}, "machine_message": {"type": "string"},
        "abandon_message": {"type": "string"}, "wrap_up_s": {"type": "integer", "minimum": 0},
        "team": {"type": ["string", "null"]}, "territories": {"type": "object"},
        "cost_per_lead": {"type": "number", "minimum": 0}, "cost_per_minute": {"type": "number", "minimum": 0},
        "cost_per_agent_hour": {"type": "number", "minimum": 0}, "requires_registry": {"type": "boolean"},
        "agents": {"type": "array", "items": {"type": "string"}, "description": "agent logins"},
    },
}
_LEAD = {"type": "object", "required": ["phone"], "properties": {
    "phone": {"type": "string"}, "first_name": {"type": "string"}, "last_name": {"type": "string"},
    "state": {"type": "string"}, "postal_code": {"type": "string"}, "priority": {"type": "integer"},
    "custom_fields": {"type": "object"}, "list_name": {"type": "string", "maxLength": 100}}}


def campaign_paths() -> dict[str, Any]:
    """Return the OpenAPI path items of every route in campaigns/views.py."""
    cid = _path("campaign_id")
    return {
        "/campaigns": {
            "get": _op("List campaigns", "supervisor"),
            "post": _op("Create a campaign (draft); every refused setting is listed in `problems`", "supervisor",
                        body=_CAMPAIGN, ok="201", errors=("400", "409")),
        },
        "/campaigns/{campaign_id}": {
            "get": _op("Read a campaign (agents: only campaigns they work on)", "agent", [cid], errors=("404",)),
            "patch": _op("Change some settings of a campaign", "supervisor", [cid], body=_CAMPAIGN,
                         errors=("400", "404", "409")),
        },
        "/campaigns/{campaign_id}/leads": {
            "get": _op("A page of the campaign's leads, in import order", "supervisor", [
                cid, _query("status", description="ready, dialing, in_call or done"),
                _query("skip_code", description="e.g. dnc_internal"), *_PAGE], errors=("400", "404")),
            "post": _op("Add one lead (JSON) or import many (text/csv body, streamed): the report lists each "
                        "rejected row with its line and reason", "supervisor",
                        [cid, _query("list", description="the name of the list being imported (CSV only)")],
                        body=_LEAD, csv_body=True,
                        errors=("400", "404", "409")),
        },
        "/campaigns/{campaign_id}/leads.csv": {
            "get": _op("Export the campaign's leads as CSV (formula-safe)", "supervisor", [cid], produces_csv=True,
                       errors=("404",)),
        },
        "/campaigns/{campaign_id}/start": {"post": _op("Start dialing (a draft or stopped campaign)", "supervisor",
                                                       [cid], errors=("404", "409"))},
        "/campaigns/{campaign_id}/pause": {"post": _op("Pause: no new dials from the next second on; ringing calls "
                                                       "finish", "supervisor", [cid], errors=("404", "409"))},
        "/campaigns/{campaign_id}/resume": {"post": _op("Resume a paused campaign", "supervisor", [cid],
                                                        errors=("404", "409"))},
        "/campaigns/{campaign_id}/stop": {"post": _op("Stop the campaign (its leads are kept)", "supervisor", [cid],
                                                      errors=("404", "409"))},
        "/campaigns/{campaign_id}/status": {"get": _op(
            "Live figures: lines in flight, dials per second, answer and machine rates, abandon rate today and "
            "over 30 days against the limit, leads dialable now and why the others are not, the funnel",
            "supervisor", [cid], errors=("404",))},
        "/campaigns/{campaign_id}/funnel": {"get": _op(
            "The funnel (leads, attempted, contacted, qualified, handed off, won) with costs, by campaign, list "
            "and agent", "supervisor", [cid], errors=("404",))},
        "/campaigns/{campaign_id}/leads/{lead_id}/why": {"get": _op(
            "Ask the compliance gate now: may this lead be dialed, and every reason it may not", "supervisor",
            [cid, _path("lead_id")], errors=("404",))},
        "/handoffs": {"get": _op("Handoffs of qualified leads to field sales", "supervisor", [
            _query("campaign_id", "integer"), _query("status", description="pending, sent, failed or listed"),
            *_PAGE])},
        "/handoffs.csv": {"get": _op("Handoffs as CSV (formula-safe)", "supervisor", [
            _query("campaign_id", "integer"), _query("status")], produces_csv=True)},
        "/handoffs/{handoff_id}/outcome": {"post": _op(
            "Field sales report the outcome: won (with the amount) or lost (with a reason); once", "supervisor",
            [_path("handoff_id")], body={"type": "object", "required": ["outcome"], "properties": {
                "outcome": {"enum": ["won", "lost"]}, "amount": {"type": "number", "minimum": 0},
                "reason": {"type": "string"}}}, errors=("400", "404", "409"))},
        "/dnc": {
            "get": _op("Do-not-call entries, and the registry extract in effect", "supervisor", [
                _query("phone", description="any format"), _query("source", description="internal, registry, "
                                                                                           "complaint"), *_PAGE]),
            "post": _op("Add an opt-out or a complaint; the number's ready leads are marked at once", "agent",
                        body={"type": "object", "required": ["phone"], "properties": {
                            "phone": {"type": "string"}, "kind": {"enum": ["opt_out", "complaint"]},
                            "reason": {"type": "string"}}}, ok="201", errors=("400",)),
        },
        "/dnc/{phone}": {
            "delete": _op("Remove a number from the internal list (not the registry or complaints)", "supervisor",
                          [_path("phone", "string"), _query("reason", required=True)], errors=("400", "404")),
        },
        "/dnc/registry": {
            "post": _op("Replace the registry list with an extract (text/csv body)", "supervisor",
                        [_query("extract_date", required=True, description="YYYY-MM-DD")], csv_body=True,
                        errors=("400", "415")),
        },
    }
