"""Blended work: how many agents the outbound dialer may use without making inbound callers wait longer."""
from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from routing.model import RoutingState
from routing.states import CallState


def agents_for_outbound(state: RoutingState, members: Collection[int], now: datetime) -> int:
    """Return how many of a campaign's free members the dialer may take now (see `outbound_agents`)."""
    return len(outbound_agents(state, members, now))


def outbound_agents(state: RoutingState, members: Collection[int], now: datetime) -> list[int]:
    """Return the campaign's free members the dialer may take now, longest idle first.

    Inbound comes first: every waiting inbound caller reserves one free agent who could take them (a campaign
    member only when no one else can), so the dialer gets what is left.

    Args:
        state: the routing state (agents, waiting calls, queue rules).
        members: ids of the agents who belong to the campaign.
        now: the current time, for skills that widen with the wait.

    Returns:
        The ids of the campaign members who may take an outbound call right now, longest idle first.
    """
    free = {a.id: a for a in state.agents.values() if a.is_free()}
    available_members = {aid for aid in members if aid in free}
    waiting = sorted((c for c in state.calls.values() if c.state is CallState.WAITING), key=lambda c: c.line_key)
    for call in waiting:
        skills = state.queues[call.queue].skills_after(now - call.arrived_at)
        able = [aid for aid, agent in free.items() if agent.meets(skills)]
        if not able:
            continue
        # reserve a non-member first, so campaign members stay on the campaign when others can answer
        reserved = min(able, key=lambda aid: (aid in available_members, free[aid].idle_since, aid))
        del free[reserved]
        available_members.discard(reserved)
    return sorted(available_members, key=lambda aid: (free[aid].idle_since, aid))
