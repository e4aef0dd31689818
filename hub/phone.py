"""Phone numbers: parsed and stored as E.164 with `phonenumbers`."""
from __future__ import annotations

import phonenumbers


class InvalidNumber(ValueError):
    """A string that is not a valid phone number."""


def to_e164(raw: str, region: str = "US") -> str:
    """Return `raw` as an E.164 number, reading national formats in `region`.

    Raises:
        InvalidNumber: when `raw` is not a valid number.
    """
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidNumber(f"not a phone number: {exc}") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidNumber("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def try_e164(raw: str | None, region: str = "US") -> str | None:
    """Return `raw` as E.164, or None when it is missing or not a valid number (e.g. 'anonymous')."""
    if not raw:
        return None
    try:
        return to_e164(raw, region)
    except InvalidNumber:
        return None


def masked(number: str | None) -> str:
    """Return a number safe for logs: only its last two digits."""
    return "…" + number[-2:] if number else "-"
