"""Every queue, agent and day figure Switchboard shows, computed one way for the wallboard and the reports.

Supervisors' first complaint about contact-centre tools is a wallboard and a report that disagree; here both
feed the same `Tally` from the same query, so they cannot. The definitions (docs/wallboard.md says them in
a supervisor's words):

- A call counts in the queue that held it last (an overflow moves it), on the day and in the 15-minute
  interval in which it arrived (`created_at`), and for the agent who answered it.
- Its fate: answered (an agent joined it: `connected_at`), abandoned (the caller hung up first), voicemail
  (sent there after waiting too long), after hours (arrived while the queue was closed), or none yet (still
  waiting). Callbacks count once connected, with the wait up to then; an unanswered callback and a call
  the sweeper repaired count nowhere.
- Offered = answered + abandoned + voicemail. Service level = answered within the queue's target / offered;
  abandon rate = abandoned / offered; ASA = mean wait of the answered calls.
- Handle time = talk (agent joined to hang-up, hold included) + wrap-up (hang-up to the disposition, at most
  until the wrap-up timer ran out). AHT = mean handle time of the calls whose handling is complete.
- The wallboard's "today" is the UTC day, like the campaigns' figures; reports cut days at the viewer's
  local midnight.
"""
from __future__ import annotations

import functools
import zoneinfo
from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns.ledger import answered_by_a_person
from campaigns.models import Campaign, DialAttempt
from hub.models import Agent, Call, Leg, Queue, TimelineEntry
from routing.erlang import erlang_a, erlang_c

SERVICE_LEVEL_GOAL = 0.80  # share of offered calls answered within the queue's target (the classic 80/20)
ALERT_MARGIN = 0.10  # warn when a figure is within 10 % (relative) of its goal or limit
INTERVAL = timedelta(minutes=15)  # charts and the forecast
FORECAST_LOOKBACK = timedelta(hours=1)  # arrivals over this window set the forecast's call rate
DEFAULT_TARGET_S = 20  # a campaign call has no queue: its answer speed is measured against this
MAX_REPORT_DAYS = 366
WAITING = ("waiting", "offered")


class ReportError(ValueError):
    """A report request that cannot be answered; the message says what to change."""


@dataclass(frozen=True)
class CallFacts:
    """What the figures need of one customer call."""

    queue_id: int | None
    campaign_id: int | None
    agent_id: int | None
    target_s: int
    created_at: datetime
    connected_at: datetime | None = None
    ended_at: datetime | None = None
    routing_state: str | None = "ended"
    outcome: str | None = None
    callback: bool = False
    wrap_up_until: datetime | None = None
    disposed_at: datetime | None = None
    disposition: str | None = None


def fate(call: CallFacts) -> str | None:
    """Return answered, abandoned, voicemail, after_hours, or None (not decided, or not offered)."""
    if call.connected_at is not None:
        return "answered"
    if call.outcome == "voicemail":
        return "voicemail"
    if call.outcome == "voicemail_after_hours":
        return "after_hours"
    if call.routing_state == "ended" and call.outcome is None and not call.callback:
        return "abandoned"
    return None


def handle_time(call: CallFacts, now: datetime) -> tuple[float, float] | None:
    """Return (talk, wrap-up) seconds once the call's handling is complete, else None."""
    if call.connected_at is None or call.ended_at is None:
        return None
    done = call.disposed_at or call.wrap_up_until or call.ended_at
    if call.wrap_up_until is not None:
        done = min(done, call.wrap_up_until)  # a late disposition does not stretch the wrap-up
    if done > now:
        return None  # still wrapping up
    return (max(0.0, (call.ended_at - call.connected_at).total_seconds()),
            max(0.0, (done - call.ended_at).total_seconds()))


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def _mean(total: float, count: int) -> float | None:
    return round(total / count, 1) if count else None


@dataclass
class Tally:
    """Counts and sums over a set of calls; `figures` turns them into the rates everyone reads."""

    offered: int = 0
    answered: int = 0
    in_target: int = 0
    abandoned: int = 0
    voicemail: int = 0
    after_hours: int = 0
    wait_s: float = 0.0  # answered calls' waits (ASA)
    waited_s: float = 0.0  # answered and abandoned calls' waits (the callers' patience)
    handled: int = 0
    talk_s: float = 0.0
    wrap_s: float = 0.0

    def add(self, call: CallFacts, now: datetime) -> None:
        """Count one call."""
        kind = fate(call)
        if kind == "after_hours":
            self.after_hours += 1
        if kind in (None, "after_hours"):
            return
        self.offered += 1
        if kind == "voicemail":
            self.voicemail += 1
        elif kind == "abandoned":
            self.abandoned += 1
            self.waited_s += max(0.0, ((call.ended_at or call.created_at) - call.created_at).total_seconds())
        else:
            wait = max(0.0, (call.connected_at - call.created_at).total_seconds())
            self.answered += 1
            self.in_target += wait <= call.target_s
            self.wait_s += wait
            self.waited_s += wait
            handled = handle_time(call, now)
            if handled is not None:
                self.handled += 1
                self.talk_s += handled[0]
                self.wrap_s += handled[1]

    def figures(self) -> dict[str, Any]:
        """Return the counts and rates, rounded the same way for every screen."""
        return {
            "offered": self.offered, "answered": self.answered, "answered_in_target": self.in_target,
            "abandoned": self.abandoned, "voicemail": self.voicemail, "after_hours": self.after_hours,
            "service_level": _ratio(self.in_target, self.offered), "abandon_rate": _ratio(self.abandoned, self.offered),
            "asa_s": _mean(self.wait_s, self.answered), "handled": self.handled,
            "aht_s": _mean(self.talk_s + self.wrap_s, self.handled),
            "talk_s": round(self.talk_s), "wrap_up_s": round(self.wrap_s),
        }


def forecast(arrivals: int, aht_s: float | None, agents: int, target_s: int, abandoned: int,
             waited_s: float) -> dict[str, Any]:
    """Forecast the next interval's service level with Erlang A (or C when nobody has abandoned yet).

    Args:
        arrivals: calls that reached the queue during the last FORECAST_LOOKBACK (after-hours ones excluded).
        aht_s: the queue's AHT today; None when no call has been handled yet (no forecast then).
        agents: agents staffed for the queue now (logged in and not on a break, whatever their work).
        target_s: the queue's answer-time target.
        abandoned: calls abandoned today; with `waited_s`, the callers' mean patience is
            waited_s / abandoned (the exponential estimate: time spent waiting by everyone over abandons).
        waited_s: seconds waited today by answered and abandoned callers.

    Returns:
        The inputs, the model used and the service level (None without an AHT).
    """
    calls = arrivals * (INTERVAL / FORECAST_LOOKBACK)
    patience = waited_s / abandoned if abandoned and waited_s > 0 else None
    result = {"calls_expected": round(calls, 2), "aht_s": aht_s, "agents": agents, "target_s": target_s,
              "patience_s": None, "model": None, "service_level": None}
    if not aht_s:
        return result
    seconds = INTERVAL.total_seconds()
    if patience is not None:
        try:
            level = erlang_a(calls, seconds, aht_s, agents, target_s, patience).service_level
            return {**result, "patience_s": round(patience, 1), "model": "erlang_a", "service_level": round(level, 4)}
        except ValueError:  # overloaded with very patient callers: Erlang C's answer (0 %) is as good
            pass
    level = erlang_c(calls, seconds, aht_s, agents, target_s).service_level
    return {**result, "model": "erlang_c", "service_level": round(level, 4)}


def _percent(value: float) -> str:
    return f"{value * 100:.1f}".removesuffix(".0") + "%"


def _goal_level(value: float | None, goal: float) -> str | None:
    if value is None:
        return None
    near = round(goal * (1 + ALERT_MARGIN), 9)  # rounded so 0.8 * 1.1 is 0.88, not 0.8800000000000001
    return "breach" if value < goal else "warning" if value < near else None


def _limit_level(value: float | None, limit: float) -> str | None:
    if value is None:
        return None
    near = round(limit * (1 - ALERT_MARGIN), 9)
    return "breach" if value > limit else "warning" if value >= near else None


def alerts(queues: Sequence[dict[str, Any]], campaigns: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return what is breaching or within ALERT_MARGIN of breaching: queue service levels (today and the
    forecast) against SERVICE_LEVEL_GOAL, campaign abandon rates (today and 30 days) against their limit."""
    found = []

    def add(level, kind, subject, what, value, target, words):
        if level is not None:
            relation = {"breach": f"{words[0]} the", "warning": f"within {_percent(ALERT_MARGIN)} of the"}[level]
            found.append({"level": level, "kind": kind, "subject": subject, "value": value, "target": target,
                          "message": f"{subject}: {what} is {_percent(value)}, {relation} {_percent(target)} "
                                     f"{words[1]}"})

    for q in queues:
        goal = q.get("service_level_goal", SERVICE_LEVEL_GOAL)
        today = q.get("service_level_today")
        add(_goal_level(today, goal), "service_level", q["name"], "service level today", today, goal,
            ("below", "goal"))
        ahead = (q.get("forecast") or {}).get("service_level")
        add(_goal_level(ahead, goal), "forecast", q["name"], "the forecast service level for the next 15 minutes",
            ahead, goal, ("below", "goal"))
    for c in campaigns:
        abandon = c.get("abandon") or {}
        limit = abandon.get("target")
        if limit is None:
            continue
        for key, what in (("today", "abandon rate today"), ("rolling_30_days", "abandon rate over 30 days")):
            rate = (abandon.get(key) or {}).get("rate")
            add(_limit_level(rate, limit), f"abandon_{key}", c["name"], what, rate, limit, ("above", "limit"))
    return found


# ---------------------------------------------------------------- loading


def _calls(session: Session, since: datetime, until: datetime | None = None) -> Iterator[CallFacts]:
    """Stream the customer calls that arrived in [since, until)."""
    # The disposition's time ends the wrap-up. Matching the customer too lets the (customer, time) index find it.
    disposed = (select(func.min(TimelineEntry.occurred_at))
                .where(TimelineEntry.customer_id == Call.customer_id, TimelineEntry.call_id == Call.id,
                       TimelineEntry.kind == "disposition")
                .correlate(Call).scalar_subquery())
    query = (select(Call.queue_id, Call.campaign_id, Call.agent_id,
                    func.coalesce(Queue.service_level_s, DEFAULT_TARGET_S), Call.created_at, Call.connected_at,
                    Call.ended_at, Call.routing_state, Call.routing_outcome, Call.callback, Call.wrap_up_until,
                    disposed, Call.disposition)
             .outerjoin(Queue, Queue.id == Call.queue_id)
             .where(Call.leg == Leg.CUSTOMER.value, Call.created_at >= since))
    if until is not None:
        query = query.where(Call.created_at < until)
    for row in session.execute(query.execution_options(yield_per=1000)):
        yield CallFacts(*row)


def _is_queue_call(call: CallFacts) -> bool:
    return call.queue_id is not None and call.campaign_id is None


# ---------------------------------------------------------------- the wallboard


def _skilled(agent: Agent, queue: Queue) -> bool:
    return all(agent.skill_levels.get(skill, 0) >= level for skill, level in queue.skill_levels.items())


def wallboard(session: Session, now: datetime, agents: Sequence[Agent], live: Sequence[Any]) -> dict[str, Any]:
    """Return the wallboard's figures: one row per queue, each agent's day, and today's 15-minute intervals.

    `live` are the customer calls in progress (a caller waiting since before midnight still counts as waiting):
    anything with a call's `queue_id`, `routing_state` and `created_at`.
    """
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    recent = now - FORECAST_LOOKBACK
    calls = list(_calls(session, min(day_start, recent)))
    today = [c for c in calls if c.created_at >= day_start]
    queues = []
    for queue in session.scalars(select(Queue).order_by(Queue.name)):
        tally = Tally()
        for call in today:
            if call.queue_id == queue.id and call.campaign_id is None:
                tally.add(call, now)
        day = tally.figures()
        arrivals = sum(1 for c in calls if c.queue_id == queue.id and c.campaign_id is None
                       and c.created_at >= recent and fate(c) != "after_hours")
        waiting = [c for c in live if c.queue_id == queue.id and c.routing_state in WAITING]
        skilled = [a for a in agents if _skilled(a, queue)]
        staffed = sum(1 for a in skilled if a.presence == "available")
        queues.append({
            "name": queue.name,
            "target_s": queue.service_level_s,
            "service_level_goal": SERVICE_LEVEL_GOAL,
            "waiting": len(waiting),
            "longest_wait_s": max((int((now - c.created_at).total_seconds()) for c in waiting), default=0),
            "agents_available": sum(1 for a in skilled if a.presence == "available" and a.work == "idle"),
            "agents_on_call": sum(1 for a in skilled if a.work in ("offered", "on_call")),
            "agents_wrap_up": sum(1 for a in skilled if a.work == "wrap_up"),
            "agents_break": sum(1 for a in skilled if a.presence == "break"),
            "agents_staffed": staffed,
            "answered_today": day["answered"],
            "abandoned_today": day["abandoned"],
            "overflowed_today": day["voicemail"],
            "after_hours_today": day["after_hours"],
            "service_level_today": day["service_level"],
            "today": day,
            "forecast": forecast(arrivals, day["aht_s"], staffed, queue.service_level_s, tally.abandoned,
                                 tally.waited_s),
        })
    return {"queues": queues, "agents": _agent_days(today, now), "day": _intervals(today, day_start, now)}


def _agent_days(calls: Sequence[CallFacts], now: datetime) -> dict[int, dict[str, Any]]:
    tallies: dict[int, Tally] = defaultdict(Tally)
    for call in calls:
        if call.agent_id is not None and call.connected_at is not None:
            tallies[call.agent_id].add(call, now)
    return {agent_id: tally.figures() for agent_id, tally in tallies.items()}


def _intervals(calls: Sequence[CallFacts], day_start: datetime, now: datetime) -> dict[str, Any]:
    """Queue calls per 15-minute interval since midnight, with the abandon rate so far at each interval's end."""
    count = int((now - day_start) / INTERVAL) + 1
    tallies = [Tally() for _ in range(count)]
    for call in calls:
        index = int((call.created_at - day_start) / INTERVAL)
        if _is_queue_call(call) and 0 <= index < count:
            tallies[index].add(call, now)
    rows, offered, abandoned = [], 0, 0
    for i, tally in enumerate(tallies):
        offered, abandoned = offered + tally.offered, abandoned + tally.abandoned
        figures = tally.figures()
        rows.append({"start": (day_start + i * INTERVAL).isoformat(), "offered": figures["offered"],
                     "answered": figures["answered"], "abandoned": figures["abandoned"],
                     "voicemail": figures["voicemail"], "service_level": figures["service_level"],
                     "abandon_rate": figures["abandon_rate"], "abandon_rate_so_far": _ratio(abandoned, offered)})
    return {"interval_minutes": int(INTERVAL.total_seconds() // 60), "intervals": rows}


# ---------------------------------------------------------------- reports


@functools.cache
def time_zone_names() -> tuple[str, ...]:
    """The IANA time zones a viewer may pick."""
    return tuple(sorted(zoneinfo.available_timezones()))


def zone_named(name: str) -> zoneinfo.ZoneInfo:
    """Return the time zone; ReportError for a name that is not an IANA zone."""
    if name not in time_zone_names():
        raise ReportError(f"unknown time zone {name[:64]!r}: use an IANA name such as Europe/Paris")
    return zoneinfo.ZoneInfo(name)


def day_bounds(first: date, last: date, zone: zoneinfo.ZoneInfo) -> list[tuple[date, datetime, datetime]]:
    """Return each local day from first to last with its UTC start and end, cut at local midnight.

    A day with a daylight-saving change lasts 23 or 25 hours. Where midnight itself is skipped, the day starts
    at the first local time that exists; where it repeats, at its first occurrence.
    """
    if last < first:
        raise ReportError(f"the range ends ({last}) before it starts ({first})")
    if (last - first).days >= MAX_REPORT_DAYS:
        raise ReportError(f"a report covers at most {MAX_REPORT_DAYS} days")
    days = [first + timedelta(days=i) for i in range((last - first).days + 2)]
    starts = [datetime.combine(d, time(), zone).astimezone(UTC) for d in days]
    return [(days[i], starts[i], starts[i + 1]) for i in range(len(days) - 1)]


REPORT_COLUMNS: dict[str, tuple[tuple[str, str, str], ...]] = {
    # (key, heading, kind): kind tells the page how to show the value; the CSV writes it as is
    "days": (("day", "Day", "text"), ("offered", "Offered", "count"), ("answered", "Answered", "count"),
             ("answered_in_target", "Answered in target", "count"), ("abandoned", "Abandoned", "count"),
             ("voicemail", "Voicemail", "count"), ("after_hours", "After hours", "count"),
             ("service_level", "Service level", "rate"), ("asa_s", "ASA (s)", "seconds"),
             ("aht_s", "AHT (s)", "seconds"), ("abandon_rate", "Abandon rate", "rate")),
    "queues": (("queue", "Queue", "text"), ("target_s", "Target (s)", "count"), ("offered", "Offered", "count"),
               ("answered", "Answered", "count"), ("answered_in_target", "Answered in target", "count"),
               ("abandoned", "Abandoned", "count"), ("voicemail", "Voicemail", "count"),
               ("after_hours", "After hours", "count"), ("service_level", "Service level", "rate"),
               ("asa_s", "ASA (s)", "seconds"), ("aht_s", "AHT (s)", "seconds"),
               ("abandon_rate", "Abandon rate", "rate")),
    "agents": (("agent", "Agent", "text"), ("login", "Login", "text"), ("calls", "Calls", "count"),
               ("handled", "Handled", "count"), ("talk_s", "Talk (s)", "count"), ("wrap_up_s", "Wrap-up (s)", "count"),
               ("aht_s", "AHT (s)", "seconds")),
    "campaigns": (("campaign", "Campaign", "text"), ("mode", "Mode", "text"), ("dials", "Dials", "count"),
                  ("live_answers", "Live answers", "count"), ("machines", "Machines", "count"),
                  ("abandoned", "Abandoned", "count"), ("abandon_rate", "Abandon rate", "rate"),
                  ("abandon_limit", "Abandon limit", "rate"), ("connected", "Connected to an agent", "count"),
                  ("qualified", "Qualified", "count"), ("aht_s", "AHT (s)", "seconds")),
}


def report(session: Session, first: date, last: date, zone: zoneinfo.ZoneInfo, now: datetime) -> dict[str, Any]:
    """Return the figures by day, queue, agent and campaign for the local days first..last in `zone`.

    Raises:
        ReportError: a range that ends before it starts or is longer than MAX_REPORT_DAYS.
    """
    bounds = day_bounds(first, last, zone)
    since, until = bounds[0][1], bounds[-1][2]
    starts = [start for _, start, _ in bounds]
    days = [Tally() for _ in bounds]
    queues: dict[int, Tally] = defaultdict(Tally)
    agents: dict[int, Tally] = defaultdict(Tally)
    campaigns: dict[int, Tally] = defaultdict(Tally)
    qualified: dict[int, int] = defaultdict(int)
    for call in _calls(session, since, until):
        if _is_queue_call(call):
            days[bisect_right(starts, call.created_at) - 1].add(call, now)
            queues[call.queue_id].add(call, now)
        if call.connected_at is not None and call.agent_id is not None:
            agents[call.agent_id].add(call, now)
        if call.connected_at is not None and call.campaign_id is not None:
            campaigns[call.campaign_id].add(call, now)
            qualified[call.campaign_id] += call.disposition == "qualified"
    day_rows = [{"day": day.isoformat(), **tally.figures()} for (day, _, _), tally in zip(bounds, days)]
    queue_rows = [{"queue": q.name, "target_s": q.service_level_s, **queues[q.id].figures()}
                  for q in session.scalars(select(Queue).order_by(Queue.name))]
    agent_rows = []
    for agent in session.scalars(select(Agent).order_by(Agent.name)):
        figures = agents[agent.id].figures()
        if figures["answered"] or agent.role == "agent":
            agent_rows.append({"agent": agent.name, "login": agent.login, "calls": figures["answered"],
                               **{k: figures[k] for k in ("handled", "talk_s", "wrap_up_s", "aht_s")}})
    return {
        "from": first.isoformat(), "to": last.isoformat(), "time_zone": zone.key,
        "starts_at": since.isoformat(), "ends_before": until.isoformat(),
        "days": day_rows, "queues": queue_rows, "agents": agent_rows,
        "campaigns": _campaign_rows(session, since, until, campaigns, qualified),
    }


def _campaign_rows(session: Session, since: datetime, until: datetime, calls: dict[int, Tally],
                   qualified: dict[int, int]) -> list[dict[str, Any]]:
    """Each campaign's dials and abandon ledger over the range (the ledger's own definition of a live answer)."""
    dialed = (DialAttempt.dialed_at >= since) & (DialAttempt.dialed_at < until)
    answered = (DialAttempt.answered_at >= since) & (DialAttempt.answered_at < until)
    person = answered_by_a_person()
    counts = {cid: rest for cid, *rest in session.execute(
        select(DialAttempt.campaign_id, func.count().filter(dialed), func.count().filter(answered & person),
               func.count().filter(answered & ~person),
               func.count().filter(answered & person & DialAttempt.abandoned.is_(True)))
        .where(dialed | answered).group_by(DialAttempt.campaign_id))}
    rows = []
    for campaign in session.scalars(select(Campaign).order_by(Campaign.name)):
        dials, live, machines, abandoned = counts.get(campaign.id, (0, 0, 0, 0))
        figures = calls[campaign.id].figures()
        rows.append({"campaign": campaign.name, "mode": campaign.mode, "dials": dials, "live_answers": live,
                     "machines": machines, "abandoned": abandoned, "abandon_rate": _ratio(abandoned, live),
                     "abandon_limit": campaign.abandon_target, "connected": figures["answered"],
                     "qualified": qualified[campaign.id], "aht_s": figures["aht_s"]})
    return rows
