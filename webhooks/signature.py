"""Twilio request signatures, checked against the public URL Twilio used to reach us."""
from __future__ import annotations

import functools
import logging

from flask import abort, current_app, request
from twilio.request_validator import RequestValidator, get_signature_algorithm

log = logging.getLogger(__name__)


def public_request_url() -> str:
    """Rebuild the URL as Twilio requested it: the configured public base, then path and query."""
    settings = current_app.extensions["switchboard"].settings
    query = request.query_string.decode("latin-1")
    return settings.public_url + request.path + (f"?{query}" if query else "")


def signed_by_twilio(view):
    """Refuse (403, nothing written) any request whose X-Twilio-Signature does not match."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        settings = current_app.extensions["switchboard"].settings
        signature = request.headers.get("X-Twilio-Signature", "")
        algorithm = get_signature_algorithm(request.headers.get("X-Twilio-Webhooks-Signature-Settings"))
        token = settings.twilio_auth_token or ""
        if not token or not signature or not RequestValidator(token).validate(
            public_request_url(), request.form, signature, algorithm
        ):
            log.warning("refused a webhook to %s with a missing or wrong signature", request.path)
            abort(403)
        return view(*args, **kwargs)

    return wrapper
