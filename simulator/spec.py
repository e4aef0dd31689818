"""Load Twilio's published OpenAPI description of API v2010 and validate REST requests against it."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest
from werkzeug.wrappers import Request

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SPEC_RELATIVE = Path("node_modules/@twilio-alpha/mcp/twilio-oai/spec/json/twilio_api_v2010.json")
FORM = "application/x-www-form-urlencoded"


class SpecMissing(RuntimeError):
    """The npm dependency that carries Twilio's OpenAPI description is not installed."""


def spec_path(root: Path | None = None) -> Path:
    """Return the path of twilio_api_v2010.json inside the project's node_modules."""
    return (root or PROJECT_ROOT) / SPEC_RELATIVE


def load_spec(root: Path | None = None) -> dict[str, Any]:
    """Read the spec as a dict, or raise SpecMissing with a one-line hint."""
    path = spec_path(root)
    if not path.is_file():
        raise SpecMissing(f"Twilio's OpenAPI description is missing ({SPEC_RELATIVE}): run `npm ci` in the project root")
    with path.open(encoding="utf-8") as f:
        return json.load(f)


def patch_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """Declare form/explode encoding for array properties and require bodies that list required fields."""
    for item in spec.get("paths", {}).values():
        for op in item.values():
            if not isinstance(op, dict) or "requestBody" not in op:
                continue
            body = op["requestBody"]
            media = body.get("content", {}).get(FORM)
            if not media:
                continue
            schema = media.get("schema", {})
            if schema.get("required"):
                body["required"] = True
            encoding = media.setdefault("encoding", {})
            for name, prop in schema.get("properties", {}).items():
                if prop.get("type") == "array" and name not in encoding:
                    encoding[name] = {"style": "form", "explode": True}
    return spec


class _TwilioHostRequest(WerkzeugOpenAPIRequest):
    """A werkzeug request seen as if it had been sent to api.twilio.com (the spec's only server)."""

    @property
    def host_url(self) -> str:
        return "https://api.twilio.com/"


def _describe(exc: BaseException) -> str:
    """Turn an openapi-core error chain into one readable line."""
    seen: list[str] = []
    current: BaseException | None = exc
    while current is not None:
        errors = getattr(current, "schema_errors", None)
        if errors:
            return "; ".join(getattr(e, "message", str(e)) for e in errors)
        seen.append(str(current))
        current = current.__cause__ or current.__context__
    return seen[-1] if seen else type(exc).__name__


class SpecValidator:
    """Validates werkzeug requests against the (patched) v2010 description; build once, reuse."""

    def __init__(self, spec: dict[str, Any] | None = None) -> None:
        self._api = OpenAPI.from_dict(patch_spec(spec if spec is not None else load_spec()))

    def problem(self, request: Request) -> str | None:
        """Return None when the request matches the spec, else a one-line description of what is wrong."""
        try:
            self._api.validate_request(_TwilioHostRequest(request))
        except Exception as exc:  # openapi-core raises a family of errors; all mean "invalid"
            return _describe(exc)
        return None
