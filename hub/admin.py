"""Admin operations shared by the CLI and the demo: agents and queues."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.auth import DEACTIVATED, hash_password
from hub.errors import FlowError
from hub.models import Agent, AgentSkill, Queue, QueueSkill, Role
from hub.phone import InvalidNumber, to_e164


def parse_skills(text: str) -> dict[str, int]:
    """Read 'sales:3,support' as {'sales': 3, 'support': 1}."""
    skills: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, level = part.partition(":")
        try:
            skills[name.strip()] = int(level) if level else 1
        except ValueError:
            raise FlowError(f"skill level must be a number in {part!r}", 400) from None
    return skills


def add_agent(session: Session, login: str, name: str, password: str, role: str = "agent",
              skills: dict[str, int] | None = None, team: str | None = None, simulated: bool = False) -> Agent:
    """Create an agent (offline until they log in and go available)."""
    if role not in {r.value for r in Role}:
        raise FlowError(f"role must be agent, supervisor or admin, not {role!r}", 400)
    if len(password) < 8:
        raise FlowError("the password needs at least 8 characters", 400)
    if session.scalar(select(Agent).where(Agent.login == login)):
        raise FlowError(f"an agent with login {login!r} exists already")
    agent = Agent(login=login, name=name, password_hash=hash_password(password), role=role, team=team,
                  simulated=simulated, skills=[AgentSkill(skill=k, level=v) for k, v in (skills or {}).items()])
    session.add(agent)
    session.flush()
    return agent


def _agent_by_login(session: Session, login: str) -> Agent:
    agent = session.scalar(select(Agent).where(Agent.login == login))
    if agent is None:
        raise FlowError(f"no agent has the login {login!r}", 404)
    return agent


def change_role(session: Session, login: str, role: str) -> Agent:
    """Give an agent another role (a deactivated agent comes back with it). Cut their sockets afterwards."""
    if role not in {r.value for r in Role}:
        raise FlowError(f"role must be agent, supervisor or admin, not {role!r}", 400)
    agent = _agent_by_login(session, login)
    agent.role = role
    return agent


def deactivate(session: Session, login: str) -> Agent:
    """Take every access away from an agent: login, API token and open sessions. Their calls stay on record;
    cut their sockets afterwards (their console's closing then logs them off after the grace period)."""
    agent = _agent_by_login(session, login)
    agent.role = DEACTIVATED
    agent.api_token_hash = None
    return agent


DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def parse_hours(timezone: str, spans: list[str]) -> dict:
    """Read ['mon-fri 08:00-18:00', 'sat 10:00-14:00'] in `timezone` as stored business hours."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise FlowError(f"unknown time zone {timezone!r} (use a name such as America/New_York)", 400) from None
    days: dict[str, list[str]] = {}
    for span in spans:
        try:
            which, hours = span.lower().split()
            start, end = hours.split("-")
            first, _, last = which.partition("-")
            a, b = DAYS.index(first), DAYS.index(last or first)
            _ = time_of(start), time_of(end)
        except ValueError:
            raise FlowError(f"opening hours must look like 'mon-fri 08:00-18:00', not {span!r}", 400) from None
        for day in range(a, b + 1):
            days[str(day)] = [start, end]
    return {"timezone": timezone, "days": days}


def time_of(text: str):
    from datetime import time

    return time.fromisoformat(text)


def parse_diversion(text: str | None) -> tuple[str | None, str | None]:
    """Read 'voicemail', 'callback' or 'queue:Sales' as (action, queue)."""
    if not text:
        return None, None
    action, _, queue = text.partition(":")
    if action not in ("voicemail", "callback", "queue") or (action == "queue") != bool(queue):
        raise FlowError(f"a diversion is 'voicemail', 'callback' or 'queue:NAME', not {text!r}", 400)
    return action, queue or None


def parse_escalation(steps: list[str]) -> list[dict]:
    """Read ['30:support:1,sales:1'] (after seconds : skills) as escalation steps."""
    parsed = []
    for step in steps:
        after, _, skills = step.partition(":")
        if not after.isdigit() or not skills:
            raise FlowError(f"an escalation step looks like '30:support:1', not {step!r}", 400)
        parsed.append({"after_s": int(after), "skills": parse_skills(skills)})
    return sorted(parsed, key=lambda s: s["after_s"])


def configure_queue(queue: Queue, *, strategy: str | None = None, preferred_window_s: int | None = None,
                    escalation: list[dict] | None = None, max_wait_s: int | None = None,
                    overflow: str | None = None, hours: dict | None = None, after_hours: str | None = None,
                    service_level_s: int | None = None) -> Queue:
    """Set a queue's routing rules; options left as None keep their value."""
    if strategy is not None:
        if strategy not in ("longest_idle", "fewest_calls", "highest_skill", "round_robin"):
            raise FlowError("strategy must be longest_idle, fewest_calls, highest_skill or round_robin", 400)
        queue.strategy = strategy
    if preferred_window_s is not None:
        queue.preferred_window_s = preferred_window_s
    if escalation is not None:
        queue.escalation = escalation
    if max_wait_s is not None:
        queue.max_wait_s = max_wait_s or None
    if overflow is not None:
        queue.overflow_action, queue.overflow_queue = parse_diversion(overflow)
    if hours is not None:
        queue.hours = hours or None
    if after_hours is not None:
        action, target = parse_diversion(after_hours)
        queue.after_hours_action, queue.after_hours_queue = action or "voicemail", target
    if service_level_s is not None:
        queue.service_level_s = service_level_s
    return queue


def add_queue(session: Session, name: str, phone_number: str | None = None, skills: dict[str, int] | None = None,
              offer_timeout_s: int = 15, wrap_up_s: int = 60, region: str = "US", **rules) -> Queue:
    """Create a queue reached at `phone_number`, served by agents with `skills`."""
    if session.scalar(select(Queue).where(Queue.name == name)):
        raise FlowError(f"a queue named {name!r} exists already")
    number = None
    if phone_number:
        try:
            number = to_e164(phone_number, region)
        except InvalidNumber as exc:
            raise FlowError(f"queue number: {exc}", 400) from None
    if offer_timeout_s < 1 or wrap_up_s < 0:
        raise FlowError("the offer timeout must be at least 1 s and wrap-up not negative", 400)
    queue = Queue(name=name, phone_number=number, offer_timeout_s=offer_timeout_s, wrap_up_s=wrap_up_s,
                  skills=[QueueSkill(skill=k, min_level=v) for k, v in (skills or {}).items()])
    configure_queue(queue, **rules)
    session.add(queue)
    session.flush()
    return queue
