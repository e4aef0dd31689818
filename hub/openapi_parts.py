"""Building blocks for the OpenAPI path items each API blueprint describes (merged by hub/openapi.py)."""
from __future__ import annotations

from typing import Any

ERROR = {"$ref": "#/components/responses/Error"}
# the rule of hub.customer_access, for the operations that read one customer's data
CUSTOMER_ACCESS = ("An agent reads only the customer of the work they hold (the call they are offered, talking on or "
                   "wrapping up, or the campaign lead they preview): any other customer is a 403, whether or not it "
                   "exists. Supervisors and admins read every customer.")


def operation(summary: str, role: str, params: list[dict] | None = None, body: dict | None = None, *,
              csv_body: bool = False, ok: str = "200", produces_csv: bool = False, errors: tuple[str, ...] = (),
              note: str = "") -> dict:
    """One operation of a blueprint whose writes follow hub.json_api's CSRF rule; `note` ends the description."""
    op: dict[str, Any] = {
        "summary": summary,
        "description": f"Requires the {role} role or higher. Writes with a session cookie need the X-CSRF-Token "
                       "header." + (f" {note}" if note else ""),
        "security": [{"session": []}, {"bearer": []}],
        "responses": {ok: {"description": "OK"}, "401": ERROR, "403": ERROR, **{code: ERROR for code in errors}},
    }
    if produces_csv:
        op["responses"][ok]["content"] = {"text/csv": {"schema": {"type": "string"}}}
    if params:
        op["parameters"] = params
    content: dict[str, Any] = {}
    if body:
        content["application/json"] = {"schema": body}
    if csv_body:
        content["text/csv"] = {"schema": {"type": "string"}}
    if content:
        op["requestBody"] = {"required": True, "content": content}
    return op


def path_param(name: str, kind: str = "integer") -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": kind}}
