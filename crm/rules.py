"""The CRM's rules as stored in its settings row, turned into the pure core's rule objects.

Stored shape (every key optional; what is left out keeps the core's default):

    {"tiers": {"gold_share": 0.8, "gold_cap": 0.2, "silver_share": 0.95, "silver_cap": 0.5},
     "lifecycle": {"loyal_purchases": 4, "loyal_window_days": 365, "lapse_factor": 2.0,
                   "lapse_floor_days": 90, "churn_p_alive": 0.1, "churn_after_days": 730},
     "model": {"horizon_months": 12, "monthly_discount": 0.01}}
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from crm.lifecycle import LifecycleRules, StageInputError
from crm.value import ScoringError, TierRules
from hub.errors import FlowError


@dataclass(frozen=True)
class ModelRules:
    """How far ahead lifetime value looks, and how future money is discounted."""

    horizon_months: int = 12
    monthly_discount: float = 0.01

    def __post_init__(self) -> None:
        if not (isinstance(self.horizon_months, int) and 1 <= self.horizon_months <= 120):
            raise ValueError("horizon_months must be a whole number from 1 to 120")
        if not (math.isfinite(self.monthly_discount) and 0 <= self.monthly_discount < 1):
            raise ValueError("monthly_discount must be at least 0 and below 1")


@dataclass(frozen=True)
class CrmRules:
    tiers: TierRules
    lifecycle: LifecycleRules
    model: ModelRules


_SECTIONS = {"tiers": TierRules, "lifecycle": LifecycleRules, "model": ModelRules}


def rules_from_settings(stored: dict[str, Any] | None) -> CrmRules:
    """Build the rule objects from the stored JSON.

    Raises:
        FlowError: 400 naming the section and key that are wrong.
    """
    stored = stored or {}
    unknown = set(stored) - set(_SECTIONS)
    if unknown:
        raise FlowError(f"unknown rule sections: {', '.join(sorted(unknown))} (tiers, lifecycle, model)", 400)
    built = {}
    for section, cls in _SECTIONS.items():
        values = stored.get(section, {})
        if not isinstance(values, dict):
            raise FlowError(f"rules.{section} must be an object", 400)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for key, value in values.items():
            if key not in fields:
                raise FlowError(f"rules.{section}.{key} is not a rule (known: {', '.join(fields)})", 400)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise FlowError(f"rules.{section}.{key} must be a number", 400)
            if fields[key].type in ("int", int) and value != int(value):
                raise FlowError(f"rules.{section}.{key} must be a whole number", 400)
        try:
            built[section] = cls(**{k: (int(v) if fields[k].type in ("int", int) else float(v))
                                    for k, v in values.items()})
        except (ValueError, ScoringError, StageInputError) as exc:
            raise FlowError(f"rules.{section}: {exc}", 400) from None
    return CrmRules(**built)
