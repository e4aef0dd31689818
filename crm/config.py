"""The CRM's stored settings: the currency orders are kept in, what serving a customer costs, and the rules.

They live in the database (one row), like a campaign's costs, so the web process and the workers that
recompute read the same values, and a supervisor changes them through the API without a restart.
"""
from __future__ import annotations

import math
import re
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm.models import CrmSettings, Order
from hub.errors import FlowError

_CURRENCY = re.compile(r"[A-Z]{3}")
EDITABLE = ("currency", "cost_per_minute", "cost_per_order", "rules")


def current_settings(session: Session) -> CrmSettings:
    """Return the CRM settings, creating the row with its defaults the first time."""
    row = session.get(CrmSettings, 1)
    if row is None:
        row = CrmSettings(id=1, currency="USD", cost_per_minute=0.0, cost_per_order=0.0, rules={})
        session.add(row)
        session.flush()
    return row


def update_settings(session: Session, values: dict[str, Any], now) -> CrmSettings:
    """Change some settings; every value is checked before any is applied.

    Raises:
        FlowError: 400 naming the setting that is wrong.
    """
    unknown = set(values) - set(EDITABLE)
    if unknown:
        raise FlowError(f"unknown CRM settings: {', '.join(sorted(unknown))}", 400)
    checked: dict[str, Any] = {}
    if "currency" in values:
        currency = values["currency"]
        if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
            raise FlowError("currency must be a three-letter ISO 4217 code such as USD", 400)
        checked["currency"] = currency
    for name in ("cost_per_minute", "cost_per_order"):
        if name in values:
            value = values[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise FlowError(f"{name} must be a number of at least 0", 400)
            checked[name] = float(value)
    if "rules" in values:
        from crm.rules import rules_from_settings

        if not isinstance(values["rules"], dict):
            raise FlowError("rules must be an object", 400)
        rules_from_settings(values["rules"])  # raises FlowError naming the bad rule
        checked["rules"] = values["rules"]
    row = current_settings(session)
    if checked.get("currency", row.currency) != row.currency:
        kept = session.scalar(select(func.count()).select_from(Order).where(Order.currency != checked["currency"]))
        if kept:  # amounts in two currencies cannot be added up; converting them is not the CRM's to guess
            raise FlowError(f"the currency cannot change to {checked['currency']}: "
                            f"{kept} order{' is' if kept == 1 else 's are'} kept in {row.currency}", 409)
    for name, value in checked.items():
        setattr(row, name, value)
    row.updated_at = now
    return row


def settings_dict(row: CrmSettings) -> dict[str, Any]:
    return {"currency": row.currency, "cost_per_minute": row.cost_per_minute, "cost_per_order": row.cost_per_order,
            "rules": row.rules or {}, "updated_at": row.updated_at.isoformat() if row.updated_at else None}
