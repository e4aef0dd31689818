"""The dialer's pacing core: plain functions, no fixtures, no clock."""
from __future__ import annotations

import ast
import pathlib
import random

import pytest
from hypothesis import given, settings, strategies as st

from bench.dialer import simulate_shift
from campaigns.pacing import (AbandonBudget, DialMode, DialOutcome, DialStats, PacingInput, abandon_slack,
                              allowed_risk, lines_to_dial, record_dial, record_handle)

HEALTHY = AbandonBudget(live_30d=5000, abandons_30d=40, live_today=1000, abandons_today=8)  # 0.8 %, 30 days and today
EXHAUSTED = AbandonBudget(live_30d=5000, abandons_30d=150)  # exactly 3 %


def learned_stats(answer_rate: float, aht: float = 120.0, dials: int = 3000, seed: int = 7,
                  handles: int = 300) -> DialStats:
    """Stats as the hub would have built them from outcomes of the bench's model."""
    rng = random.Random(seed)
    stats = DialStats()
    for _ in range(dials):
        if rng.random() < answer_rate:
            stats = record_dial(stats, DialOutcome.LIVE, rng.uniform(4, 20))
        else:
            stats = record_dial(stats, DialOutcome.FAILED, rng.uniform(5, 30))
    for _ in range(handles):
        stats = record_handle(stats, rng.expovariate(1 / aht))
    return stats


LOW_ANSWER = learned_stats(0.10)


def state(mode: DialMode, free: int, busy: int = 0, ringing: tuple[float, ...] = (), stats: DialStats = LOW_ANSWER,
          budget: AbandonBudget = HEALTHY, max_lines: int = 100) -> PacingInput:
    return PacingInput(mode, free, tuple(30.0 + 7 * i for i in range(busy)), ringing, stats, budget, max_lines)


def test_preview_dials_nothing():
    plan = lines_to_dial(state(DialMode.PREVIEW, free=10))
    assert (plan.lines_covered, plan.lines_ahead, plan.effective_mode) == (0, 0, DialMode.PREVIEW)


@pytest.mark.parametrize("free", range(0, 6))
@pytest.mark.parametrize("ringing", range(0, 8))
def test_progressive_never_has_more_lines_in_flight_than_free_agents(free, ringing):
    plan = lines_to_dial(state(DialMode.PROGRESSIVE, free=free, busy=3, ringing=(5.0,) * ringing))
    assert plan.lines_ahead == 0
    assert plan.lines_covered == max(0, free - ringing)
    assert plan.effective_mode is DialMode.PROGRESSIVE


def test_progressive_counts_answers_waiting_for_an_agent_as_lines_in_flight():
    inp = PacingInput(DialMode.PROGRESSIVE, 3, (), (), LOW_ANSWER, HEALTHY, 10, answered_waiting=2)
    assert lines_to_dial(inp).lines_covered == 1


def test_predictive_with_exhausted_budget_acts_like_progressive():
    for free, busy, ringing in [(0, 20, ()), (4, 16, (3.0,)), (10, 10, ())]:
        predictive = lines_to_dial(state(DialMode.PREDICTIVE, free, busy, ringing, budget=EXHAUSTED))
        progressive = lines_to_dial(state(DialMode.PROGRESSIVE, free, busy, ringing, budget=EXHAUSTED))
        assert predictive.effective_mode is DialMode.PROGRESSIVE
        assert (predictive.lines_covered, predictive.lines_ahead) == (progressive.lines_covered, 0)
        assert "target" in predictive.reason


def test_predictive_over_target_today_acts_like_progressive_even_with_a_clean_30_day_ledger():
    today_bad = AbandonBudget(live_30d=20000, abandons_30d=200, live_today=200, abandons_today=8)
    plan = lines_to_dial(state(DialMode.PREDICTIVE, free=5, busy=15, budget=today_bad))
    assert (plan.lines_covered, plan.lines_ahead, plan.effective_mode) == (5, 0, DialMode.PROGRESSIVE)
    assert "today" in plan.reason


def test_predictive_on_a_cold_campaign_starts_progressive():
    plan = lines_to_dial(state(DialMode.PREDICTIVE, free=5, busy=15, stats=DialStats(), budget=AbandonBudget()))
    assert (plan.lines_covered, plan.lines_ahead, plan.effective_mode) == (5, 0, DialMode.PROGRESSIVE)


def test_predictive_dials_more_than_progressive_when_answer_rate_is_low_and_budget_healthy():
    predictive = lines_to_dial(state(DialMode.PREDICTIVE, free=4, busy=16))
    progressive = lines_to_dial(state(DialMode.PROGRESSIVE, free=4, busy=16))
    assert predictive.effective_mode is DialMode.PREDICTIVE
    assert predictive.lines_covered == progressive.lines_covered == 4
    assert predictive.lines_ahead > 0


def test_predictive_dials_fewer_ahead_when_people_answer_more_often():
    low = lines_to_dial(state(DialMode.PREDICTIVE, free=4, busy=16, stats=learned_stats(0.10)))
    high = lines_to_dial(state(DialMode.PREDICTIVE, free=4, busy=16, stats=learned_stats(0.40)))
    assert high.lines < low.lines


def test_predictive_counts_long_ringing_lines_as_unlikely_answers():
    fresh = lines_to_dial(state(DialMode.PREDICTIVE, free=2, busy=18, ringing=(1.0,) * 15))
    stale = lines_to_dial(state(DialMode.PREDICTIVE, free=2, busy=18, ringing=(22.0,) * 15))
    assert stale.lines > fresh.lines


def test_predictive_dials_ahead_for_agents_about_to_finish():
    few_busy = lines_to_dial(state(DialMode.PREDICTIVE, free=0, busy=2))
    many_busy = lines_to_dial(state(DialMode.PREDICTIVE, free=0, busy=40))
    assert many_busy.lines_ahead > few_busy.lines_ahead


def test_predictive_spends_less_risk_as_the_ledger_nears_the_target():
    risks = [allowed_risk(AbandonBudget(live_30d=10000, abandons_30d=a))[0] for a in (50, 150, 220, 260, 295)]
    assert risks == sorted(risks, reverse=True)
    assert risks[0] > 0 and risks[-1] == 0


def test_the_risk_follows_the_abandons_today_still_allows_and_stops_at_the_target():
    risks = [allowed_risk(AbandonBudget(live_30d=6000, abandons_30d=100 + a, live_today=1000, abandons_today=a),
                          agents=10)[0] for a in range(0, 34, 3)]
    assert risks == sorted(risks, reverse=True)
    assert risks[0] > 0.03 and risks[-1] == 0.0  # 33 abandons of 1,000 answers today: over 3 %
    assert allowed_risk(AbandonBudget(6000, 130, 1000, 30), agents=10)[0] == 0.0  # exactly at the target


def test_a_bigger_team_needs_more_slack_for_the_same_risk():
    budget = AbandonBudget(live_30d=6000, abandons_30d=120, live_today=1000, abandons_today=25)  # 5 left today
    assert allowed_risk(budget, agents=50)[0] < allowed_risk(budget, agents=5)[0]


def test_a_day_with_earlier_days_may_dial_ahead_from_its_first_call_a_first_day_may_not():
    assert allowed_risk(AbandonBudget(live_30d=3000, abandons_30d=60), agents=10)[0] > 0
    assert allowed_risk(AbandonBudget(), agents=10)[0] == 0.0
    assert allowed_risk(AbandonBudget(live_30d=10, abandons_30d=0, live_today=10, abandons_today=0))[0] < 0.01


@pytest.mark.parametrize("live,abandons", [(0, 0), (15, 0), (40, 1), (400, 11), (3000, 95)])
def test_on_a_first_day_the_ledger_never_allows_more_abandons_than_the_target_of_the_answers_so_far(live, abandons):
    slack, _ = abandon_slack(AbandonBudget(live, abandons, live, abandons), unit=3.0)
    assert abandons + slack <= 0.03 * live


def test_the_advance_a_day_borrows_is_small_and_earned_back_by_the_first_answers():
    history = 20000  # live answers on earlier days, abandons at 2 %
    start, _ = abandon_slack(AbandonBudget(history, 400, 0, 0))
    later, _ = abandon_slack(AbandonBudget(history + 500, 400 + 12, 500, 12))
    assert 0 < start <= 3.0
    assert later == pytest.approx(0.03 * 500 - 12)  # after 500 answers only today's own rate counts


@pytest.mark.parametrize("mode", [DialMode.PROGRESSIVE, DialMode.PREDICTIVE])
@pytest.mark.parametrize("max_lines", [0, 1, 3])
def test_max_lines_is_respected(mode, max_lines):
    plan = lines_to_dial(state(mode, free=10, busy=40, max_lines=max_lines))
    assert plan.lines_covered + plan.lines_ahead <= max_lines


def test_a_negative_max_lines_dials_nothing():
    assert lines_to_dial(state(DialMode.PREDICTIVE, free=10, busy=40, max_lines=-2)).lines == 0


def test_stats_learn_the_answer_rate_and_the_time_to_answer():
    stats = learned_stats(0.25, aht=200.0, dials=4000)
    assert stats.answer_rate == pytest.approx(0.25, abs=0.03)
    assert stats.machine_rate == 0.0
    assert stats.time_to_answer_percentile(0.5) == pytest.approx(12.0, abs=1.5)
    assert stats.mean_time_to_answer_s == pytest.approx(12.0, abs=1.5)
    assert stats.mean_handle_s == pytest.approx(200.0, rel=0.15)


def test_stats_start_from_a_cautious_prior_and_forget_old_outcomes():
    assert DialStats().answer_rate == pytest.approx(0.30)
    stats = learned_stats(0.05, dials=2000)
    for i in range(6000):  # the campaign's list changes: now half the people answer, half are machines
        stats = record_dial(stats, DialOutcome.LIVE if i % 2 else DialOutcome.MACHINE, 10.0)
    assert stats.answer_rate > 0.2
    assert stats.machine_rate > 0.2


def test_recording_an_outcome_leaves_the_old_stats_unchanged():
    before = DialStats()
    after = record_dial(before, DialOutcome.LIVE, 8.0)
    assert before == DialStats() and after.live == 1.0


def test_a_short_seeded_simulated_shift_stays_within_3_percent_abandon_and_beats_progressive():
    predictive = simulate_shift(10, 0.10, 120.0, "predictive", seed=3, hours=1.5)
    progressive = simulate_shift(10, 0.10, 120.0, "progressive", seed=3, hours=1.5)
    assert predictive["live"] > 100
    assert predictive["abandon_rate"] <= 0.03
    assert progressive["abandons"] == 0
    assert predictive["occupancy"] > progressive["occupancy"]


def test_a_short_cold_simulated_shift_stays_within_3_percent_abandon_and_beats_progressive():
    predictive = simulate_shift(10, 0.10, 120.0, "predictive", seed=4, hours=1.5, history="cold")
    progressive = simulate_shift(10, 0.10, 120.0, "progressive", seed=4, hours=1.5)
    assert predictive["history"] == "cold" and predictive["live"] > 100
    assert predictive["abandon_rate"] <= 0.03
    assert predictive["occupancy"] > progressive["occupancy"]


def test_the_bench_refuses_an_unknown_history():
    with pytest.raises(ValueError, match="history"):
        simulate_shift(5, 0.10, 120.0, "predictive", seed=1, hours=0.1, history="yesterday")


def test_pacing_imports_no_framework_clock_or_global_randomness():
    imported = set()
    for name in ("pacing.py", "pacing_stats.py"):
        source = pathlib.Path(__file__).parents[2].joinpath("campaigns", name).read_text()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                imported |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
    assert imported <= {"__future__", "math", "dataclasses", "enum", "functools", "campaigns.pacing_stats"}


busy_times = st.lists(st.floats(min_value=0.0, max_value=900.0), max_size=60)
ring_times = st.lists(st.floats(min_value=0.0, max_value=59.0), max_size=150)


@settings(max_examples=150, deadline=None)
@given(free=st.integers(0, 10), busy=busy_times, ringing=ring_times, waiting=st.integers(0, 3),
       live_today=st.integers(0, 3000), abandons_today=st.integers(0, 100), earlier=st.integers(0, 30000),
       answer_rate=st.sampled_from([0.10, 0.25, 0.40]))
def test_lines_ahead_never_plan_more_expected_abandons_than_the_budget_left(free, busy, ringing, waiting, live_today,
                                                                            abandons_today, earlier, answer_rate):
    budget = AbandonBudget(earlier + live_today, abandons_today + earlier // 50, live_today, abandons_today)
    stats = LOW_ANSWER if answer_rate == 0.10 else learned_stats(answer_rate, dials=600)
    plan = lines_to_dial(PacingInput(DialMode.PREDICTIVE, free, tuple(busy), tuple(ringing), stats, budget, 200,
                                     waiting))
    if plan.lines_ahead:
        assert plan.effective_mode is DialMode.PREDICTIVE
        assert plan.detail["abandons_left"] > 0
        assert plan.detail["expected_abandons"] <= plan.detail["abandons_left"]



def test_a_campaign_well_under_its_budget_may_take_more_risk_per_line_up_to_six_times_the_target():
    # 1,000 answers today allow 30 abandons; the 30-day window has far more left, so today's slack binds
    risks = [allowed_risk(AbandonBudget(live_30d=20000, abandons_30d=300, live_today=1000, abandons_today=a),
                          agents=5)[0] for a in (0, 15, 20, 25, 28, 30)]
    assert risks == sorted(risks, reverse=True)
    assert risks[0] == risks[1] == pytest.approx(6 * 0.03)  # 30 and 15 abandons left: the cap
    assert risks[2] > 1.5 * 0.03  # 10 left: more than the old cap of 1.5 x target
    assert risks[-1] == 0.0


@pytest.mark.parametrize("busy", [20, 50])
def test_with_every_agent_busy_lines_go_out_for_the_agents_expected_to_finish_within_the_answer_window(busy):
    # nobody free, nothing ringing: every line is a bet on an agent finishing before the person answers
    plan = lines_to_dial(state(DialMode.PREDICTIVE, free=0, busy=busy))
    assert plan.effective_mode is DialMode.PREDICTIVE
    assert plan.lines_covered == 0 and plan.lines_ahead > 0
    # the answers it expects stay well within the agents expected to finish, and within the budget guard
    assert plan.lines_ahead * plan.detail["answer_rate"] < plan.detail["expected_frees"]
    assert plan.detail["expected_abandons"] <= plan.detail["abandons_left"]
    more_ringing = lines_to_dial(state(DialMode.PREDICTIVE, free=0, busy=busy, ringing=(3.0,) * plan.lines_ahead))
    assert more_ringing.lines_ahead < plan.lines_ahead  # lines already out count against the same agents


def test_with_five_agents_all_busy_even_the_first_line_ahead_is_too_risky():
    # 5 agents with 2-minute calls: ~0.8 expected to finish within the ~22 s an answer may take, and the
    # first line would find nobody about half the time, far over the 18 % most the budget ever allows
    healthy_today = AbandonBudget(live_30d=20000, abandons_30d=300, live_today=1000, abandons_today=0)
    plan = lines_to_dial(state(DialMode.PREDICTIVE, free=0, busy=5, budget=healthy_today))
    assert plan.detail["risk"] == pytest.approx(6 * 0.03)
    assert (plan.lines_covered, plan.lines_ahead) == (0, 0)
