"""The OpenAPI 3.1 description of /api/v1."""
from __future__ import annotations

from typing import Any

from campaigns.openapi import campaign_paths
from crm.openapi import crm_paths
from hub.openapi_parts import CUSTOMER_ACCESS


def _op(summary: str, role: str | None, params: list[dict] | None = None, body: dict | None = None,
        ok: str = "OK", note: str = "") -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {"200": {"description": ok}}}
    if role:
        op["security"] = [{"session": []}, {"bearer": []}]
        op["description"] = f"Requires the {role} role or higher." + (f" {note}" if note else "")
        op["responses"].update({"401": {"$ref": "#/components/responses/Error"},
                                "403": {"$ref": "#/components/responses/Error"}})
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op


def _path_id(name: str, kind: str = "integer") -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": kind}}


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Switchboard API", "version": "1.0.0",
                 "description": "Customers, their timelines, agents, queues and calls."},
        "servers": [{"url": "/api/v1"}],
        "components": {
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "session"},
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "A token from POST /auth/token."},
            },
            "responses": {"Error": {"description": "An error", "content": {"application/json": {"schema": {
                "type": "object", "properties": {"error": {"type": "string"}, "message": {"type": "string"}}}}}}},
        },
        "paths": {
            "/auth/token": {"post": _op(
                "Exchange a login and password for an API token", None,
                body={"type": "object", "required": ["login", "password"],
                      "properties": {"login": {"type": "string"}, "password": {"type": "string"}}})},
            "/customers": {"get": _op("Find the customer who owns a phone number", "agent", [
                {"name": "phone", "in": "query", "required": True, "schema": {"type": "string"},
                 "description": "Any format; read in the hub's default region."}],
                note="An agent may look a number up only while they hold a call (offered, talking or wrapping "
                     "up), to identify its caller: a 403 otherwise.")},
            "/customers/{customer_id}": {"get": _op("Read a customer", "agent", [_path_id("customer_id")],
                                                    note=CUSTOMER_ACCESS)},
            "/customers/{customer_id}/timeline": {"get": _op(
                "A customer's timeline, newest first", "agent",
                [_path_id("customer_id"), {"name": "limit", "in": "query", "schema": {"type": "integer"}}],
                note=CUSTOMER_ACCESS)},
            "/agents": {"get": _op("Agents and their states", "supervisor")},
            "/queues": {"get": _op("Queues with waiting calls, staffing and today's service level", "agent")},
            "/calls/{sid}": {"get": _op("One call leg", "agent", [_path_id("sid", "string")])},
            "/calls/{sid}/trace": {"get": _op(
                "Every routing decision about a call: candidates, who was skipped and why, the deciding rule",
                "agent", [_path_id("sid", "string")])},
            **campaign_paths(),
            **crm_paths(),
        },
    }
