"""Choosing the agent for a call, and saying why: strategies, preferred agents, escalation, traces."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from routing.model import Agent, Call, QueueRules, RoutingState, Strategy
from routing.states import Presence

TRACE_LIMIT = 40  # agents listed by name in one trace; the rest are counted


@dataclass(frozen=True)
class Trace:
    """One routing decision about one call, kept with the call for supervisors."""

    sid: str
    at: datetime
    outcome: str  # offered | waiting | diverted
    rule: str
    chosen: int | None
    candidates: tuple[tuple[int, str], ...]  # (agent id, verdict), verdict "chosen" or why skipped
    not_listed: int = 0

    def as_dict(self) -> dict:
        return {
            "at": self.at.isoformat(),
            "outcome": self.outcome,
            "rule": self.rule,
            "chosen_agent_id": self.chosen,
            "candidates": [{"agent_id": a, "verdict": v} for a, v in self.candidates],
            "not_listed": self.not_listed,
        }


@dataclass(frozen=True)
class Choice:
    agent: Agent | None
    rule: str
    reset_tried: bool = False


def _why_not(agent: Agent, skills, call: Call) -> str | None:
    if agent.presence is Presence.OFFLINE:
        return "offline"
    if agent.presence is Presence.BREAK:
        return f"on break ({agent.break_reason or 'no reason'})"
    if agent.pending_presence is not None and agent.work.value != "idle":
        return f"busy ({agent.work.value}), then {agent.pending_presence.value}"
    if not agent.is_free():
        return f"busy ({agent.work.value})"
    missing = [f"{s} {lvl}+" for s, lvl in skills.items() if agent.skills.get(s, 0) < lvl]
    if missing:
        return "lacks " + ", ".join(missing)
    return None


def choose(state: RoutingState, call: Call, free: Sequence[Agent], now: datetime) -> Choice:
    """Pick the agent for `call` among free agents, by the queue's rules; None means keep waiting."""
    rules = state.queues[call.queue]
    waited = now - call.arrived_at
    skills = rules.skills_after(waited)
    widened = skills != rules.skills
    qualified = [a for a in free if a.meets(skills)]
    if not qualified:
        return Choice(None, "no free agent has the skills" + (" (escalated)" if widened else ""))
    untried = [a for a in qualified if a.id not in call.tried]
    reset = False
    if not untried:
        untried, reset = qualified, True
    if call.preferred and waited < rules.preferred_window:
        present = [aid for aid in call.preferred
                   if aid in state.agents and state.agents[aid].presence is not Presence.OFFLINE]
        if present:
            by_id = {a.id: a for a in untried}
            for position, aid in enumerate(present):
                if aid in by_id:
                    who = "the customer's owner" if position == 0 and aid == call.preferred[0] else "a preferred agent"
                    return Choice(by_id[aid], f"{who}, tried first for {int(rules.preferred_window.total_seconds())} s",
                                  reset)
            until = int((rules.preferred_window - waited).total_seconds())
            return Choice(None, f"holding for a preferred agent for {until} s more")
    agent = _by_strategy(rules, untried, state.last_chosen.get(rules.name))
    rule = f"{rules.strategy.value.replace('_', ' ')} of {len(untried)} free agent(s)"
    if widened:
        rule += f" after escalation to {dict(skills)}"
    if reset:
        rule += "; everyone had a turn, going round again"
    return Choice(agent, rule, reset)


def _by_strategy(rules: QueueRules, agents: Sequence[Agent], last_chosen: int | None) -> Agent:
    if rules.strategy is Strategy.FEWEST_CALLS:
        return min(agents, key=lambda a: (a.calls_today, a.idle_since, a.id))
    if rules.strategy is Strategy.HIGHEST_SKILL:
        return min(agents, key=lambda a: (-a.level_for(rules.skills), a.idle_since, a.id))
    if rules.strategy is Strategy.ROUND_ROBIN:
        ordered = sorted(agents, key=lambda a: a.id)
        after = [a for a in ordered if last_chosen is not None and a.id > last_chosen]
        return after[0] if after else ordered[0]
    return min(agents, key=lambda a: (a.idle_since, a.id))


def explain(state: RoutingState, call: Call, now: datetime, outcome: str, rule: str,
            chosen: int | None = None) -> Trace:
    """Record who could and could not take `call` now, and the rule that decided."""
    rules = state.queues[call.queue]
    skills = rules.skills_after(now - call.arrived_at)
    listed: list[tuple[int, str]] = [(chosen, "chosen")] if chosen is not None else []
    for agent in state.agents.values():
        if len(listed) >= TRACE_LIMIT:
            break
        if agent.id == chosen or agent.presence is Presence.OFFLINE:
            continue
        reason = _why_not(agent, skills, call)
        if reason is None:
            reason = "already tried" if agent.id in call.tried else "free, not chosen"
        listed.append((agent.id, reason))
    return Trace(call.sid, now, outcome, rule, chosen, tuple(listed), len(state.agents) - len(listed))
