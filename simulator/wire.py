"""Twilio wire-format helpers: SIDs, RFC 2822 dates, error bodies."""
from __future__ import annotations

import secrets
from datetime import datetime, timezone
from email.utils import format_datetime

API_VERSION = "2010-04-01"


def new_sid(prefix: str) -> str:
    """Return a Twilio-style SID: two-letter prefix plus 32 lowercase hex digits."""
    return prefix + secrets.token_hex(16)


def rfc2822(when: datetime | None) -> str | None:
    """Format a UTC datetime as Twilio does (`Tue, 31 Aug 2010 20:36:28 +0000`)."""
    if when is None:
        return None
    return format_datetime(when.astimezone(timezone.utc)).replace("-0000", "+0000")


def utcnow() -> datetime:
    """Return the current UTC time."""
    return datetime.now(timezone.utc)


def error_body(status: int, code: int, message: str) -> dict[str, object]:
    """Return Twilio's REST error body."""
    return {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}
