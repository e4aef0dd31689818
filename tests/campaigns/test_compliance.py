"""The outbound compliance gate: plain functions, real numbers, no fixtures."""
from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from phonenumbers import geocoder
from phonenumbers import timezone as number_timezone

from campaigns.calling_zones import STATE_ZONES, state_for_zip, zones_for_zip
from campaigns.compliance import (
    TIME_BASED,
    Attempt,
    CampaignRules,
    CampaignSchedule,
    CampaignStatus,
    ContactHistory,
    DailyWindow,
    LeadFacts,
    SkipCode,
    count_reasons,
    may_dial_now,
)
from campaigns.state_rules import StateRule

NY = ZoneInfo("America/New_York")
EXTRACT = date(2025, 3, 1)
RUNNING = CampaignRules(CampaignStatus.RUNNING, requires_registry=False)  # registry has its own tests
CLEAN = ContactHistory()

MANHATTAN = "+12125551234"
MIAMI = "+13055551234"
PENSACOLA = "+18504325555"  # an exchange phonenumbers places in America/Chicago
ANCHORAGE = "+19075551234"
HONOLULU = "+18085551234"
PHOENIX = "+16025551234"
LONDON = "+442071234567"
UNASSIGNED = "+15555551234"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(zone: str, *args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone), fold=fold).astimezone(UTC)


def check(phone: str, now: datetime, campaign: CampaignRules = RUNNING,
          history: ContactHistory = CLEAN, **lead: object):
    return may_dial_now(LeadFacts(phone, **lead), campaign, history, now)


# --- calling window -------------------------------------------------------------------------------

def test_new_york_number_may_be_dialed_from_0800_until_just_before_2100_local():
    assert check(MANHATTAN, local("America/New_York", 2025, 6, 3, 8, 0)).allowed
    assert check(MANHATTAN, local("America/New_York", 2025, 6, 3, 20, 59, 59)).allowed
    early = check(MANHATTAN, local("America/New_York", 2025, 6, 3, 7, 59, 59))
    late = check(MANHATTAN, local("America/New_York", 2025, 6, 3, 21, 0))
    assert early.codes == late.codes == (SkipCode.OUTSIDE_WINDOW,)
    assert early.next_allowed_at == local("America/New_York", 2025, 6, 3, 8, 0)
    assert late.next_allowed_at == local("America/New_York", 2025, 6, 4, 8, 0)


def test_window_detail_names_the_zone_and_never_the_phone_number():
    verdict = check(MANHATTAN, local("America/New_York", 2025, 6, 3, 7, 15))
    detail = verdict.reasons[0].detail
    assert "07:15 in America/New_York" in detail
    assert "5551234" not in detail and "212" not in detail


def test_florida_number_stops_at_2000_and_gets_the_florida_window():
    verdict = check(MIAMI, local("America/New_York", 2025, 6, 3, 20, 0))
    assert verdict.codes == (SkipCode.OUTSIDE_WINDOW,)
    assert "FL rule" in verdict.reasons[0].detail
    assert verdict.window == DailyWindow(time(8), time(20))
    assert verdict.next_allowed_at == local("America/New_York", 2025, 6, 4, 8, 0)
    assert check(MIAMI, local("America/New_York", 2025, 6, 3, 19, 59)).allowed


def test_florida_address_applies_the_florida_rule_to_a_new_york_number():
    at = local("America/New_York", 2025, 6, 3, 20, 30)
    assert check(MANHATTAN, at).allowed
    assert check(MANHATTAN, at, state="FL").codes == (SkipCode.OUTSIDE_WINDOW,)


def test_pensacola_number_is_in_central_time():
    verdict = check(PENSACOLA, local("America/New_York", 2025, 6, 3, 8, 30))
    assert verdict.zones == ("America/Chicago",)
    assert verdict.codes == (SkipCode.OUTSIDE_WINDOW,)
    assert verdict.next_allowed_at == local("America/Chicago", 2025, 6, 3, 8, 0)
    # and the Florida 20:00 end is Central too
    assert check(PENSACOLA, local("America/Chicago", 2025, 6, 3, 19, 59)).allowed
    assert not check(PENSACOLA, local("America/Chicago", 2025, 6, 3, 20, 0)).allowed


def test_alaska_number_must_be_inside_the_window_in_anchorage_and_adak():
    at = local("America/Anchorage", 2025, 6, 3, 8, 30)  # 07:30 in Adak
    verdict = check(ANCHORAGE, at)
    assert verdict.zones == ("America/Adak", "America/Anchorage")
    assert "America/Adak" in verdict.reasons[0].detail
    assert "America/Anchorage" not in verdict.reasons[0].detail
    assert verdict.next_allowed_at == local("America/Adak", 2025, 6, 3, 8, 0)


def test_hawaii_keeps_the_same_utc_hours_all_year():
    for month in (1, 7):
        assert not check(HONOLULU, utc(2025, month, 15, 17, 59)).allowed
        assert check(HONOLULU, utc(2025, month, 15, 18, 0)).allowed


def test_phoenix_has_no_daylight_saving_time():
    for month in (1, 7):  # 08:00 MST is 15:00 UTC all year
        assert check(PHOENIX, utc(2025, month, 15, 14, 59)).codes == (SkipCode.OUTSIDE_WINDOW,)
        assert check(PHOENIX, utc(2025, month, 15, 15, 0)).allowed


def test_uk_number_uses_london_time_and_no_state_rule():
    assert check(LONDON, utc(2025, 6, 3, 19, 30)).allowed  # 20:30 BST
    verdict = check(LONDON, utc(2025, 6, 3, 20, 0))  # 21:00 BST
    assert verdict.codes == (SkipCode.OUTSIDE_WINDOW,)
    assert verdict.zones == ("Europe/London",)
    assert verdict.next_allowed_at == utc(2025, 6, 4, 7, 0)


@pytest.mark.parametrize("phone", [UNASSIGNED, "+1 999 999 9999", "not a number", "", "+44 20"])
def test_unassigned_or_unparseable_number_is_never_dialed(phone):
    verdict = check(phone, local("America/New_York", 2025, 6, 3, 12, 0))
    assert verdict.codes == (SkipCode.UNKNOWN_ZONE,)
    assert verdict.next_allowed_at is None


# --- daylight saving time -------------------------------------------------------------------------

def test_spring_forward_day_in_new_york_opens_at_0800_edt():
    assert not check(MANHATTAN, utc(2025, 3, 9, 11, 59)).allowed  # 07:59 EDT, 06:59 EST
    assert check(MANHATTAN, utc(2025, 3, 9, 12, 0)).allowed
    assert check(MANHATTAN, utc(2025, 3, 9, 6, 0)).next_allowed_at == utc(2025, 3, 9, 12, 0)


def test_fall_back_day_in_new_york_opens_at_0800_est():
    # 12:30 UTC is 07:30 EST: an offset taken from the day before (EDT) would say 08:30
    assert check(MANHATTAN, utc(2025, 11, 2, 12, 30)).codes == (SkipCode.OUTSIDE_WINDOW,)
    assert check(MANHATTAN, utc(2025, 11, 2, 5, 0)).next_allowed_at == utc(2025, 11, 2, 13, 0)


def test_window_starting_inside_the_spring_forward_gap_opens_when_the_clocks_jump():
    campaign = CampaignRules("running", window=DailyWindow(time(2, 30), time(21)),
                             registry_extract_date=EXTRACT)
    before = check(MANHATTAN, utc(2025, 3, 9, 6, 59, 59), campaign)  # 01:59:59 EST
    assert before.codes == (SkipCode.OUTSIDE_WINDOW,)
    assert before.next_allowed_at == utc(2025, 3, 9, 7, 0)  # 03:00 EDT
    assert check(MANHATTAN, utc(2025, 3, 9, 7, 0), campaign).allowed


def test_window_starting_at_an_ambiguous_time_follows_the_wall_clock_both_times():
    campaign = CampaignRules("running", window=DailyWindow(time(1, 30), time(21)),
                             requires_registry=False)
    assert check(MANHATTAN, local("America/New_York", 2025, 11, 2, 1, 30, fold=0), campaign).allowed
    back = check(MANHATTAN, utc(2025, 11, 2, 6, 0), campaign)  # 01:00 EST, after the fall back
    assert back.codes == (SkipCode.OUTSIDE_WINDOW,)
    assert back.next_allowed_at == local("America/New_York", 2025, 11, 2, 1, 30, fold=1)


# --- addresses and ported numbers -----------------------------------------------------------------

def test_ported_number_uses_every_zone_of_number_and_address():
    verdict = check(MANHATTAN, local("America/New_York", 2025, 6, 3, 10, 30), state="CA")
    assert verdict.zones == ("America/Los_Angeles", "America/New_York")
    assert verdict.codes == (SkipCode.OUTSIDE_WINDOW,)
    assert verdict.next_allowed_at == local("America/Los_Angeles", 2025, 6, 3, 8, 0)


def test_miami_number_of_a_pensacola_resident_waits_for_central_time():
    verdict = check(MIAMI, local("America/New_York", 2025, 6, 3, 8, 30), zip_code="32501")
    assert verdict.zones == ("America/Chicago", "America/New_York")
    assert verdict.codes == (SkipCode.OUTSIDE_WINDOW,)


def test_address_narrows_a_number_that_spans_many_zones():
    toll_free = "+18005551234"
    at = local("America/New_York", 2025, 6, 3, 12, 0)
    assert not check(toll_free, at).allowed
    verdict = check(toll_free, at, state="NY")
    assert verdict.allowed and verdict.zones == ("America/New_York",)


def test_zip_code_gives_the_state_and_its_rules():
    assert state_for_zip("33101") == "FL" and state_for_zip("10001-1234") == "NY"
    at = local("America/New_York", 2025, 6, 3, 20, 30)
    assert check(MANHATTAN, at, zip_code="33101").codes == (SkipCode.OUTSIDE_WINDOW,)
    assert check(MANHATTAN, at, zip_code="10001").allowed


# --- do not call and registry ---------------------------------------------------------------------

@pytest.mark.parametrize(("history", "code"), [
    (ContactHistory(on_internal_dnc=True), SkipCode.DNC_INTERNAL),
    (ContactHistory(on_registry_dnc=True), SkipCode.DNC_REGISTRY),
    (ContactHistory(has_complaint=True), SkipCode.DNC_COMPLAINT),
])
def test_do_not_call_facts_block_for_good(history, code):
    verdict = check(MANHATTAN, local("America/New_York", 2025, 3, 20, 12, 0), history=history)
    assert verdict.codes == (code,)
    assert verdict.next_allowed_at is None


def test_registry_extract_older_than_31_days_blocks_every_dial():
    campaign = CampaignRules("running", registry_extract_date=EXTRACT)
    noon = local("America/New_York", 2025, 4, 1, 12, 0)  # 31 days after 1 March
    assert check(MANHATTAN, noon, campaign).allowed
    stale = check(MANHATTAN, noon + timedelta(days=1), campaign)
    assert stale.codes == (SkipCode.REGISTRY_STALE,) and stale.next_allowed_at is None
    assert "32 days" in stale.reasons[0].detail


def test_missing_or_future_registry_extract_blocks_unless_not_required():
    noon = local("America/New_York", 2025, 3, 20, 12, 0)
    assert check(MANHATTAN, noon, CampaignRules("running")).codes == (SkipCode.REGISTRY_STALE,)
    future = CampaignRules("running", registry_extract_date=date(2025, 3, 25))
    assert check(MANHATTAN, noon, future).codes == (SkipCode.REGISTRY_STALE,)
    assert check(MANHATTAN, noon, CampaignRules("running", requires_registry=False)).allowed


# --- per-person cap -------------------------------------------------------------------------------

def test_third_call_in_24_hours_across_campaigns_reaches_the_cap():
    now = local("America/New_York", 2025, 3, 20, 12, 0)
    calls = (now - timedelta(hours=23), now - timedelta(hours=5), now - timedelta(hours=1))
    verdict = check(MANHATTAN, now, history=ContactHistory(person_attempts=calls))
    assert verdict.codes == (SkipCode.PERSON_CAP,)
    assert verdict.next_allowed_at == calls[0] + timedelta(hours=24)
    assert check(MANHATTAN, now, history=ContactHistory(person_attempts=calls[1:])).allowed


def test_florida_cap_is_stricter_than_a_lenient_campaign():
    lenient = CampaignRules("running", max_calls_per_person=10, registry_extract_date=EXTRACT)
    now = local("America/New_York", 2025, 3, 20, 12, 0)
    calls = tuple(now - timedelta(hours=hours) for hours in (20, 10, 2))
    history = ContactHistory(person_attempts=calls)
    assert check(MANHATTAN, now, lenient, history).allowed
    verdict = check(MIAMI, now, lenient, history)
    assert verdict.codes == (SkipCode.PERSON_CAP,) and "FL rule" in verdict.reasons[0].detail
    assert verdict.next_allowed_at == calls[0] + timedelta(hours=24)


def test_state_rules_are_data_that_can_be_replaced():
    strict = CampaignRules("running", registry_extract_date=EXTRACT,
                           state_rules={"NY": StateRule(DailyWindow(time(9), time(17)), 1)})
    assert not check(MANHATTAN, local("America/New_York", 2025, 3, 20, 8, 30), strict).allowed
    assert check(MIAMI, local("America/New_York", 2025, 3, 20, 20, 30), strict).allowed


# --- retries and callbacks ------------------------------------------------------------------------

def test_busy_lead_waits_for_the_retry_delay():
    now = local("America/New_York", 2025, 3, 20, 12, 0)
    history = ContactHistory(lead_attempts=(Attempt(now - timedelta(minutes=5), "busy"),))
    verdict = check(MANHATTAN, now, history=history)
    assert verdict.codes == (SkipCode.RETRY_DELAY,)
    assert verdict.next_allowed_at == now + timedelta(minutes=10)


def test_retry_delay_ending_after_hours_moves_to_the_next_morning():
    now = local("America/New_York", 2025, 3, 20, 20, 0)
    history = ContactHistory(lead_attempts=(Attempt(now, "machine"),))
    verdict = check(MANHATTAN, now, history=history)
    assert verdict.codes == (SkipCode.RETRY_DELAY,)
    assert verdict.next_allowed_at == local("America/New_York", 2025, 3, 21, 8, 0)


def test_outcome_retried_too_often_or_final_outcome_blocks_for_good():
    now = local("America/New_York", 2025, 3, 20, 12, 0)
    busy = tuple(Attempt(now - timedelta(days=day), "busy") for day in range(1, 6))
    verdict = check(MANHATTAN, now, history=ContactHistory(lead_attempts=busy))
    assert verdict.codes == (SkipCode.OUT_OF_ATTEMPTS,) and verdict.next_allowed_at is None
    done = (Attempt(now - timedelta(days=1), "not_interested"),)
    assert check(MANHATTAN, now, history=ContactHistory(lead_attempts=done)).codes == (
        SkipCode.FINAL_OUTCOME,)


def test_total_attempts_per_lead_are_capped():
    now = local("America/New_York", 2025, 3, 20, 12, 0)
    outcomes = ["busy", "no_answer", "machine", "failed"]
    attempts = tuple(Attempt(now - timedelta(days=day), outcomes[day % 4]) for day in range(1, 5))
    campaign = CampaignRules("running", max_attempts=4, registry_extract_date=EXTRACT)
    assert check(MANHATTAN, now, campaign, ContactHistory(lead_attempts=attempts)).codes == (
        SkipCode.OUT_OF_ATTEMPTS,)
    assert check(MANHATTAN, now, history=ContactHistory(lead_attempts=attempts)).allowed


def test_scheduled_callback_is_not_dialed_before_its_time():
    now = local("America/New_York", 2025, 3, 20, 12, 0)
    callback = now + timedelta(hours=2)
    verdict = check(MANHATTAN, now, callback_at=callback)
    assert verdict.codes == (SkipCode.CALLBACK_PENDING,)
    assert verdict.next_allowed_at == callback
    assert check(MANHATTAN, callback, callback_at=callback).allowed


# --- campaign -------------------------------------------------------------------------------------

WEEKDAYS = CampaignSchedule("America/New_York", frozenset(range(5)), DailyWindow(time(9), time(18)))


def test_outside_the_campaign_schedule_waits_for_monday_morning():
    campaign = CampaignRules("running", schedule=WEEKDAYS, registry_extract_date=EXTRACT)
    saturday = local("America/New_York", 2025, 3, 22, 12, 0)
    verdict = check(MANHATTAN, saturday, campaign)
    assert verdict.codes == (SkipCode.OUTSIDE_SCHEDULE,)
    assert verdict.next_allowed_at == local("America/New_York", 2025, 3, 24, 9, 0)
    assert check(MANHATTAN, verdict.next_allowed_at, campaign).allowed


def test_campaign_that_is_not_running_dials_nobody():
    verdict = check(MANHATTAN, local("America/New_York", 2025, 3, 20, 12, 0),
                    CampaignRules(CampaignStatus.PAUSED, registry_extract_date=EXTRACT))
    assert verdict.codes == (SkipCode.CAMPAIGN_NOT_RUNNING,) and verdict.next_allowed_at is None


def test_every_reason_is_reported_in_a_stable_order():
    now = utc(2025, 6, 1, 3, 0)  # Saturday night 23:00 in New York
    campaign = CampaignRules("paused", schedule=WEEKDAYS, registry_extract_date=date(2025, 1, 1))
    history = ContactHistory(
        lead_attempts=(Attempt(now - timedelta(minutes=1), "busy"),),
        person_attempts=(now - timedelta(hours=2), now - timedelta(hours=3)),
        on_internal_dnc=True, on_registry_dnc=True, has_complaint=True,
    )
    verdict = check(MANHATTAN, now, campaign, history, callback_at=now + timedelta(days=1))
    assert verdict.codes == (
        SkipCode.CAMPAIGN_NOT_RUNNING, SkipCode.REGISTRY_STALE, SkipCode.DNC_INTERNAL,
        SkipCode.DNC_REGISTRY, SkipCode.DNC_COMPLAINT, SkipCode.OUTSIDE_SCHEDULE,
        SkipCode.OUTSIDE_WINDOW, SkipCode.PERSON_CAP, SkipCode.RETRY_DELAY, SkipCode.CALLBACK_PENDING,
    )
    assert not verdict.allowed and verdict.next_allowed_at is None


def test_count_reasons_counts_each_lead_under_each_of_its_reasons():
    now = local("America/New_York", 2025, 3, 20, 7, 0)
    verdicts = [
        check(MANHATTAN, now),
        check(MANHATTAN, now, history=ContactHistory(on_internal_dnc=True)),
        check(UNASSIGNED, now),
        check(LONDON, now),
    ]
    counts = count_reasons(verdicts)
    assert counts["allowed"] == 1
    assert counts["outside_window"] == 2 and counts["dnc_internal"] == 1
    assert counts["unknown_zone"] == 1 and counts["person_cap"] == 0
    assert list(counts)[1:] == [code.value for code in SkipCode]


def test_naive_clock_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        check(MANHATTAN, datetime(2025, 3, 20, 12, 0))


# --- properties -----------------------------------------------------------------------------------

AREA_CODES = [201, 205, 206, 208, 212, 213, 239, 270, 303, 305, 307, 312, 352, 402, 404, 406, 410,
              415, 423, 432, 480, 503, 505, 512, 541, 561, 602, 605, 606, 615, 617, 620, 701, 702,
              713, 715, 727, 785, 786, 801, 808, 812, 813, 850, 904, 906, 907, 915, 918, 919, 928,
              931, 954, 970, 989]
STRICT_STATES = {"FL", "OK", "MD"}  # the shipped rules: 08:00-20:00

us_numbers = st.builds("+1{}{}{:04d}".format, st.sampled_from(AREA_CODES),
                       st.integers(200, 999), st.integers(0, 9999))
digit_strings = st.text("0123456789", min_size=0, max_size=14).map(lambda digits: "+" + digits)
phones = st.one_of(us_numbers, us_numbers, digit_strings, st.just(LONDON), st.just("+18005551234"))
states = st.one_of(st.none(), st.sampled_from(sorted(STATE_ZONES)))
zips = st.one_of(st.none(), st.integers(0, 99999).map("{:05d}".format))


def _dst_transitions() -> list[datetime]:
    moments = []
    for zone in ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles",
                 "America/Anchorage", "Europe/London"):
        for year in range(2023, 2028):
            probe = datetime(year, 1, 1, tzinfo=UTC)
            while probe.year == year:
                after = probe + timedelta(hours=1)
                if probe.astimezone(ZoneInfo(zone)).utcoffset() != after.astimezone(ZoneInfo(zone)).utcoffset():
                    moments.append(after)
                probe = after
    return moments


TRANSITIONS = _dst_transitions()
clocks = st.one_of(
    st.datetimes(datetime(2023, 1, 1), datetime(2027, 12, 31)).map(lambda moment: moment.replace(tzinfo=UTC)),
    st.builds(lambda moment, minutes: moment + timedelta(minutes=minutes),
              st.sampled_from(TRANSITIONS), st.integers(-36 * 60, 36 * 60)),
    # near the edges of the window somewhere in the US, where mistakes show
    st.builds(lambda day, hour, minute, zone: datetime.combine(day, time(hour, minute), ZoneInfo(zone)),
              st.dates(date(2023, 1, 1), date(2027, 12, 31)), st.sampled_from([6, 7, 8, 19, 20, 21, 22]),
              st.integers(0, 59), st.sampled_from(["America/New_York", "America/Chicago",
                                                   "America/Denver", "America/Los_Angeles"])),
)


def expected_zones(phone: str, state: str | None, zip_code: str | None) -> set[str] | None:
    """Recompute the candidate zones from phonenumbers and the data tables."""
    try:
        number = phonenumbers.parse(phone, "US")
    except phonenumbers.NumberParseException:
        return None
    zones = set(number_timezone.time_zones_for_number(number))
    if not phonenumbers.is_valid_number(number) or not zones or "Etc/Unknown" in zones:
        return None
    address = set(STATE_ZONES.get(state, ())) if state else set()
    if zip_code and zones_for_zip(zip_code):
        zip_zones = set(zones_for_zip(zip_code))
        address = zip_zones if not state or state_for_zip(zip_code) == state else address | zip_zones
    if not address:
        return zones
    return (zones & address) or (zones | address)


def expected_end(phone: str, state: str | None, zip_code: str | None) -> time:
    number = phonenumbers.parse(phone, "US")
    place = geocoder.description_for_number(number, "en")
    named = {"Florida": "FL", "Oklahoma": "OK", "Maryland": "MD"}
    number_state = named.get(place) or (place[-2:] if ", " in place else None)
    involved = {state, number_state, state_for_zip(zip_code) if zip_code else None}
    return time(20) if involved & STRICT_STATES else time(21)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(phones, states, zips, clocks, st.booleans(), st.booleans(), st.booleans())
def test_allowed_lead_is_inside_the_window_in_every_candidate_zone_and_not_on_any_list(
        phone, state, zip_code, now, internal, registry, complaint):
    history = ContactHistory(on_internal_dnc=internal, on_registry_dnc=registry, has_complaint=complaint)
    verdict = check(phone, now, CampaignRules("running", requires_registry=False), history,
                    state=state, zip_code=zip_code)
    zones = expected_zones(phone, state, zip_code)
    if zones is None:
        assert SkipCode.UNKNOWN_ZONE in verdict.codes and not verdict.allowed
        return
    assert set(verdict.zones) == zones
    if verdict.allowed:
        assert not (internal or registry or complaint)
        end = expected_end(phone, state, zip_code)
        for zone in zones:
            wall = now.astimezone(ZoneInfo(zone)).time()
            assert time(8) <= wall < end, (zone, wall)
    elif not (internal or registry or complaint):
        assert verdict.codes == (SkipCode.OUTSIDE_WINDOW,)


schedules = st.one_of(st.none(), st.builds(
    lambda zone, days, start, hours: CampaignSchedule(
        zone, frozenset(days), DailyWindow(time(start), time(min(start + hours, 23)))),
    st.sampled_from(["America/New_York", "America/Los_Angeles", "Europe/London", "America/Phoenix"]),
    st.sets(st.integers(0, 6), min_size=1), st.integers(0, 20), st.integers(1, 12),
))
outcomes = st.sampled_from(["busy", "no_answer", "machine", "failed", "callback", "abandoned"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(us_numbers, st.just(LONDON), st.just(ANCHORAGE)), states, clocks, schedules,
       st.lists(st.tuples(st.integers(0, 48 * 3600), outcomes), max_size=3),
       st.lists(st.integers(0, 30 * 3600), max_size=4), st.one_of(st.none(), st.integers(1, 5 * 86400)))
def test_next_allowed_at_is_the_first_moment_all_time_based_reasons_clear(
        phone, state, now, schedule, lead_ago, person_ago, callback_in):
    campaign = CampaignRules("running", schedule=schedule, requires_registry=False)
    history = ContactHistory(
        lead_attempts=tuple(Attempt(now - timedelta(seconds=ago), outcome) for ago, outcome in lead_ago),
        person_attempts=tuple(now - timedelta(seconds=ago) for ago in person_ago),
    )
    callback = now + timedelta(seconds=callback_in) if callback_in else None
    verdict = check(phone, now, campaign, history, state=state, callback_at=callback)
    if verdict.next_allowed_at is None:
        # only a permanent reason, or a window no moment within the horizon satisfies
        assert verdict.allowed or any(code not in TIME_BASED for code in verdict.codes) or (
            SkipCode.OUTSIDE_WINDOW in verdict.codes or SkipCode.OUTSIDE_SCHEDULE in verdict.codes)
        return
    assert not verdict.allowed and set(verdict.codes) <= TIME_BASED
    assert verdict.next_allowed_at > now
    later = check(phone, verdict.next_allowed_at, campaign, history, state=state, callback_at=callback)
    assert later.allowed, later.reasons
    just_before = check(phone, verdict.next_allowed_at - timedelta(seconds=1), campaign, history,
                        state=state, callback_at=callback)
    assert not just_before.allowed


STRICT_AREA_CODES = [239, 305, 321, 352, 386, 407, 561, 727, 772, 786, 813, 850, 863, 904, 941, 954,
                     405, 580, 918, 240, 301, 410, 443]
evenings = st.builds(lambda day, hour, minute, zone: datetime.combine(day, time(hour, minute), ZoneInfo(zone)),
                     st.dates(date(2023, 1, 1), date(2027, 12, 31)), st.sampled_from([19, 20, 21]),
                     st.integers(0, 59), st.sampled_from(["America/New_York", "America/Chicago"]))


@settings(max_examples=150, deadline=None)
@given(st.one_of(
    st.tuples(st.builds("+1{}{}{:04d}".format, st.sampled_from(STRICT_AREA_CODES), st.integers(200, 999),
                        st.integers(0, 9999)), st.none()),
    st.tuples(us_numbers, st.sampled_from(sorted(STRICT_STATES))),
), evenings)
def test_strict_state_number_or_address_is_never_dialed_at_or_after_2000_local(number_and_state, now):
    phone, state = number_and_state
    verdict = check(phone, now, state=state)
    if verdict.allowed:
        for zone in expected_zones(phone, state, None):
            assert now.astimezone(ZoneInfo(zone)).time() < time(20), zone


def test_the_gate_and_its_data_import_no_io_library_and_read_no_clock():
    import ast
    import pathlib

    forbidden = {"flask", "flask_socketio", "sqlalchemy", "redis", "rq", "twilio", "requests", "socketio", "hub",
                 "random"}
    root = pathlib.Path(__file__).resolve().parents[2] / "campaigns"
    for name in ("compliance.py", "calling_zones.py", "state_rules.py"):
        tree = ast.parse((root / name).read_text())
        for node in ast.walk(tree):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            for module in modules:
                assert module.split(".")[0] not in forbidden, f"{name} imports {module}"
            if isinstance(node, ast.Attribute) and node.attr in ("now", "utcnow", "today", "time"):
                assert not (isinstance(node.value, ast.Name) and node.value.id in ("datetime", "date", "time")), \
                    f"{name} reads the clock"


def test_the_wallboard_words_every_reason_code():
    import pathlib
    import re

    script = (pathlib.Path(__file__).resolve().parents[2] / "agent_ui" / "static" / "supervisor.js").read_text()
    words = re.search(r"const REASON_WORDS = \{(.*?)\};", script, re.S).group(1)
    assert {code.value for code in SkipCode} <= set(re.findall(r"(\w+):", words))
