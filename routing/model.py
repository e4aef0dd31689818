"""The routing engine's state: queue rules, agents, calls, and the whole picture the engine decides on.

Everything is an immutable value. The engine never changes a state in place; it returns a new one.
"""
from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from routing.states import CallState, Presence, Work


class Strategy(StrEnum):
    LONGEST_IDLE = "longest_idle"
    FEWEST_CALLS = "fewest_calls"
    HIGHEST_SKILL = "highest_skill"
    ROUND_ROBIN = "round_robin"


class Divert(StrEnum):
    """Where a call goes when its queue is closed or its caller has waited too long."""

    QUEUE = "queue"
    VOICEMAIL = "voicemail"
    CALLBACK = "callback"  # offer to call back; the caller keeps their place in line


@dataclass(frozen=True)
class Diversion:
    action: Divert
    queue: str | None = None  # the target queue when action is QUEUE


@dataclass(frozen=True)
class EscalationStep:
    """After `after` of waiting, agents with these (wider) skills qualify too."""

    after: timedelta
    skills: Mapping[str, int]


@dataclass(frozen=True)
class BusinessHours:
    """Opening hours per weekday (Monday is 0) in the queue's own time zone; a missing day is closed."""

    timezone: str
    days: Mapping[int, tuple[time, time]]

    def is_open(self, now: datetime) -> bool:
        local = now.astimezone(ZoneInfo(self.timezone))
        hours = self.days.get(local.weekday())
        return hours is not None and hours[0] <= local.time() < hours[1]


@dataclass(frozen=True)
class QueueRules:
    name: str
    skills: Mapping[str, int] = field(default_factory=dict)  # required skill -> minimum level
    offer_timeout: timedelta = timedelta(seconds=15)
    wrap_up: timedelta = timedelta(seconds=60)
    strategy: Strategy = Strategy.LONGEST_IDLE
    preferred_window: timedelta = timedelta(seconds=20)
    escalation: tuple[EscalationStep, ...] = ()
    max_wait: timedelta | None = None
    overflow: Diversion | None = None
    hours: BusinessHours | None = None  # None: always open
    after_hours: Diversion = Diversion(Divert.VOICEMAIL)
    service_level_target: timedelta = timedelta(seconds=20)

    def __post_init__(self) -> None:
        # steps kept in time order once, so the hot path never sorts them
        object.__setattr__(self, "escalation", tuple(sorted(self.escalation, key=lambda s: s.after)))

    def skills_after(self, waited: timedelta) -> Mapping[str, int]:
        """Return the skills required of an agent once a caller has waited `waited`."""
        skills = self.skills
        for step in self.escalation:
            if waited < step.after:
                break
            skills = step.skills
        return skills

    def could_use(self, agent: "Agent") -> bool:
        """Say whether `agent` meets this queue's skills now or at some escalation step."""
        return agent.meets(self.skills) or any(agent.meets(step.skills) for step in self.escalation)

    def is_open(self, now: datetime) -> bool:
        return self.hours is None or self.hours.is_open(now)


def within_calling_hours(zones: tuple[str, ...], now: datetime, window: tuple[time, time]) -> bool:
    """Say whether `now` is inside the calling window in every candidate time zone (none known: no)."""
    if not zones:
        return False
    for zone in zones:
        try:
            local = now.astimezone(ZoneInfo(zone)).time()
        except (KeyError, ValueError):
            return False
        if not window[0] <= local < window[1]:
            return False
    return True


@dataclass(frozen=True)
class RoutingConfig:
    max_missed_offers: int = 3
    calling_window: tuple[time, time] = (time(8), time(21))  # customer's local time, for callbacks
    tier_priority: Mapping[str, timedelta] = field(default_factory=lambda: {
        "gold": timedelta(seconds=120), "silver": timedelta(seconds=45), "standard": timedelta(0)})
    # expected lifetime value adds a head start within a tier: this much per 1,000 (in the CRM's currency), up
    # to the cap; the cap is below the smallest gap between tiers, so the tier decides first
    value_priority_per_1000: timedelta = timedelta(seconds=5)
    value_priority_cap: timedelta = timedelta(seconds=30)

    def head_start(self, tier: str | None, lifetime_value: float | None) -> timedelta:
        """How far ahead in line a caller starts: their tier's head start plus their lifetime value's."""
        start = self.tier_priority.get(tier or "", timedelta(0))
        if lifetime_value is not None and lifetime_value > 0:
            start += min(self.value_priority_cap, self.value_priority_per_1000 * (lifetime_value / 1000))
        return start


@dataclass(frozen=True)
class Agent:
    id: int
    presence: Presence
    work: Work
    idle_since: datetime
    skills: Mapping[str, int] = field(default_factory=dict)
    call_sid: str | None = None
    break_reason: str | None = None
    pending_presence: Presence | None = None  # chosen during a call; applied when the call's work is done
    pending_reason: str | None = None
    missed_offers: int = 0
    calls_today: int = 0

    def is_free(self) -> bool:
        return self.presence is Presence.AVAILABLE and self.work is Work.IDLE

    def meets(self, skills: Mapping[str, int]) -> bool:
        return all(self.skills.get(skill, 0) >= level for skill, level in skills.items())

    def level_for(self, skills: Mapping[str, int]) -> int:
        return sum(self.skills.get(skill, 0) for skill in skills)


@dataclass(frozen=True)
class Call:
    sid: str
    queue: str
    arrived_at: datetime
    state: CallState = CallState.WAITING
    agent_id: int | None = None
    offer_expires_at: datetime | None = None
    tried: frozenset[int] = frozenset()
    priority: timedelta = timedelta(0)  # head start in line from the customer's value tier and lifetime value
    preferred: tuple[int, ...] = ()  # the customer's owner, then the last agent who helped them
    callback: bool = False  # the caller hung up to be called back, keeping their place
    zones: tuple[str, ...] = ()  # the customer's candidate time zones, for calling hours

    @property
    def line_key(self) -> tuple[datetime, str]:
        """Place in line: earlier arrival first, a value-tier head start subtracted (so nobody starves)."""
        return (self.arrived_at - self.priority, self.sid)


LineKey = tuple[datetime, str]


@dataclass(frozen=True)
class RoutingState:
    agents: Mapping[int, Agent]
    calls: Mapping[str, Call]
    queues: Mapping[str, QueueRules]
    config: RoutingConfig = field(default_factory=RoutingConfig)
    last_chosen: Mapping[str, int] = field(default_factory=dict)  # round robin: last agent per queue
    # each queue's waiting calls in line order (kept up to date by with_call; built when not given)
    lines: Mapping[str, tuple[LineKey, ...]] | None = None

    def __post_init__(self) -> None:
        if self.lines is None:
            lines: dict[str, list[LineKey]] = {}
            for call in self.calls.values():
                if call.state is CallState.WAITING:
                    lines.setdefault(call.queue, []).append(call.line_key)
            object.__setattr__(self, "lines", {q: tuple(sorted(keys)) for q, keys in lines.items()})

    def with_agent(self, agent: Agent) -> "RoutingState":
        return replace(self, agents={**self.agents, agent.id: agent})

    def with_call(self, call: Call) -> "RoutingState":
        old = self.calls.get(call.sid)
        before = (old.queue, old.line_key) if old is not None and old.state is CallState.WAITING else None
        after = (call.queue, call.line_key) if call.state is CallState.WAITING else None
        lines = self.lines
        if before != after:
            lines = dict(lines)
            if before is not None:
                queue, key = before
                line = lines[queue]
                i = bisect_left(line, key)
                if len(line) > 1:
                    lines[queue] = line[:i] + line[i + 1:]
                else:  # as built from the calls: a queue nobody waits in has no line
                    del lines[queue]
            if after is not None:
                queue, key = after
                line = lines.get(queue, ())
                i = bisect_left(line, key)
                lines[queue] = line[:i] + (key,) + line[i:]
        return replace(self, calls={**self.calls, call.sid: call}, lines=lines)
