"""Admin operations shared by the CLI and the demo: agents and queues."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.auth import hash_password
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


def add_queue(session: Session, name: str, phone_number: str | None = None, skills: dict[str, int] | None = None,
              offer_timeout_s: int = 15, wrap_up_s: int = 60, region: str = "US") -> Queue:
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
    session.add(queue)
    session.flush()
    return queue
