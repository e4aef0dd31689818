"""One module computes every figure: its pure parts by hand, and the agreement test that the wallboard and the
report give the same numbers for today, on SQLite and PostgreSQL, equal to the ones worked out below."""
from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from campaigns.models import Campaign
from hub import metrics
from hub.admin import add_agent, add_queue
from hub.db import make_engine, make_session_factory, transaction
from hub.metrics import CallFacts, Tally, alerts, day_bounds, fate, forecast, handle_time
from hub.models import Agent, Call, Customer, Queue, TimelineEntry
from hub.snapshots import board
from routing.erlang import erlang_a, erlang_c

NOW = datetime(2024, 6, 5, 14, 7, tzinfo=UTC)
TODAY = datetime(2024, 6, 5, tzinfo=UTC)


def at(hh: int, mm: int, ss: int = 0, day: datetime = TODAY) -> datetime:
    return day.replace(hour=hh, minute=mm, second=ss)


def facts(**values) -> CallFacts:
    base = dict(queue_id=1, campaign_id=None, agent_id=None, target_s=20, created_at=at(9, 0))
    return CallFacts(**{**base, **values})


# ---------------------------------------------------------------- the pure parts


def test_a_call_counts_as_answered_abandoned_voicemail_or_after_hours_and_a_callback_only_once_connected():
    assert fate(facts(connected_at=at(9, 0, 10), routing_state="connected")) == "answered"
    assert fate(facts(ended_at=at(9, 1))) == "abandoned"
    assert fate(facts(outcome="voicemail")) == "voicemail"
    assert fate(facts(outcome="voicemail_after_hours")) == "after_hours"
    assert fate(facts(routing_state="waiting")) is None
    assert fate(facts(callback=True, ended_at=at(9, 1))) is None  # the customer did not pick up our callback
    assert fate(facts(outcome="repaired", ended_at=at(9, 1))) is None


def test_handle_time_is_talk_plus_wrap_up_to_the_disposition_capped_by_the_wrap_up_timer():
    call = facts(connected_at=at(9, 0, 10), ended_at=at(9, 2, 10), wrap_up_until=at(9, 3, 10))
    assert handle_time(call, NOW) == (120.0, 60.0)  # no disposition: the timer ended the wrap-up
    assert handle_time(replace(call, disposed_at=at(9, 2, 40)), NOW) == (120.0, 30.0)
    assert handle_time(replace(call, disposed_at=at(9, 9)), NOW) == (120.0, 60.0)
    assert handle_time(call, at(9, 3)) is None  # still wrapping up
    assert handle_time(facts(connected_at=at(9, 0, 10), routing_state="connected"), NOW) is None


def test_a_tally_of_hand_made_calls_gives_the_hand_computed_rates():
    tally = Tally()
    calls = [
        facts(connected_at=at(9, 0, 20), ended_at=at(9, 1, 20)),  # wait 20 s: in target (<=), talk 60
        facts(connected_at=at(9, 0, 21), ended_at=at(9, 2, 21)),  # wait 21 s: late, talk 120
        facts(ended_at=at(9, 0, 45)),  # abandoned after 45 s
        facts(outcome="voicemail", ended_at=at(9, 5)),
        facts(outcome="voicemail_after_hours", ended_at=at(9, 5)),
    ]
    for call in calls:
        tally.add(call, NOW)
    figures = tally.figures()
    assert figures == {"offered": 4, "answered": 2, "answered_in_target": 1, "abandoned": 1, "voicemail": 1,
                       "after_hours": 1, "service_level": 0.25, "abandon_rate": 0.25, "asa_s": 20.5, "handled": 2,
                       "aht_s": 90.0, "talk_s": 180, "wrap_up_s": 0}
    assert tally.waited_s == 20 + 21 + 45


def test_the_forecast_matches_the_erlang_c_check_vector_and_uses_erlang_a_once_callers_abandon():
    # 200 calls in the last hour = 50 per 15 minutes = 100 per 30 minutes; AHT 180 s, 14 agents, 20 s.
    result = forecast(200, 180.0, 14, 20, abandoned=0, waited_s=500.0)
    assert result["model"] == "erlang_c" and result["calls_expected"] == 50
    assert result["service_level"] == pytest.approx(0.88835, abs=1e-4)
    patient = forecast(200, 180.0, 14, 20, abandoned=5, waited_s=500.0)
    assert patient["model"] == "erlang_a" and patient["patience_s"] == 100.0
    assert patient["service_level"] == round(erlang_a(50, 900, 180, 14, 20, 100.0).service_level, 4)
    assert forecast(4, None, 3, 20, 0, 0)["service_level"] is None  # no call handled yet: no AHT, no forecast
    assert forecast(4, 120.0, 0, 20, 0, 0)["service_level"] == 0.0  # calls coming and nobody staffed


@pytest.mark.parametrize(("level", "expected"), [(0.95, None), (0.88, None), (0.879, "warning"), (0.8, "warning"),
                                                 (0.799, "breach"), (None, None)])
def test_a_queue_alerts_within_ten_percent_of_its_service_level_goal_and_breaches_below_it(level, expected):
    queue = {"name": "Support", "service_level_goal": 0.8, "service_level_today": level, "forecast": {}}
    found = alerts([queue], [])
    assert [a["level"] for a in found] == ([expected] if expected else [])
    if expected:
        assert found[0]["kind"] == "service_level" and "Support: service level today" in found[0]["message"]


@pytest.mark.parametrize(("rate", "expected"), [(0.02, None), (0.0269, None), (0.027, "warning"), (0.03, "warning"),
                                                (0.0301, "breach")])
def test_a_campaign_alerts_within_ten_percent_of_its_abandon_limit_and_breaches_above_it(rate, expected):
    campaign = {"name": "Solar", "abandon": {"target": 0.03, "today": {"rate": None},
                                              "rolling_30_days": {"rate": rate}}}
    found = alerts([], [campaign])
    assert [(a["level"], a["kind"]) for a in found] == ([(expected, "abandon_rolling_30_days")] if expected else [])


def test_the_forecast_alerts_too():
    queue = {"name": "Sales", "service_level_today": None, "forecast": {"service_level": 0.5}}
    assert [(a["level"], a["kind"]) for a in alerts([queue], [])] == [("breach", "forecast")]


def test_report_days_are_cut_at_local_midnight_and_last_23_or_25_hours_across_daylight_saving():
    new_york = ZoneInfo("America/New_York")
    spring = day_bounds(date(2024, 3, 9), date(2024, 3, 11), new_york)
    assert [(end - start) / timedelta(hours=1) for _, start, end in spring] == [24, 23, 24]
    assert spring[0][1] == datetime(2024, 3, 9, 5, tzinfo=UTC) and spring[2][1] == datetime(2024, 3, 11, 4, tzinfo=UTC)
    autumn = day_bounds(date(2024, 11, 3), date(2024, 11, 3), new_york)
    assert (autumn[0][2] - autumn[0][1]) == timedelta(hours=25)
    # Havana skips midnight when summer time starts: the day starts at the first local time that exists (01:00)
    havana = day_bounds(date(2024, 3, 10), date(2024, 3, 10), ZoneInfo("America/Havana"))
    assert havana[0][1] == datetime(2024, 3, 10, 5, tzinfo=UTC)
    assert all(a[2] == b[1] for a, b in zip(spring, spring[1:]))  # no gap, no overlap


def test_a_bad_report_range_or_time_zone_is_refused_with_a_reason():
    assert len(day_bounds(date(2023, 1, 1), date(2024, 1, 1), ZoneInfo("UTC"))) == 366
    with pytest.raises(metrics.ReportError, match="before it starts"):
        day_bounds(date(2024, 3, 9), date(2024, 3, 8), ZoneInfo("UTC"))
    with pytest.raises(metrics.ReportError, match="at most 366 days"):
        day_bounds(date(2023, 1, 1), date(2024, 1, 2), ZoneInfo("UTC"))  # 367 days
    with pytest.raises(metrics.ReportError, match="unknown time zone"):
        metrics.zone_named("Mars/Olympus_Mons")
    with pytest.raises(metrics.ReportError, match="unknown time zone"):
        metrics.zone_named("../../etc/passwd")


# ---------------------------------------------------------------- the agreement test, on both databases


def _call(session, sid: str, queue: Queue | None, customer: Customer, created: datetime, *, wait: float | None = None,
          talk: float | None = None, agent: Agent | None = None, ended_after: float | None = None,
          wrap_up_s: float | None = None, disposed_after: float | None = None, **extra) -> Call:
    """A customer call; `wait` to an agent joining, `talk` from then to hang-up, wrap-up times after hang-up."""
    connected = created + timedelta(seconds=wait) if wait is not None else None
    ended = (connected + timedelta(seconds=talk) if talk is not None
             else created + timedelta(seconds=ended_after) if ended_after is not None else None)
    values = dict(sid=sid, leg="customer", direction="inbound", from_number="+12125550001", to_number="+14155550100",
                  customer_id=customer.id, queue_id=queue.id if queue else None, agent_id=agent.id if agent else None,
                  status="completed" if ended else "in-progress", created_at=created, connected_at=connected,
                  ended_at=ended, routing_state="ended" if ended else "connected" if connected else "waiting",
                  wrap_up_until=ended + timedelta(seconds=wrap_up_s) if wrap_up_s is not None else None)
    values.update(extra)
    call = Call(**values)
    session.add(call)
    session.flush()
    if disposed_after is not None:
        session.add(TimelineEntry(customer_id=customer.id, kind="disposition", call_id=call.id,
                                  agent_id=call.agent_id, occurred_at=ended + timedelta(seconds=disposed_after),
                                  summary="Disposition: resolved"))
    return call


def build_known_day(sessions) -> None:
    """Two queues, three agents and the calls whose figures the tests below work out by hand."""
    with transaction(sessions) as s:
        support = add_queue(s, "Support", "+14155550100", {"support": 1})
        sales = add_queue(s, "Sales", "+14155550101", {"sales": 1})
        sales.service_level_s = 30
        ana = add_agent(s, "ana", "Ana", "password1", "agent", {"support": 1, "sales": 1})
        bob = add_agent(s, "bob", "Bob", "password1", "agent", {"support": 1})
        cy = add_agent(s, "cy", "Cy", "password1", "agent", {"support": 1})
        add_agent(s, "sue", "Sue", "password1", "supervisor")
        ana.presence, ana.work, ana.call_sid = "available", "on_call", "CA07"
        bob.presence, bob.work = "available", "idle"
        cy.presence, cy.break_reason = "break", "lunch"
        grace = Customer(name="Grace Hopper")
        s.add(grace)
        solar = Campaign(name="Solar", caller_id="+14155550100")
        s.add(solar)
        s.flush()
        # Support (target 20 s)
        _call(s, "CA01", support, grace, at(9, 0), wait=10, talk=120, agent=ana, wrap_up_s=60, disposed_after=30)
        _call(s, "CA02", support, grace, at(9, 30), wait=25, talk=200, agent=bob, wrap_up_s=60)  # late; timer
        _call(s, "CA03", support, grace, at(10, 0), ended_after=40)  # abandoned after 40 s
        _call(s, "CA04", support, grace, at(10, 5), ended_after=120, routing_outcome="voicemail")
        _call(s, "CA05", support, grace, at(11, 0), ended_after=30, routing_outcome="voicemail_after_hours")
        _call(s, "CA06", support, grace, at(13, 58))  # waiting now
        _call(s, "CA07", support, grace, at(13, 30), wait=6, agent=ana)  # talking now
        _call(s, "CA08", support, grace, at(23, 50, day=TODAY - timedelta(days=1)), ended_after=35)  # yesterday
        _call(s, "CA09", support, grace, at(12, 40), ended_after=50, callback=True)  # our callback went unanswered
        _call(s, "CA10", support, grace, at(12, 0), wait=15, talk=100, agent=bob, wrap_up_s=60, disposed_after=90)
        _call(s, "CA11", support, grace, at(2, 0), ended_after=30)  # abandoned at 22:00 the day before in New York
        # Sales (target 30 s); no wrap-up
        _call(s, "CA12", sales, grace, at(8, 0), wait=28, talk=60, agent=ana)
        # an outbound campaign call: ana's, in no queue
        _call(s, "CA13", None, grace, at(12, 30), wait=3, talk=45, agent=ana, wrap_up_s=30, disposed_after=10,
              campaign_id=solar.id, direction="outbound", disposition="qualified")


# Worked out by hand from build_known_day:
# Support today (UTC): offered CA01 CA02 CA03 CA04 CA07 CA10 CA11 = 7; answered CA01 CA02 CA07 CA10 = 4, in target
# (<= 20 s) CA01 (10) CA07 (6) CA10 (15) = 3; abandoned CA03 CA11; voicemail CA04; after hours CA05.
# ASA (10 + 25 + 6 + 15) / 4 = 14.0. Handled CA01 120 + 30, CA02 200 + 60 (timer), CA10 100 + 60 (late
# disposition capped by the timer): talk 420, wrap-up 150, AHT 570 / 3 = 190.0.
SUPPORT_TODAY = {"offered": 7, "answered": 4, "answered_in_target": 3, "abandoned": 2, "voicemail": 1,
                 "after_hours": 1, "service_level": 0.4286, "abandon_rate": 0.2857, "asa_s": 14.0, "handled": 3,
                 "aht_s": 190.0, "talk_s": 420, "wrap_up_s": 150}
SALES_TODAY = {"offered": 1, "answered": 1, "answered_in_target": 1, "abandoned": 0, "voicemail": 0,
               "after_hours": 0, "service_level": 1.0, "abandon_rate": 0.0, "asa_s": 28.0, "handled": 1,
               "aht_s": 60.0, "talk_s": 60, "wrap_up_s": 0}
# Agents: ana CA01 (150), CA07 (talking), CA12 (60), CA13 (45 + 10) -> 4 calls, AHT 265 / 3; bob CA02 (260),
# CA10 (160) -> 2 calls, AHT 210.0.
AGENTS_TODAY = {"ana": (4, 88.3), "bob": (2, 210.0), "cy": (0, None)}


def test_the_wallboard_and_the_report_agree_on_today_with_the_hand_computed_figures(database_url):
    engine = make_engine(database_url)
    sessions = make_session_factory(engine, check_routing_cache=True)
    try:
        build_known_day(sessions)
        with transaction(sessions) as session:
            wall = board(session, NOW)
            rep = metrics.report(session, NOW.date(), NOW.date(), ZoneInfo("UTC"), NOW)
    finally:
        engine.dispose()

    tiles = {q["name"]: q for q in wall["queues"]}
    rows = {q["queue"]: q for q in rep["queues"]}
    assert tiles["Support"]["today"] == SUPPORT_TODAY
    assert {k: rows["Support"][k] for k in SUPPORT_TODAY} == SUPPORT_TODAY
    assert tiles["Sales"]["today"] == SALES_TODAY
    assert {k: rows["Sales"][k] for k in SALES_TODAY} == SALES_TODAY
    support = tiles["Support"]
    assert (support["service_level_today"], support["answered_today"], support["abandoned_today"],
            support["overflowed_today"], support["after_hours_today"]) == (0.4286, 4, 2, 1, 1)
    assert (support["waiting"], support["longest_wait_s"]) == (1, 9 * 60)  # CA06 since 13:58
    assert (support["agents_available"], support["agents_on_call"], support["agents_break"],
            support["agents_staffed"]) == (1, 1, 1, 2)

    # both queues' calls summed make the report's one day
    day = rep["days"][0]
    assert day["day"] == "2024-06-05" and day["offered"] == 8 and day["answered_in_target"] == 4
    assert day["service_level"] == 0.5 and day["aht_s"] == round((570 + 60) / 4, 1)

    agents = {a["login"]: a for a in wall["agents"]}
    report_agents = {a["login"]: a for a in rep["agents"]}
    for login, (calls, aht) in AGENTS_TODAY.items():
        assert (agents[login]["calls_today"], agents[login]["aht_s"]) == (calls, aht)
        assert (report_agents[login]["calls"], report_agents[login]["aht_s"]) == (calls, aht)
    assert "sue" not in report_agents  # a supervisor with no calls is left out of the report

    # Erlang's forecast for Support: CA06 and CA07 arrived in the last hour (0.5 calls per 15 min), AHT 190 s,
    # ana and bob staffed; callers' patience (10 + 25 + 6 + 15 + 40 + 30) s waited / 2 abandons = 63 s.
    ahead = support["forecast"]
    assert (ahead["model"], ahead["calls_expected"], ahead["aht_s"], ahead["agents"], ahead["patience_s"]) == (
        "erlang_a", 0.5, 190.0, 2, 63.0)
    assert ahead["service_level"] == round(erlang_a(0.5, 900, 190.0, 2, 20, 63.0).service_level, 4)
    sales = tiles["Sales"]["forecast"]  # nobody called Sales in the last hour
    assert sales["model"] == "erlang_c" and sales["service_level"] == erlang_c(0, 900, 60.0, 1, 30).service_level

    assert [(a["level"], a["kind"], a["subject"]) for a in wall["alerts"]] == [("breach", "service_level", "Support")]

    # today's quarter hours: CA01 in 09:00-09:15, CA07 (in target) in 13:30-13:45; the abandon trend at the end
    quarters = {row["start"][11:16]: row for row in wall["day"]["intervals"]}
    assert len(wall["day"]["intervals"]) == 14 * 4 + 1
    assert quarters["09:00"]["answered"] == 1 and quarters["09:00"]["service_level"] == 1.0
    assert quarters["10:00"]["abandoned"] == 1 and quarters["10:00"]["voicemail"] == 1
    assert quarters["10:00"]["abandon_rate"] == 0.5
    assert wall["day"]["intervals"][-1]["abandon_rate_so_far"] == round(2 / 8, 4)


def test_the_report_cuts_days_at_the_viewers_midnight(database_url):
    engine = make_engine(database_url)
    sessions = make_session_factory(engine, check_routing_cache=True)
    try:
        build_known_day(sessions)
        with transaction(sessions) as session:
            rep = metrics.report(session, date(2024, 6, 4), date(2024, 6, 5), ZoneInfo("America/New_York"), NOW)
    finally:
        engine.dispose()
    june_4, june_5 = rep["days"]
    # New York's 4 June runs 04:00Z..04:00Z: yesterday's 23:50Z call and today's 02:00Z call fall in it
    assert (june_4["day"], june_4["offered"], june_4["abandoned"]) == ("2024-06-04", 2, 2)
    assert (june_5["day"], june_5["offered"], june_5["answered"]) == ("2024-06-05", 7, 5)
    assert rep["starts_at"] == "2024-06-04T04:00:00+00:00" and rep["ends_before"] == "2024-06-06T04:00:00+00:00"
    campaign = {c["campaign"]: c for c in rep["campaigns"]}["Solar"]
    assert (campaign["connected"], campaign["qualified"], campaign["aht_s"]) == (1, 1, 55.0)
