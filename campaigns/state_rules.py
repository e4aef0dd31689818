"""State rules that are stricter than the federal defaults, as data.

To change a rule, edit ``STATE_RULES`` (or pass another mapping as ``CampaignRules.state_rules``).
Each rule can only narrow: the gate takes the later start, the earlier end and the lower cap of every
rule that applies. This table is a starting point kept by engineering, not legal advice: have counsel
confirm it before a campaign goes live in a new state.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import time, timedelta


@dataclass(frozen=True)
class DailyWindow:
    """Local wall-clock hours [start, end) during which calls are allowed."""

    start: time
    end: time

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("window times are local wall-clock times, without tzinfo")
        if not self.start < self.end:
            raise ValueError(f"window start {self.start} must be before its end {self.end}")

    def contains(self, local: time) -> bool:
        """Return True when a local wall-clock time lies in [start, end)."""
        return self.start <= local < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


@dataclass(frozen=True)
class StateRule:
    """What a state adds to the federal rules; None means "no stricter than the campaign"."""

    window: DailyWindow | None = None
    max_calls: int | None = None
    per: timedelta = timedelta(hours=24)
    source: str = ""


FEDERAL_WINDOW = DailyWindow(time(8), time(21))  # TSR 16 CFR 310.4(c), TCPA 47 CFR 64.1200(c)(1)

STATE_RULES: dict[str, StateRule] = {
    "FL": StateRule(DailyWindow(time(8), time(20)), 3, source="Fla. Stat. 501.616 (FTSA, 2021)"),
    "OK": StateRule(DailyWindow(time(8), time(20)), 3, source="Okla. Stat. tit. 15 775C.4 (2022)"),
    "MD": StateRule(DailyWindow(time(8), time(20)), 3, source="Md. Com. Law 14-4503 (2023)"),
}
