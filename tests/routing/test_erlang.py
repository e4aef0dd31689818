"""Erlang C and Erlang A: the domain check vector, closed forms, limits, a simulation and monotonicity."""
from __future__ import annotations

import ast
import heapq
import math
import pathlib
import random
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.erlang import agents_for_service_level, erlang_a, erlang_c

# The domain doc's check vector: 100 calls per 30 minutes, AHT 180 s, 14 agents, 20 s target (a = 10 Erlangs).
CHECK = (100, 1800, 180, 14, 20)


def erlang_c_closed_form(a: float, n: int) -> float:
    """Return C(n, a) from the textbook sum, in log space so large n cannot overflow."""
    logs = [k * math.log(a) - math.lgamma(k + 1) for k in range(n)]
    logs.append(n * math.log(a) - math.lgamma(n + 1) + math.log(n / (n - a)))
    peak = max(logs)
    terms = [math.exp(v - peak) for v in logs]
    return terms[-1] / math.fsum(terms)


# ---------------------------------------------------------------- Erlang C


def test_the_check_vector():
    r = erlang_c(*CHECK)
    assert r.traffic_erlangs == pytest.approx(10.0, abs=1e-12)
    assert r.service_level == pytest.approx(0.88835, abs=1e-5)
    assert r.occupancy == pytest.approx(0.7143, abs=1e-4)
    assert r.probability_of_waiting == pytest.approx(0.17413, abs=1e-5)
    assert r.average_speed_of_answer == pytest.approx(7.836, abs=1e-3)


@pytest.mark.parametrize(("a", "n"), [(0.5, 1), (2.0, 3), (10.0, 14), (10.0, 11), (47.3, 55), (480.0, 500)])
def test_the_recursion_matches_the_closed_form(a, n):
    r = erlang_c(a, 3600, 3600, n, 30)  # calls * aht / interval = a
    c = erlang_c_closed_form(a, n)
    assert r.probability_of_waiting == pytest.approx(c, rel=1e-10)
    assert r.service_level == pytest.approx(1 - c * math.exp(-(n - a) * 30 / 3600), rel=1e-10)
    assert r.average_speed_of_answer == pytest.approx(c * 3600 / (n - a), rel=1e-10)


def test_thousands_of_agents_stay_finite():
    r = erlang_c(4900 * 2, 1800, 900, 5000, 20)  # a = 4900
    assert 0 < r.probability_of_waiting < 1 and 0 < r.service_level < 1
    assert r.probability_of_waiting == pytest.approx(erlang_c_closed_form(4900.0, 5000), rel=1e-9)


def test_agents_for_80_in_20_on_the_check_load():
    # By hand, C(13, 10) = 0.3068 gives SL = 1 - 0.3068 * exp(-3 * 20/180) = 0.7956 < 0.8, and 14 agents give 0.8884.
    assert erlang_c(100, 1800, 180, 13, 20).service_level == pytest.approx(0.79559, abs=1e-5)
    assert agents_for_service_level(100, 1800, 180, 20, 0.8) == 14


@pytest.mark.parametrize("goal", [0.5, 0.8, 0.9, 0.95, 0.999])
def test_agents_for_service_level_is_the_smallest_that_meets_the_goal(goal):
    n = agents_for_service_level(250, 900, 240, 15, goal)
    assert erlang_c(250, 900, 240, n, 15).service_level >= goal
    assert erlang_c(250, 900, 240, n - 1, 15).service_level < goal


def test_no_calls_need_no_agents():
    assert agents_for_service_level(0, 1800, 180, 20, 0.8) == 0
    r = erlang_c(0, 1800, 180, 3, 20)
    assert (r.probability_of_waiting, r.service_level, r.average_speed_of_answer, r.occupancy) == (0, 1, 0, 0)


@pytest.mark.parametrize("agents", [0, 5, 10])
def test_an_unstable_queue_reports_the_worst_case_instead_of_raising(agents):
    r = erlang_c(100, 1800, 180, agents, 20)  # a = 10 >= agents
    assert (r.probability_of_waiting, r.service_level, r.occupancy) == (1.0, 0.0, 1.0)
    assert r.average_speed_of_answer == math.inf


def test_a_zero_target_leaves_only_calls_answered_at_once():
    r = erlang_c(100, 1800, 180, 14, 0)
    assert r.service_level == pytest.approx(1 - r.probability_of_waiting, abs=1e-15)
    a = erlang_a(100, 1800, 180, 14, 0, 120)
    assert a.service_level == pytest.approx(1 - a.probability_of_waiting, abs=1e-12)


@pytest.mark.parametrize(("args", "message"), [
    ((100, 1800, 0, 14, 20), "aht_seconds"),
    ((100, 1800, -5, 14, 20), "aht_seconds"),
    ((-1, 1800, 180, 14, 20), "calls_per_interval"),
    ((100, 1800, 180, -1, 20), "agents"),
    ((100, 0, 180, 14, 20), "interval_seconds"),
    ((100, 1800, 180, 14, -1), "target_seconds"),
    ((math.nan, 1800, 180, 14, 20), "calls_per_interval"),
])
def test_bad_inputs_raise_value_error(args, message):
    with pytest.raises(ValueError, match=message):
        erlang_c(*args)
    with pytest.raises(ValueError, match=message):
        erlang_a(*args, 120)


@pytest.mark.parametrize("patience", [0, -1, math.inf, math.nan])
def test_erlang_a_needs_a_finite_positive_patience(patience):
    with pytest.raises(ValueError, match="patience_seconds"):
        erlang_a(*CHECK, patience)


@pytest.mark.parametrize("goal", [0, 1, 1.5])
def test_a_goal_outside_zero_to_one_is_rejected(goal):
    with pytest.raises(ValueError, match="service_level_goal"):
        agents_for_service_level(100, 1800, 180, 20, goal)


# ---------------------------------------------------------------- Erlang A


@pytest.mark.parametrize(("calls", "aht", "agents", "target"),
                         [(100, 180, 14, 20), (100, 180, 11, 60), (280 * 6, 1800 / 6, 300, 10)])
def test_erlang_a_with_endless_patience_is_erlang_c(calls, aht, agents, target):
    c = erlang_c(calls, 1800, aht, agents, target)
    a = erlang_a(calls, 1800, aht, agents, target, 1e9)
    assert a.probability_of_abandoning < 1e-6
    for field in ("traffic_erlangs", "occupancy", "probability_of_waiting", "service_level"):
        assert getattr(a, field) == pytest.approx(getattr(c, field), abs=1e-4), field
    assert a.service_level_of_answered == pytest.approx(c.service_level, abs=1e-4)
    # Waits shift by about E[W^2]/patience, a real effect, so compare them relatively (122 s ASA moves 5e-4 s).
    assert a.average_speed_of_answer == pytest.approx(c.average_speed_of_answer, rel=1e-5)
    assert a.average_wait == pytest.approx(c.average_speed_of_answer, rel=1e-5)


@pytest.mark.parametrize(("agents", "patience"), [(12, 120), (9, 120), (14, 30), (3, 600), (60, 45)])
def test_erlang_a_measures_are_consistent(agents, patience):
    r = erlang_a(100, 1800, 180, agents, 20, patience)
    # Abandonments per second = theta * mean queue length = theta * lambda * mean wait: two independent sums.
    assert r.probability_of_abandoning == pytest.approx(r.average_wait / patience, rel=1e-9)
    assert r.occupancy == pytest.approx(r.traffic_erlangs * (1 - r.probability_of_abandoning) / agents, rel=1e-12)
    assert r.service_level == pytest.approx(r.service_level_of_answered * (1 - r.probability_of_abandoning), rel=1e-12)
    assert 0 <= r.service_level <= 1 - r.probability_of_abandoning
    assert r.probability_of_abandoning <= r.probability_of_waiting


def test_with_no_agents_everyone_abandons_after_their_patience():
    r = erlang_a(100, 1800, 180, 0, 20, 120)
    assert (r.probability_of_waiting, r.service_level) == (1.0, 0.0)
    assert r.probability_of_abandoning == pytest.approx(1.0, abs=1e-12)
    assert r.average_wait == pytest.approx(120, rel=1e-12)
    assert r.average_speed_of_answer == math.inf


def test_erlang_a_copes_with_hundreds_of_agents_and_a_long_queue():
    r = erlang_a(520 * 10, 1800, 180, 500, 20, 300)  # a = 520 Erlangs on 500 agents: Erlang C is unstable
    assert 0 < r.service_level < 1 and 0 < r.probability_of_abandoning < 0.2
    assert r.probability_of_abandoning == pytest.approx(r.average_wait / 300, rel=1e-9)


def test_an_overloaded_queue_with_near_endless_patience_is_refused():
    with pytest.raises(ValueError, match="erlang_c"):
        erlang_a(100, 1800, 180, 9, 20, 1e9)


def service_level_by_uniformisation(calls: float, interval: float, aht: float, agents: int, target: float,
                                    patience: float, ahead: int) -> float:
    """Return Erlang A's service level by uniformising each caller's own absorbing chain: a second method.

    State i = callers ahead of ours; i -> i-1 at n*mu + i*theta (the head is answered or someone ahead hangs
    up), 0 -> answered at n*mu, any state -> abandoned at theta. Uniformised at the largest exit rate, the
    P(answered by t) is a Poisson(rate * t) mixture over jump counts of P(answered within m jumps).
    """
    lam, mu, theta = calls / interval, 1 / aht, 1 / patience
    weights = [1.0]
    for j in range(1, agents + ahead + 1):
        weights.append(weights[-1] * lam / (min(j, agents) * mu + max(j - agents, 0) * theta))
    pi = [w / math.fsum(weights) for w in weights]
    rate = agents * mu + (ahead + 1) * theta
    mean_jumps = rate * target
    p, answered, total = pi[agents:], 0.0, 0.0
    for m in range(int(mean_jumps + 40 * math.sqrt(mean_jumps) + 50)):
        total += math.exp(-mean_jumps + m * math.log(mean_jumps) - math.lgamma(m + 1)) * answered
        step = [q * (1 - (agents * mu + i * theta + theta) / rate) for i, q in enumerate(p)]
        for i, q in enumerate(p):
            move = q * (agents * mu + i * theta) / rate
            if i:
                step[i - 1] += move
            else:
                answered += move
        p = step
    return math.fsum(pi[:agents]) + total


@pytest.mark.parametrize("params", [(100, 1800, 180, 12, 20, 120), (100, 1800, 180, 9, 20, 120),
                                    (300, 1800, 180, 25, 120, 300), (100, 1800, 180, 12, 200, 5)])
def test_erlang_a_service_level_matches_a_second_method(params):
    assert erlang_a(*params).service_level == pytest.approx(service_level_by_uniformisation(*params, ahead=80),
                                                            abs=1e-12)


def simulate(calls: float, interval: float, aht: float, agents: int, target: float, patience: float,
             arrivals: int, seed: int, warmup: int = 5_000) -> tuple[float, float, float, float]:
    """Return (service level, abandonment, ASA, mean wait of all) from a simulated M/M/n+M queue.

    FCFS with abandoning callers never taking an agent is exactly the Kiefer-Wolfowitz recursion: a caller's
    virtual wait is the earliest time an agent frees up after everyone answered before them; they are
    answered if that wait is within their patience. One heap of agent free times, O(log n) per call.
    """
    rng = random.Random(seed)
    lam, mu, theta = calls / interval, 1 / aht, 1 / patience
    free, now = [0.0] * agents, 0.0
    counted = within = abandoned = 0
    answered_wait = all_wait = 0.0
    for i in range(warmup + arrivals):
        now += rng.expovariate(lam)
        wait, give_up, handle = max(free[0] - now, 0.0), rng.expovariate(theta), rng.expovariate(mu)
        answered = wait <= give_up
        if answered:
            heapq.heapreplace(free, now + wait + handle)
        if i < warmup:  # the queue starts empty; let it reach steady state first
            continue
        counted += 1
        if answered:
            within += wait <= target
            answered_wait += wait
            all_wait += wait
        else:
            abandoned += 1
            all_wait += give_up
    return within / counted, abandoned / counted, answered_wait / (counted - abandoned), all_wait / counted


# 12 agents on 10 Erlangs, and 9 agents where Erlang C is unstable but abandonment keeps the queue finite.
@pytest.mark.parametrize(("agents", "seed"), [(12, 7), (9, 11)])
def test_erlang_a_agrees_with_a_simulation(agents, seed):
    # Waits are strongly autocorrelated (busy periods), so a million calls behave like far fewer independent
    # samples. Over 16 seeds of 1,000,000 calls the spread was: service level sd 0.0015-0.0018, abandonment sd
    # 0.0006-0.0009, ASA and mean wait sd 0.5-1.0% relative, with means within 0.0005 / 0.1% of erlang_a.
    # Hence 0.01 absolute for probabilities (over 5 sd) and 4% relative for the waits (4 sd or more).
    params = (100, 1800, 180, agents, 20, 120)
    r = erlang_a(*params)
    sl, abandon, asa, wait = simulate(*params, arrivals=1_000_000, seed=seed)
    assert sl == pytest.approx(r.service_level, abs=0.01)
    assert abandon == pytest.approx(r.probability_of_abandoning, abs=0.01)
    assert asa == pytest.approx(r.average_speed_of_answer, rel=0.04)
    assert wait == pytest.approx(r.average_wait, rel=0.04)


# ---------------------------------------------------------------- monotonicity


@pytest.mark.parametrize("patience", [30, 120, 1800])
def test_each_extra_agent_raises_service_level(patience):
    a_levels = [erlang_a(100, 1800, 180, n, 20, patience).service_level for n in range(0, 25)]
    c_levels = [erlang_c(100, 1800, 180, n, 20).service_level for n in range(0, 25)]
    assert a_levels == sorted(a_levels) and c_levels == sorted(c_levels)
    assert a_levels[-1] > 0.999 and c_levels[-1] > 0.999


@settings(max_examples=60, deadline=None)
@given(calls=st.floats(1, 2000), aht=st.floats(10, 900), agents=st.integers(0, 120),
       target=st.floats(0, 120), patience=st.floats(5, 3600))
def test_more_agents_never_lower_service_level(calls, aht, agents, target, patience):
    # Traffic is at most 2000 * 900 / 1800 = 1000 Erlangs, and patience is short enough that every queue
    # stays within the state cap. Erlang A's service level is exact to about 1e-12 absolute, hence the slack.
    c0, c1 = (erlang_c(calls, 1800, aht, n, target) for n in (agents, agents + 1))
    assert c1.service_level >= c0.service_level - 1e-12
    a0, a1 = (erlang_a(calls, 1800, aht, n, target, patience) for n in (agents, agents + 1))
    assert a1.service_level >= a0.service_level - 1e-9
    assert a1.probability_of_abandoning <= a0.probability_of_abandoning + 1e-9


def test_the_module_imports_only_the_standard_library():
    path = pathlib.Path(__file__).resolve().parents[2] / "routing" / "erlang.py"
    for node in ast.walk(ast.parse(path.read_text())):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
            [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
        for name in names:
            assert name.split(".")[0] in sys.stdlib_module_names | {"__future__"}, name
