"""A person answers a campaign's call: a free campaign agent is connected at once (no offer), or it is abandoned."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from routing import engine as e
from routing.model import Call, QueueRules, RoutingState
from routing.states import CallState, IllegalTransition, Presence, Work

T0 = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
CAMPAIGN = "campaign:1"


def agent(aid, skills=None, presence=Presence.AVAILABLE, work=Work.IDLE, idle_minutes=None):
    return e.Agent(aid, presence, work, T0 - timedelta(minutes=idle_minutes if idle_minutes is not None else aid),
                   skills or {})


def state(agents, waiting=()):
    calls = {sid: Call(sid, queue, T0) for sid, queue in waiting}
    queues = {"Support": QueueRules("Support", {"support": 1}),
              CAMPAIGN: QueueRules(CAMPAIGN, {}, wrap_up=timedelta(seconds=20))}
    return RoutingState({a.id: a for a in agents}, calls, queues)


def answered(sid="CAout", members=(1, 2), preferred=()):
    return e.OutboundAnswered(sid, CAMPAIGN, frozenset(members), preferred)


def test_the_longest_idle_free_member_is_connected_without_an_offer():
    s = state([agent(1, idle_minutes=1), agent(2, idle_minutes=9), agent(3, idle_minutes=30)])
    d = e.decide(s, answered(members=(1, 2)), T0)
    assert d.state.agents[2].work is Work.ON_CALL and d.state.agents[2].call_sid == "CAout"
    assert d.state.calls["CAout"].state is CallState.CONNECTING and d.state.calls["CAout"].agent_id == 2
    assert e.DialAgent(2, "CAout") in d.commands
    assert not any(isinstance(c, (e.SendOffer, e.AbandonOutbound)) for c in d.commands)
    assert d.state.agents[3].work is Work.IDLE  # not a member


def test_the_leads_own_agent_is_preferred_when_free():
    s = state([agent(1, idle_minutes=1), agent(2, idle_minutes=9)])
    d = e.decide(s, answered(preferred=(1,)), T0)
    assert d.state.calls["CAout"].agent_id == 1


def test_with_no_free_member_the_call_is_abandoned_and_nothing_changes():
    s = state([agent(1, work=Work.ON_CALL), agent(2, presence=Presence.BREAK)])
    d = e.decide(s, answered(), T0)
    assert [c for c in d.commands if isinstance(c, e.AbandonOutbound)] == [e.AbandonOutbound("CAout", "no campaign agent was free")]
    assert d.state.agents == s.agents and "CAout" not in d.state.calls


def test_a_waiting_inbound_caller_keeps_the_blended_agent():
    s = state([agent(1, {"support": 1})], waiting=[("CAin", "Support")])
    # dispatch after the event offers the inbound caller to agent 1; the outbound call may not take them
    d = e.decide(s, answered(members=(1,)), T0)
    assert any(isinstance(c, e.AbandonOutbound) for c in d.commands)
    assert d.state.calls["CAin"].agent_id == 1


def test_a_repeated_answer_changes_nothing():
    s = state([agent(1), agent(2)])
    first = e.decide(s, answered(), T0).state
    again = e.decide(first, answered(), T0 + timedelta(seconds=1))
    assert again.state == first and again.commands == []


def test_hanging_up_after_talking_starts_the_campaigns_wrap_up():
    s = state([agent(1), agent(2)])
    s = e.decide(s, answered(members=(1,)), T0).state
    s = e.decide(s, e.AgentJoined("CAout", 1), T0 + timedelta(seconds=1)).state
    d = e.decide(s, e.CallHungUp("CAout"), T0 + timedelta(seconds=60))
    assert d.state.agents[1].work is Work.WRAP_UP
    assert e.StartWrapUp(1, "CAout", T0 + timedelta(seconds=80)) in d.commands


def test_a_machine_frees_the_agent_at_once_without_wrap_up():
    s = state([agent(1)])
    s = e.decide(s, answered(members=(1,)), T0).state
    d = e.decide(s, e.OutboundMachine("CAout"), T0 + timedelta(seconds=2))
    assert d.state.agents[1].work is Work.IDLE and d.state.agents[1].call_sid is None
    assert e.EndAgentLeg(1, "CAout") in d.commands
    assert d.state.calls["CAout"].state is CallState.ENDED


def test_an_agent_cannot_be_connected_twice():
    with pytest.raises(IllegalTransition):
        from routing.states import next_work
        next_work(Work.ON_CALL, "connect_outbound")
