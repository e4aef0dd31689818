"""The outbound compliance gate: may this lead be dialed now, and if not, every reason why.

Sans-IO: the caller loads the facts (lead, campaign rules, contact history, DNC flags) and passes the
current time; nothing here reads the clock, the database or the network. See docs/compliance.md.
"""
from __future__ import annotations

import math
from bisect import insort
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import geocoder
from phonenumbers import timezone as number_timezone

from campaigns.calling_zones import (
    STATE_ZONES,
    state_for_zip,
    state_from_geocode,
    zones_for_state,
    zones_for_zip,
)
from campaigns.state_rules import FEDERAL_WINDOW, STATE_RULES, DailyWindow, StateRule

__all__ = [
    "Attempt", "CampaignRules", "CampaignSchedule", "CampaignStatus", "ContactHistory", "DailyWindow",
    "LeadFacts", "Outcome", "RetryRule", "Skip", "SkipCode", "StateRule", "Verdict", "count_reasons",
    "may_dial_now",
]

# How far past the last "not before" moment the search for next_allowed_at looks; a week plus a day
# covers any weekly schedule.
SEARCH_HORIZON = timedelta(days=8)
_UNKNOWN_ZONE = "Etc/Unknown"


class SkipCode(StrEnum):
    """Why a lead may not be dialed now. Verdicts list reasons in this order."""

    CAMPAIGN_NOT_RUNNING = "campaign_not_running"
    REGISTRY_STALE = "registry_stale"
    UNKNOWN_ZONE = "unknown_zone"
    DNC_INTERNAL = "dnc_internal"
    DNC_REGISTRY = "dnc_registry"
    DNC_COMPLAINT = "dnc_complaint"
    FINAL_OUTCOME = "final_outcome"
    OUT_OF_ATTEMPTS = "out_of_attempts"
    OUTSIDE_SCHEDULE = "outside_schedule"
    OUTSIDE_WINDOW = "outside_window"
    PERSON_CAP = "person_cap"
    RETRY_DELAY = "retry_delay"
    CALLBACK_PENDING = "callback_pending"


# Reasons that clear by themselves as time passes; every other reason needs a change of facts.
TIME_BASED = frozenset({
    SkipCode.OUTSIDE_SCHEDULE, SkipCode.OUTSIDE_WINDOW, SkipCode.PERSON_CAP, SkipCode.RETRY_DELAY,
    SkipCode.CALLBACK_PENDING,
})
_ORDER = {code: index for index, code in enumerate(SkipCode)}


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    FINISHED = "finished"


class Outcome(StrEnum):
    """Outcomes of a dial attempt; only those with a RetryRule are retried."""

    BUSY = "busy"
    NO_ANSWER = "no_answer"
    MACHINE = "machine"
    FAILED = "failed"
    CALLBACK = "callback"
    ABANDONED = "abandoned"
    QUALIFIED = "qualified"
    NOT_INTERESTED = "not_interested"
    WRONG_NUMBER = "wrong_number"
    DO_NOT_CALL = "do_not_call"
    SALE = "sale"
    COMPLAINT = "complaint"


@dataclass(frozen=True)
class RetryRule:
    """Retry a lead whose last outcome is this one after `delay`, at most `max_attempts` times."""

    delay: timedelta
    max_attempts: int

    def __post_init__(self) -> None:
        if self.delay < timedelta(0) or self.max_attempts < 0:
            raise ValueError("retry delay and max_attempts must not be negative")


DEFAULT_RETRY_RULES: Mapping[str, RetryRule] = MappingProxyType({
    Outcome.BUSY: RetryRule(timedelta(minutes=15), 5),
    Outcome.NO_ANSWER: RetryRule(timedelta(hours=2), 6),
    Outcome.MACHINE: RetryRule(timedelta(hours=4), 4),
    Outcome.FAILED: RetryRule(timedelta(minutes=30), 3),
    Outcome.CALLBACK: RetryRule(timedelta(0), 3),
    Outcome.ABANDONED: RetryRule(timedelta(hours=4), 2),
})


@dataclass(frozen=True)
class CampaignSchedule:
    """Days of the week (0 = Monday) and hours, in the campaign's own time zone."""

    zone: str
    days: frozenset[int]
    hours: DailyWindow

    def __post_init__(self) -> None:
        ZoneInfo(self.zone)  # fail when the rules are built, not while dialing
        if not self.days <= frozenset(range(7)):
            raise ValueError("schedule days are 0 (Monday) to 6 (Sunday)")


@dataclass(frozen=True)
class CampaignRules:
    """The campaign's side of the gate; every default is the compliant one."""

    status: CampaignStatus | str
    schedule: CampaignSchedule | None = None
    window: DailyWindow = FEDERAL_WINDOW
    max_calls_per_person: int = 3
    person_cap_period: timedelta = timedelta(hours=24)
    retry_rules: Mapping[str, RetryRule] = field(default_factory=lambda: DEFAULT_RETRY_RULES)
    max_attempts: int = 10
    requires_registry: bool = True
    registry_extract_date: date | None = None
    registry_max_age_days: int = 31
    state_rules: Mapping[str, StateRule] = field(default_factory=lambda: MappingProxyType(STATE_RULES))

    def __post_init__(self) -> None:
        if self.max_calls_per_person < 1 or self.person_cap_period <= timedelta(0):
            raise ValueError("the per-person cap needs at least 1 call over a positive period")
        if any(rule.max_calls is not None and rule.max_calls < 1 for rule in self.state_rules.values()):
            raise ValueError("a state's max_calls must be at least 1")


@dataclass(frozen=True)
class LeadFacts:
    """The lead: its number (E.164, or national for `default_region`), address and callback."""

    phone: str
    state: str | None = None
    zip_code: str | None = None
    callback_at: datetime | None = None
    default_region: str = "US"


@dataclass(frozen=True)
class Attempt:
    """One dial attempt of this lead in this campaign."""

    at: datetime
    outcome: Outcome | str


@dataclass(frozen=True)
class ContactHistory:
    """What is known about the person: attempts and do-not-call facts.

    `person_attempts` holds every dial to this person or number across all campaigns (this lead's
    attempts are added to it, so listing them twice does no harm).
    """

    lead_attempts: tuple[Attempt, ...] = ()
    person_attempts: tuple[datetime, ...] = ()
    on_internal_dnc: bool = False
    on_registry_dnc: bool = False
    has_complaint: bool = False


@dataclass(frozen=True)
class Skip:
    """One reason not to dial: a stable machine code and a detail for people (no personal data)."""

    code: SkipCode
    detail: str


@dataclass(frozen=True)
class Verdict:
    """The gate's answer.

    `next_allowed_at` is the earliest moment at which every time-based reason would clear if nothing
    else changes; None when the lead is allowed now, when a reason needs a change of facts (DNC,
    attempts, zone, registry, campaign status), or when no moment within SEARCH_HORIZON fits.
    """

    allowed: bool
    reasons: tuple[Skip, ...]
    next_allowed_at: datetime | None
    zones: tuple[str, ...] = ()
    window: DailyWindow | None = None

    @property
    def codes(self) -> tuple[SkipCode, ...]:
        """Return the reason codes, in order."""
        return tuple(skip.code for skip in self.reasons)


@dataclass(frozen=True)
class _Clock:
    """The wall-clock constraints that make up the allowed set of instants."""

    zones: tuple[ZoneInfo, ...]
    window: tuple[time, time]  # may be empty (start >= end) when rules conflict
    schedule: CampaignSchedule | None

    def window_misses(self, at: datetime) -> list[tuple[str, time]]:
        start, end = self.window
        misses = []
        for zone in self.zones:
            local = at.astimezone(zone).time().replace(tzinfo=None)
            if not start <= local < end:
                misses.append((zone.key, local))
        return misses

    def schedule_ok(self, at: datetime) -> bool:
        if self.schedule is None:
            return True
        local = at.astimezone(ZoneInfo(self.schedule.zone))
        return local.weekday() in self.schedule.days and self.schedule.hours.contains(
            local.time().replace(tzinfo=None))

    def ok(self, at: datetime) -> bool:
        return self.schedule_ok(at) and not self.window_misses(at)


def may_dial_now(lead: LeadFacts, campaign: CampaignRules, history: ContactHistory,
                 now: datetime) -> Verdict:
    """Decide whether the lead may be dialed at `now`, giving every reason when not.

    Args:
        lead: the number, address and scheduled callback of the lead.
        campaign: the campaign's status, schedule, window, caps, retry rules and registry facts.
        history: this lead's attempts, the person's attempts across campaigns, and DNC facts.
        now: the current moment, timezone-aware.

    Returns:
        A Verdict with all reasons in SkipCode order and, when only time-based reasons apply, the
        earliest moment they would all clear.

    Raises:
        ValueError: `now`, an attempt time or the callback time is naive.
    """
    now = _utc(now, "now")
    skips: list[Skip] = []
    not_before: list[datetime] = []

    if campaign.status != CampaignStatus.RUNNING:
        skips.append(Skip(SkipCode.CAMPAIGN_NOT_RUNNING, f"campaign status is {campaign.status}"))
    skips.extend(_registry_skips(campaign, now))

    zone_names, number_state, zone_problem = _candidate_zones(lead)
    zones: tuple[ZoneInfo, ...] = ()
    if zone_problem is None:
        try:
            zones = tuple(ZoneInfo(name) for name in zone_names)
        except (ZoneInfoNotFoundError, ValueError):
            zone_problem = "a time zone of the number is not in the zone database"
    if zone_problem is not None:
        skips.append(Skip(SkipCode.UNKNOWN_ZONE, zone_problem))

    if history.on_internal_dnc:
        skips.append(Skip(SkipCode.DNC_INTERNAL, "the person is on the internal do-not-call list"))
    if history.on_registry_dnc:
        skips.append(Skip(SkipCode.DNC_REGISTRY, "the number is on the do-not-call registry extract"))
    if history.has_complaint:
        skips.append(Skip(SkipCode.DNC_COMPLAINT, "the person has made a complaint"))

    skips.extend(_attempt_skips(lead, campaign, history, now, not_before))

    rules = _applicable_state_rules(lead, number_state, campaign.state_rules)
    window = _narrowed_window(campaign.window, rules)
    skips.extend(_cap_skips(campaign, rules, history, lead, now, not_before))

    clock = _Clock(zones, window, campaign.schedule)
    if not clock.schedule_ok(now):
        skips.append(Skip(SkipCode.OUTSIDE_SCHEDULE, _schedule_detail(campaign.schedule, now)))
    if zones:
        misses = clock.window_misses(now)
        if misses:
            skips.append(Skip(SkipCode.OUTSIDE_WINDOW, _window_detail(window, rules, misses)))

    skips.sort(key=lambda skip: _ORDER[skip.code])
    next_allowed_at = None
    if skips and all(skip.code in TIME_BASED for skip in skips):
        next_allowed_at = _earliest_clear(clock, max([now, *not_before]))
    effective = DailyWindow(*window) if window[0] < window[1] else None
    return Verdict(not skips, tuple(skips), next_allowed_at, zone_names, effective)


def count_reasons(verdicts: Iterable[Verdict]) -> dict[str, int]:
    """Count leads per reason code (a lead counts once under each of its reasons), plus "allowed".

    Every code appears, in SkipCode order, so that screens show the same rows every time.
    """
    counts = {"allowed": 0, **{code.value: 0 for code in SkipCode}}
    for verdict in verdicts:
        if verdict.allowed:
            counts["allowed"] += 1
        for code in {skip.code for skip in verdict.reasons}:
            counts[code.value] += 1
    return counts


def _utc(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware")
    return moment.astimezone(UTC)


def _registry_skips(campaign: CampaignRules, now: datetime) -> list[Skip]:
    if not campaign.requires_registry:
        return []
    extract = campaign.registry_extract_date
    if extract is None:
        return [Skip(SkipCode.REGISTRY_STALE, "no do-not-call registry extract is loaded")]
    age = (now.date() - extract).days
    if age < 0:
        return [Skip(SkipCode.REGISTRY_STALE, f"the registry extract is dated in the future ({extract})")]
    if age > campaign.registry_max_age_days:
        return [Skip(SkipCode.REGISTRY_STALE, f"the registry extract of {extract} is {age} days old "
                                              f"(at most {campaign.registry_max_age_days})")]
    return []


def _candidate_zones(lead: LeadFacts) -> tuple[tuple[str, ...], str | None, str | None]:
    """Return (candidate zone names, the number's state, problem) for the lead."""
    try:
        number = phonenumbers.parse(lead.phone, lead.default_region)
    except phonenumbers.NumberParseException:
        return (), None, "the number cannot be parsed"
    if not phonenumbers.is_valid_number(number):
        return (), None, "the number is not a valid assigned number"
    number_zones = frozenset(number_timezone.time_zones_for_number(number))
    if not number_zones or _UNKNOWN_ZONE in number_zones:
        return (), None, "no time zone is known for the number"
    number_state = None
    if number.country_code == 1:
        number_state = state_from_geocode(geocoder.description_for_number(number, "en"))

    address_zones = _address_zones(lead)
    if not address_zones:
        zones = number_zones
    else:
        # Both sources agree on some zones: the person is most likely there. If they share none
        # (ported number, the person moved), the person could be in any of them.
        zones = (number_zones & address_zones) or (number_zones | address_zones)
    return tuple(sorted(zones)), number_state, None


def _address_zones(lead: LeadFacts) -> frozenset[str]:
    state_zones = zones_for_state(lead.state) if lead.state else frozenset()
    if not lead.zip_code:
        return state_zones
    zip_zones = zones_for_zip(lead.zip_code)
    zip_state = state_for_zip(lead.zip_code)
    if lead.state and zip_state and zip_state != lead.state.strip().upper():
        return state_zones | zip_zones  # the address contradicts itself: keep both
    return zip_zones or state_zones


def _address_states(lead: LeadFacts) -> set[str]:
    states = set()
    if lead.state and lead.state.strip().upper() in STATE_ZONES:
        states.add(lead.state.strip().upper())
    if lead.zip_code and (zip_state := state_for_zip(lead.zip_code)):
        states.add(zip_state)
    return states


def _applicable_state_rules(lead: LeadFacts, number_state: str | None,
                            table: Mapping[str, StateRule]) -> dict[str, StateRule]:
    # The number's state counts even when an address is known: Florida, for one, presumes that a
    # call to a Florida area code reaches a Florida resident.
    states = _address_states(lead) | ({number_state} if number_state else set())
    return {state: table[state] for state in sorted(states) if state in table}


def _narrowed_window(window: DailyWindow, rules: Mapping[str, StateRule]) -> tuple[time, time]:
    start, end = window.start, window.end
    for rule in rules.values():
        if rule.window is not None:
            start, end = max(start, rule.window.start), min(end, rule.window.end)
    return start, end


def _attempt_skips(lead: LeadFacts, campaign: CampaignRules, history: ContactHistory,
                   now: datetime, not_before: list[datetime]) -> list[Skip]:
    skips = []
    attempts = sorted(history.lead_attempts, key=lambda attempt: _utc(attempt.at, "attempt time"))
    if len(attempts) >= campaign.max_attempts:
        skips.append(Skip(SkipCode.OUT_OF_ATTEMPTS,
                          f"{len(attempts)} attempts made, the campaign allows {campaign.max_attempts}"))
    if attempts:
        last = attempts[-1]
        rule = campaign.retry_rules.get(last.outcome)
        if rule is None:
            skips.append(Skip(SkipCode.FINAL_OUTCOME, f"last outcome {last.outcome} is not retried"))
        else:
            same = sum(1 for attempt in attempts if attempt.outcome == last.outcome)
            if same >= rule.max_attempts:
                skips.append(Skip(SkipCode.OUT_OF_ATTEMPTS, f"{same} attempts ended {last.outcome}, "
                                                            f"at most {rule.max_attempts} are retried"))
            retry_at = _utc(last.at, "attempt time") + rule.delay
            if now < retry_at:
                not_before.append(retry_at)
                skips.append(Skip(SkipCode.RETRY_DELAY, f"last outcome {last.outcome}: retry not "
                                                        f"before {retry_at:%Y-%m-%d %H:%M:%S} UTC"))
    if lead.callback_at is not None:
        callback_at = _utc(lead.callback_at, "callback_at")
        if now < callback_at:
            not_before.append(callback_at)
            skips.append(Skip(SkipCode.CALLBACK_PENDING,
                              f"callback scheduled for {callback_at:%Y-%m-%d %H:%M:%S} UTC"))
    return skips


def _cap_skips(campaign: CampaignRules, rules: Mapping[str, StateRule], history: ContactHistory,
               lead: LeadFacts, now: datetime, not_before: list[datetime]) -> list[Skip]:
    caps = [(campaign.max_calls_per_person, campaign.person_cap_period, "campaign")]
    caps += [(rule.max_calls, rule.per, f"{state} rule") for state, rule in rules.items()
             if rule.max_calls is not None]
    attempts: list[datetime] = []
    for moment in {*history.person_attempts, *(attempt.at for attempt in history.lead_attempts)}:
        insort(attempts, _utc(moment, "attempt time"))
    attempts.reverse()  # most recent first
    worst: tuple[datetime, int, timedelta, str] | None = None
    for limit, period, source in caps:
        recent = [moment for moment in attempts if moment > now - period]
        if len(recent) >= limit:
            clears_at = recent[limit - 1] + period  # when all but limit-1 have aged out
            if worst is None or clears_at > worst[0]:
                worst = (clears_at, limit, period, source)
    if worst is None:
        return []
    clears_at, limit, period, source = worst
    not_before.append(clears_at)
    hours = period / timedelta(hours=1)
    return [Skip(SkipCode.PERSON_CAP, f"{limit} calls per {hours:g} h reached ({source}); "
                                      f"clears at {clears_at:%Y-%m-%d %H:%M:%S} UTC")]


def _schedule_detail(schedule: CampaignSchedule | None, now: datetime) -> str:
    assert schedule is not None
    local = now.astimezone(ZoneInfo(schedule.zone))
    days = ",".join("Mon Tue Wed Thu Fri Sat Sun".split()[day] for day in sorted(schedule.days))
    return (f"{local:%a %H:%M} in {schedule.zone} is outside the campaign schedule "
            f"{days or 'no days'} {schedule.hours}")


def _window_detail(window: tuple[time, time], rules: Mapping[str, StateRule],
                   misses: list[tuple[str, time]]) -> str:
    start, end = window
    if start >= end:
        return "the applicable rules leave no calling hours"
    where = ", ".join(f"{local:%H:%M} in {zone}" for zone, local in misses)
    source = f" ({', '.join(rules)} rule)" if any(r.window for r in rules.values()) else ""
    return f"local time {where} is outside {start:%H:%M}-{end:%H:%M}{source}"


def _earliest_clear(clock: _Clock, start: datetime) -> datetime | None:
    """Return the first instant at or after `start` when window and schedule both allow a call.

    The allowed set is a finite union of intervals closed on the left; every left end is a moment
    where some zone's wall clock reaches a start time (either fold) or a zone changes its offset.
    Trying those moments in order, with the same predicate as the gate, finds the earliest one.
    """
    if clock.window[0] >= clock.window[1] or (clock.schedule and not clock.schedule.days):
        return None
    end = start + SEARCH_HORIZON
    starts: list[tuple[ZoneInfo, time]] = [(zone, clock.window[0]) for zone in clock.zones]
    if clock.schedule is not None:
        starts.append((ZoneInfo(clock.schedule.zone), clock.schedule.hours.start))
    candidates = {start}
    for zone, wall in starts:
        first_day = start.astimezone(zone).date() - timedelta(days=1)
        for offset in range(SEARCH_HORIZON.days + 2):
            for fold in (0, 1):
                day = first_day + timedelta(days=offset)
                local = datetime.combine(day, wall, zone).replace(fold=fold)
                candidates.add(local.astimezone(UTC))
        candidates.update(_offset_changes(zone, start, end))
    for candidate in sorted(moment for moment in candidates if start <= moment <= end):
        if clock.ok(candidate):
            return candidate
    return None


def _offset_changes(zone: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """Return the first second of each new UTC offset of `zone` within [start, end]."""
    def offset_at(second: int) -> timedelta | None:
        return datetime.fromtimestamp(second, zone).utcoffset()

    changes = []
    low, stop = math.floor(start.timestamp()), math.ceil(end.timestamp())
    while low < stop:
        high = min(low + 3600, stop)
        if offset_at(high) != offset_at(low):
            first, last = low, high  # offset_at(first) is the old offset, offset_at(last) the new
            while last - first > 1:
                middle = (first + last) // 2
                if offset_at(middle) == offset_at(first):
                    first = middle
                else:
                    last = middle
            changes.append(datetime.fromtimestamp(last, UTC))
        low = high
    return changes
