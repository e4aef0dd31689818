"""The pacing core's count of live answers in flight: one per line at most, and answers waiting are certain."""
from __future__ import annotations

import math

import pytest

from campaigns.pacing import AbandonBudget, DialMode, DialStats, PacingInput, _Answers, lines_to_dial
from tests.campaigns.test_pacing import learned_stats

# 1,000 answers today and none abandoned, a clean 30 days: the most risk per line the budget ever allows
CLEAN_TODAY = AbandonBudget(live_30d=20000, abandons_30d=300, live_today=1000, abandons_today=0)


def predictive(free: int, stats: DialStats, waiting: int = 0) -> PacingInput:
    return PacingInput(DialMode.PREDICTIVE, free, (), (), stats, CLEAN_TODAY, 100, waiting)


def poisson_binomial(probabilities: list[float]) -> list[float]:
    """The exact distribution of the number of successes of independent Bernoulli trials."""
    pmf = [1.0]
    for q in probabilities:
        pmf = [(pmf[j] if j < len(pmf) else 0.0) * (1 - q) + (pmf[j - 1] * q if j else 0.0)
               for j in range(len(pmf) + 1)]
    return pmf


def test_lines_that_answer_alike_give_the_exact_binomial_count_not_a_poisson_one():
    # four lines, each answered with probability 0.5: at most 4 answers, and exactly the binomial (1 4 6 4 1)/16
    pmf = _Answers(certain=0, mean=4 * 0.5, sq=4 * 0.25).pmf(6)
    assert pmf == pytest.approx([1 / 16, 4 / 16, 6 / 16, 4 / 16, 1 / 16, 0.0])
    poisson = [math.exp(-2.0) * 2.0 ** d / math.factorial(d) for d in range(6)]
    assert pmf[0] < poisson[0] and pmf[5] < poisson[5]


def test_lines_of_different_ages_keep_the_mean_and_the_variance_of_their_answers():
    probabilities = [0.10] * 10 + [0.05] * 10  # fresh lines and lines that have rung a while
    mean = sum(probabilities)
    pmf = _Answers(0, mean, sum(q * q for q in probabilities)).pmf(25)
    assert sum(pmf) == pytest.approx(1.0)
    assert sum(d * p for d, p in enumerate(pmf)) == pytest.approx(mean)
    variance = sum(q * (1 - q) for q in probabilities)  # 1.375, below the Poisson's 1.5
    assert sum(d * d * p for d, p in enumerate(pmf)) - mean ** 2 == pytest.approx(variance)
    exact = poisson_binomial(probabilities)
    assert max(abs(a - b) for a, b in zip(pmf, exact)) < 0.005


def test_answers_waiting_for_an_agent_are_certain():
    assert _Answers(certain=2, mean=0.3, sq=0.09).pmf(5) == pytest.approx([0.0, 0.0, 0.7, 0.3, 0.0])
    assert _Answers(certain=3, mean=0.0, sq=0.0).pmf(3) == [0.0, 0.0, 0.0]  # all of it at 3 or more


@pytest.mark.parametrize("answer_rate,free", [(0.10, 1), (0.10, 2), (0.40, 2)])
def test_an_answer_already_waiting_takes_one_of_the_free_agents_for_certain(answer_rate, free):
    # one answer waiting and free + 1 agents free leave the new lines exactly `free` agents, as `free` agents
    # with nothing waiting would: the same lines, one of them fewer covered
    stats = learned_stats(answer_rate, handles=0)  # ring times only: nobody is busy in these states
    without = lines_to_dial(predictive(free, stats))
    with_waiting = lines_to_dial(predictive(free + 1, stats, waiting=1))
    assert with_waiting.effective_mode is DialMode.PREDICTIVE
    assert with_waiting.lines == without.lines
    assert with_waiting.lines_covered == without.lines_covered == free
