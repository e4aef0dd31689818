"""Typed settings built from SWITCHBOARD_* environment variables.

Parsing is strict: a malformed value stops start-up with the variable's name. Secrets are masked in repr.
Tests build a `Settings` directly instead of touching the environment.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

PREFIX = "SWITCHBOARD_"
_ACCOUNT_SID = re.compile(r"^AC[0-9a-f]{32}$")


class SettingsError(ValueError):
    """A SWITCHBOARD_* variable is missing or malformed."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{PREFIX}{variable}: {problem}")
        self.variable = PREFIX + variable


@dataclass(frozen=True)
class Settings:
    """Everything the hub reads from its environment."""

    database_url: str = "sqlite:///instance/switchboard.db"
    redis_url: str = "redis://localhost:6379/0"
    secret_key: str | None = field(default=None, repr=False)
    public_url: str = "http://127.0.0.1:5000"
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = field(default=None, repr=False)
    twilio_api_url: str | None = None
    caller_id: str = "+15005550006"
    default_region: str = "US"
    calling_hours: str = "08:00-21:00"  # customers' local time, when callbacks may be placed
    console_grace_s: int = 30  # after a console disconnects, how long before its agent is logged off
    socketio_channel: str = "switchboard"
    rq_queue: str = "switchboard"
    handoff_url: str | None = None  # where qualified leads go when their territory names no webhook
    handoff_secret: str | None = field(default=None, repr=False)  # HMAC-SHA256 key signing handoff webhooks
    dial_cps: float = 1.0  # calls the dialer may place per second on the Twilio account (Twilio's default cap is 1)
    db_pool_size: int = 20  # PostgreSQL connections a process keeps open: at least its threads + 4 (see README)
    check_routing_cache: bool = False  # compare every reused routing state with a full load (tests; slower)

    def __repr__(self) -> str:  # secrets masked, everything else shown
        shown = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("secret_key", "twilio_auth_token", "handoff_secret") and value:
                value = "***"
            shown.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    def replace(self, **changes: object) -> "Settings":
        """Return a copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def require(self, *names: str) -> "Settings":
        """Raise SettingsError for the first of `names` that is unset."""
        for name in names:
            if not getattr(self, name):
                raise SettingsError(name.upper(), "required here but not set")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _url(variable: str, value: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes or not (parts.netloc or parts.path):
        raise SettingsError(variable, f"expected a URL with scheme {' or '.join(schemes)}, got {value!r}")
    return value


def _database_url(variable: str, value: str) -> str:
    scheme = value.split(":", 1)[0]
    if not (scheme.startswith("sqlite") or scheme.startswith("postgresql")):
        raise SettingsError(variable, f"expected a sqlite:// or postgresql:// URL, got {value!r}")
    return value


def _account_sid(variable: str, value: str) -> str:
    if not _ACCOUNT_SID.match(value):
        raise SettingsError(variable, "expected 'AC' followed by 32 lowercase hex digits")
    return value


def _phone(variable: str, value: str) -> str:
    if not re.match(r"^\+[1-9][0-9]{6,14}$", value):
        raise SettingsError(variable, f"expected an E.164 number such as +15005550006, got {value!r}")
    return value


def _region(variable: str, value: str) -> str:
    if not re.match(r"^[A-Z]{2}$", value):
        raise SettingsError(variable, f"expected a two-letter region code such as US, got {value!r}")
    return value


def _name(variable: str, value: str) -> str:
    if not re.match(r"^[A-Za-z0-9_.:-]{1,64}$", value):
        raise SettingsError(variable, "expected 1-64 letters, digits or _.:-")
    return value


def _hours(variable: str, value: str) -> str:
    if not re.match(r"^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]$", value) or \
            value[:5] >= value[6:]:
        raise SettingsError(variable, f"expected a window such as 08:00-21:00, got {value!r}")
    return value


def _seconds(variable: str, value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 3600:
        raise SettingsError(variable, f"expected a whole number of seconds from 1 to 3600, got {value!r}")
    return int(value)


def _calls_per_second(variable: str, value: str) -> float:
    try:
        rate = float(value)
    except ValueError:
        rate = 0.0
    if not 0 < rate <= 30:
        raise SettingsError(variable, f"expected calls per second above 0 and at most 30, got {value!r}")
    return rate


def _pool_size(variable: str, value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 500:
        raise SettingsError(variable, f"expected a whole number of connections from 1 to 500, got {value!r}")
    return int(value)


def _flag(variable: str, value: str) -> bool:
    if value.lower() not in ("0", "1", "true", "false", "yes", "no"):
        raise SettingsError(variable, f"expected 1 or 0 (true/false, yes/no), got {value!r}")
    return value.lower() in ("1", "true", "yes")


_PARSERS = {
    "check_routing_cache": _flag,
    "db_pool_size": _pool_size,
    "dial_cps": _calls_per_second,
    "handoff_url": lambda v, x: _url(v, x, ("http", "https")),
    "calling_hours": _hours,
    "console_grace_s": _seconds,
    "database_url": _database_url,
    "redis_url": lambda v, x: _url(v, x, ("redis", "rediss", "unix")),
    "public_url": lambda v, x: _url(v, x, ("http", "https")).rstrip("/"),
    "twilio_account_sid": _account_sid,
    "twilio_api_url": lambda v, x: _url(v, x, ("http", "https")).rstrip("/"),
    "caller_id": _phone,
    "default_region": _region,
    "socketio_channel": _name,
    "rq_queue": _name,
}


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Build Settings from SWITCHBOARD_* variables in `environ`.

    Raises:
        SettingsError: naming the first variable whose value is malformed.
    """
    values: dict[str, str] = {}
    for f in dataclasses.fields(Settings):
        variable = f.name.upper()
        raw = environ.get(PREFIX + variable)
        if raw is None or raw == "":
            continue
        parse = _PARSERS.get(f.name)
        values[f.name] = parse(variable, raw.strip()) if parse else raw
    return Settings(**values)
