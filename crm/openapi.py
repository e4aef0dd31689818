"""OpenAPI 3.1 path items for the CRM API (merged into /api/v1/openapi.json by hub/openapi.py)."""
from __future__ import annotations

from typing import Any

from hub.openapi_parts import CUSTOMER_ACCESS, operation, path_param


def _op(*args, note: str = "", **kwargs) -> dict:
    return operation(*args, note=" ".join(filter(None, ("Amounts are in the CRM's currency (see /crm/settings).",
                                                        note))), **kwargs)


_path = path_param


_PAGE = [{"name": "limit", "in": "query", "schema": {"type": "integer"}, "description": "at most 500, default 50"},
         {"name": "offset", "in": "query", "schema": {"type": "integer"}}]
_ORDER = {"type": "object", "required": ["amount"], "properties": {
    "amount": {"type": ["string", "number"], "description": "e.g. \"19.99\"; at most two decimals"},
    "ordered_at": {"type": "string", "description": "ISO 8601; no offset means UTC; default now"},
    "order_id": {"type": ["string", "integer"], "description": "the seller's id: the same id again is the same order"},
    "currency": {"type": "string"}, "product": {"type": "string"}, "category": {"type": "string"}}}
_CRITERIA = {"type": "object", "description": "see docs/crm.md, Segments", "properties": {
    **{key: {"type": "array", "items": {"type": "string"}}
       for key in ("tiers", "stages", "products", "categories", "regions", "campaigns", "dispositions",
                   "not_in_campaigns")},
    **{key: {"type": "number", "minimum": 0}
       for key in ("clv_min", "clv_max", "p_alive_max", "last_contact_days_min", "last_contact_days_max",
                   "last_purchase_days_min", "last_purchase_days_max")},
    "churn_risk": {"type": "boolean"}}}
_SEGMENT = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 100},
                                             "description": {"type": "string", "maxLength": 300},
                                             "criteria": _CRITERIA}}
_SETTINGS = {"type": "object", "properties": {
    "currency": {"type": "string", "pattern": "^[A-Z]{3}$"}, "cost_per_minute": {"type": "number", "minimum": 0},
    "cost_per_order": {"type": "number", "minimum": 0},
    "rules": {"type": "object", "properties": {"tiers": {"type": "object"}, "lifecycle": {"type": "object"},
                                               "model": {"type": "object"}}}}}


def crm_paths() -> dict[str, Any]:
    """Return the OpenAPI path items of every route in crm/views.py."""
    cid = _path("customer_id")
    key = _path("key", "string") | {"description": "the segment's id or name"}
    return {
        "/customers/{customer_id}/orders": {
            "get": _op("A customer's orders, newest first", "agent", [cid, *_PAGE], errors=("404",),
                       note=CUSTOMER_ACCESS),
            "post": _op("Add an order (201); the same order_id again returns the stored order (200), a different "
                        "order under that id is a conflict (409). The customer's tier and stage are recomputed",
                        "agent", [cid], body=_ORDER, ok="201", errors=("400", "404", "409"),
                        note="An agent records an order only for the customer of the work they hold (as for the "
                             "reads): any other customer is a 403, whether or not it exists. Supervisors and admins "
                             "record one for every customer."),
        },
        "/customers/{customer_id}/value": {"get": _op(
            "A customer's tier, stage, RFM scores, lifetime value, P(alive), churn flag, value to date, and their "
            "tier and stage history", "agent", [cid], errors=("404",), note=CUSTOMER_ACCESS)},
        "/customers/{customer_id}/advocate": {"post": _op(
            "Mark or unmark a customer as an advocate (e.g. they referred someone); their stage is recomputed",
            "supervisor", [cid], body={"type": "object", "required": ["advocate"],
                                       "properties": {"advocate": {"type": "boolean"}}}, errors=("400", "404"))},
        "/crm/orders": {"post": _op(
            "Import purchase history (text/csv body, streamed): the report lists each rejected row with its line "
            "and reason; a full recompute is enqueued when orders were added", "supervisor", csv_body=True,
            errors=("415",))},
        "/crm/recompute": {"post": _op("Enqueue a full recompute of every customer", "supervisor", ok="202")},
        "/crm/runs": {"get": _op("Full recomputes, newest first, with their fitted models and thresholds",
                                 "supervisor", _PAGE)},
        "/crm/settings": {
            "get": _op("The CRM settings: currency, costs to serve, tier, lifecycle and model rules", "supervisor"),
            "patch": _op("Change some settings; every value is checked before any is applied (the currency cannot "
                         "change while orders are kept in another)", "supervisor", body=_SETTINGS,
                         errors=("400", "409")),
        },
        "/crm/segments": {
            "get": _op("Saved segments with their live counts", "supervisor"),
            "post": _op("Save a segment; every refused criterion is listed in `problems`", "supervisor",
                        body=_SEGMENT, ok="201", errors=("400", "409")),
        },
        "/crm/segments/count": {"post": _op(
            "Count the customers some criteria match now, without saving them", "supervisor",
            body={"type": "object", "properties": {"criteria": _CRITERIA}}, errors=("400",))},
        "/crm/segments/{key}": {
            "get": _op("A segment with its live count", "supervisor", [key], errors=("404",)),
            "patch": _op("Change a segment's name, description or criteria", "supervisor", [key], body=_SEGMENT,
                         errors=("400", "404", "409")),
            "delete": _op("Delete a segment", "supervisor", [key], errors=("404",)),
        },
        "/crm/segments/{key}/customers.csv": {"get": _op(
            "The segment's customers as CSV (streamed, formula-safe)", "supervisor", [key], produces_csv=True,
            errors=("404",))},
        "/crm/segments/{key}/seed": {"post": _op(
            "Add the segment's customers as leads of a campaign (through the lead import: duplicates skipped, "
            "do-not-call numbers marked; the compliance gate decides each dial)", "supervisor", [key],
            body={"type": "object", "required": ["campaign_id"], "properties": {"campaign_id": {"type": "integer"}}},
            errors=("400", "404"))},
    }
