"""The routing core, as plain functions: no fixtures, no clock, no I/O."""
from __future__ import annotations

import ast
import pathlib
from datetime import UTC, datetime, timedelta

import pytest

from routing import engine as e
from routing.states import CallState, IllegalTransition, Presence, Work, advances, next_work

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
SUPPORT = e.QueueRules("Support", {"support": 1}, offer_timeout=timedelta(seconds=15), wrap_up=timedelta(seconds=30))
SALES = e.QueueRules("Sales", {"sales": 2})


def agent(aid: int, idle_minutes: int = 0, skills=None, presence=Presence.AVAILABLE, work=Work.IDLE) -> e.Agent:
    return e.Agent(aid, presence, work, T0 - timedelta(minutes=idle_minutes),
                   skills if skills is not None else {"support": 1})


def state(*agents: e.Agent) -> e.RoutingState:
    return e.RoutingState({a.id: a for a in agents}, {}, {"Support": SUPPORT, "Sales": SALES})


def run(s: e.RoutingState, *events, now=T0) -> tuple[e.RoutingState, list]:
    commands = []
    for event in events:
        d = e.decide(s, event, now)
        s, commands = d.state, commands + d.commands
    return s, commands


def offers(commands) -> list[tuple[int, str]]:
    return [(c.agent_id, c.sid) for c in commands if isinstance(c, e.SendOffer)]


def test_a_call_is_offered_to_the_longest_idle_agent_with_the_skill():
    s, cmds = run(state(agent(1, 5), agent(2, 10), agent(3, 60, skills={"sales": 3})), e.CallArrived("CA1", "Support"))
    assert offers(cmds) == [(2, "CA1")]
    assert s.calls["CA1"].state is CallState.OFFERED
    assert s.agents[2].work is Work.OFFERED and s.agents[2].call_sid == "CA1"
    assert cmds[0].expires_at == T0 + timedelta(seconds=15)


def test_skill_levels_below_the_queue_minimum_do_not_qualify():
    s, cmds = run(state(agent(1, 5, skills={"sales": 1})), e.CallArrived("CA1", "Sales"))
    assert offers(cmds) == []
    assert s.calls["CA1"].state is CallState.WAITING


def test_callers_wait_while_nobody_is_free_and_get_the_next_free_agent_in_arrival_order():
    s, _ = run(state(agent(1, presence=Presence.BREAK)), e.CallArrived("CA1", "Support"),
               e.CallArrived("CA2", "Support"))
    assert {c.state for c in s.calls.values()} == {CallState.WAITING}
    s, cmds = run(s, e.PresenceChanged(1, Presence.AVAILABLE), now=T0 + timedelta(seconds=5))
    assert offers(cmds) == [(1, "CA1")]


def test_an_offer_that_times_out_goes_to_the_next_agent():
    s, cmds = run(state(agent(1, 10), agent(2, 5)), e.CallArrived("CA1", "Support"))
    expires = cmds[0].expires_at
    s, cmds = run(s, e.OfferExpired("CA1", 1, expires), now=expires)
    assert offers(cmds) == [(2, "CA1")]
    assert any(isinstance(c, e.WithdrawOffer) and c.agent_id == 1 for c in cmds)
    assert s.agents[1].work is Work.IDLE and s.agents[1].call_sid is None
    assert s.calls["CA1"].tried == frozenset({1})


def test_an_accept_after_the_timeout_is_refused_and_changes_nothing():
    s, cmds = run(state(agent(1)), e.CallArrived("CA1", "Support"))
    late = cmds[0].expires_at + timedelta(milliseconds=1)
    with pytest.raises(e.OfferNotOpen):
        e.decide(s, e.OfferAccepted("CA1", 1), late)
    assert s.calls["CA1"].state is CallState.OFFERED


def test_a_stale_expiry_timer_does_not_touch_a_newer_offer():
    s, cmds = run(state(agent(1)), e.CallArrived("CA1", "Support"))
    first_expiry = cmds[0].expires_at
    s, _ = run(s, e.OfferDeclined("CA1", 1), now=T0 + timedelta(seconds=1))
    s, cmds = run(s, e.PresenceChanged(1, Presence.AVAILABLE), now=T0 + timedelta(seconds=2))
    # re-offered to agent 1 (the only one) with a later expiry; the old timer fires afterwards
    assert s.calls["CA1"].state is CallState.OFFERED
    s2, cmds = run(s, e.OfferExpired("CA1", 1, first_expiry), now=first_expiry)
    assert s2 == s and cmds == []


def test_accept_then_join_then_hang_up_puts_the_agent_in_wrap_up_then_idle():
    s, _ = run(state(agent(1)), e.CallArrived("CA1", "Support"))
    s, cmds = run(s, e.OfferAccepted("CA1", 1))
    assert cmds == [e.DialAgent(1, "CA1")]
    assert s.calls["CA1"].state is CallState.CONNECTING and s.agents[1].work is Work.ON_CALL
    s, _ = run(s, e.AgentJoined("CA1", 1))
    assert s.calls["CA1"].state is CallState.CONNECTED
    end = T0 + timedelta(minutes=3)
    s, cmds = run(s, e.CallHungUp("CA1"), now=end)
    assert cmds == [e.StartWrapUp(1, "CA1", end + timedelta(seconds=30))]
    assert s.agents[1].work is Work.WRAP_UP and s.calls["CA1"].state is CallState.ENDED
    assert s.calls["CA1"].agent_id == 1
    s, _ = run(s, e.WrapUpFinished(1, "CA1"), now=end + timedelta(seconds=10))
    assert s.agents[1].work is Work.IDLE and s.agents[1].idle_since == end + timedelta(seconds=10)


def test_a_caller_who_hangs_up_during_the_offer_frees_the_agent():
    s, _ = run(state(agent(1)), e.CallArrived("CA1", "Support"))
    s, cmds = run(s, e.CallHungUp("CA1"))
    assert s.agents[1].work is Work.IDLE and s.calls["CA1"].state is CallState.ENDED
    assert s.calls["CA1"].agent_id is None
    assert [type(c) for c in cmds] == [e.WithdrawOffer]


def test_a_failed_agent_leg_puts_the_call_back_in_line_for_someone_else():
    s, _ = run(state(agent(1, 10), agent(2, 5)), e.CallArrived("CA1", "Support"), e.OfferAccepted("CA1", 1))
    s, cmds = run(s, e.AgentLegFailed("CA1", 1))
    assert offers(cmds) == [(2, "CA1")]
    assert s.agents[1].work is Work.IDLE


def test_a_break_during_an_offer_withdraws_it_and_a_break_during_a_call_sticks_after_wrap_up():
    s, _ = run(state(agent(1)), e.CallArrived("CA1", "Support"))
    s, cmds = run(s, e.PresenceChanged(1, Presence.BREAK, "lunch"))
    assert s.calls["CA1"].state is CallState.WAITING and s.agents[1].break_reason == "lunch"
    s, _ = run(s, e.PresenceChanged(1, Presence.AVAILABLE), e.OfferAccepted("CA1", 1), e.AgentJoined("CA1", 1))
    s, _ = run(s, e.PresenceChanged(1, Presence.BREAK, "meeting"), e.CallHungUp("CA1"), e.WrapUpFinished(1, "CA1"))
    assert s.agents[1].presence is Presence.BREAK and s.agents[1].work is Work.IDLE
    s, cmds = run(s, e.CallArrived("CA2", "Support"))
    assert offers(cmds) == []


def test_duplicate_and_late_events_change_nothing():
    s, _ = run(state(agent(1)), e.CallArrived("CA1", "Support"), e.OfferAccepted("CA1", 1), e.AgentJoined("CA1", 1),
               e.CallHungUp("CA1"))
    for late in (e.CallArrived("CA1", "Support"), e.CallHungUp("CA1"), e.AgentJoined("CA1", 1),
                 e.AgentLegFailed("CA1", 1)):
        after, cmds = run(s, late)
        assert after == s and cmds == []


def test_answering_someone_elses_offer_is_refused():
    s, _ = run(state(agent(1, 10), agent(2)), e.CallArrived("CA1", "Support"))
    with pytest.raises(e.OfferNotOpen):
        e.decide(s, e.OfferAccepted("CA1", 2), T0)


def test_after_everyone_declined_the_call_goes_round_again():
    s, _ = run(state(agent(1, 10), agent(2, 5)), e.CallArrived("CA1", "Support"))
    s, _ = run(s, e.OfferDeclined("CA1", 1))
    s, cmds = run(s, e.OfferDeclined("CA1", 2), now=T0 + timedelta(seconds=1))
    assert offers(cmds) == [(1, "CA1")]


def test_illegal_work_transitions_raise():
    with pytest.raises(IllegalTransition):
        next_work(Work.IDLE, "end")
    with pytest.raises(IllegalTransition):
        next_work(Work.WRAP_UP, "accept")


def test_telephony_status_never_moves_backwards_and_final_is_final():
    assert advances(None, "ringing")
    assert advances("ringing", "in-progress")
    assert not advances("in-progress", "ringing")
    assert advances("in-progress", "completed")
    assert not advances("completed", "in-progress")
    assert not advances("completed", "failed")
    assert not advances("ringing", "no-such-status")


def test_the_routing_package_imports_no_io_library():
    forbidden = {"flask", "flask_socketio", "sqlalchemy", "redis", "rq", "twilio", "requests", "socketio", "hub"}
    root = pathlib.Path(__file__).resolve().parents[2] / "routing"
    for path in root.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{path.name} imports {name}"
