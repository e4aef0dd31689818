"""Blended work: inbound callers come first; the dialer gets the campaign members left over."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from routing import engine as e
from routing.blending import agents_for_outbound
from routing.model import Call, QueueRules, RoutingState
from routing.states import Presence, Work

T0 = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def agent(aid, skills, presence=Presence.AVAILABLE, work=Work.IDLE):
    return e.Agent(aid, presence, work, T0 - timedelta(minutes=aid), skills)


def state(agents, waiting=()):
    calls = {sid: Call(sid, queue, T0) for sid, queue in waiting}
    return RoutingState({a.id: a for a in agents}, calls,
                        {"Support": QueueRules("Support", {"support": 1}), "Sales": QueueRules("Sales", {"sales": 1})})


def test_with_nobody_waiting_every_free_member_may_dial():
    s = state([agent(1, {"support": 1}), agent(2, {}), agent(3, {}, work=Work.ON_CALL)])
    assert agents_for_outbound(s, {1, 2, 3}, T0) == 2


def test_waiting_inbound_callers_take_blended_members_first():
    s = state([agent(1, {"support": 1}), agent(2, {"support": 1}), agent(3, {})], waiting=[("CA1", "Support")])
    assert agents_for_outbound(s, {1, 2, 3}, T0) == 2


def test_a_non_member_who_can_answer_is_reserved_before_a_member():
    s = state([agent(1, {"support": 1}), agent(2, {"support": 1})], waiting=[("CA1", "Support")])
    assert agents_for_outbound(s, {1}, T0) == 1


def test_callers_nobody_free_can_answer_do_not_hold_back_the_dialer():
    s = state([agent(1, {"support": 1}), agent(2, {})], waiting=[("CA1", "Sales"), ("CA2", "Sales")])
    assert agents_for_outbound(s, {1, 2}, T0) == 2


def test_members_on_break_or_busy_are_never_counted():
    s = state([agent(1, {}, presence=Presence.BREAK), agent(2, {}, work=Work.WRAP_UP), agent(3, {})])
    assert agents_for_outbound(s, {1, 2, 3}, T0) == 1
