"""How many lines the outbound dialer should dial now: the pacing core, sans-IO.

The caller (the hub's dialer flow, or `bench.dialer`) gathers the campaign's live state at one instant and
passes it in as elapsed seconds, so this module needs no clock: every time here is "seconds before the
caller's `now`". It imports no framework, reads no clock, uses no randomness, and returns a `PacingPlan`.

Dial modes:

* preview: the core dials nothing; the agent sees the lead and dials it from the console (the hub places
  that call on the agent's request, outside pacing).
* progressive: one line per free agent, never more lines in flight than free agents.
* predictive: dial ahead of free agents from a probabilistic forecast of agents becoming free and live
  answers arriving, taking the risk of an abandon that the budget left today and over 30 days allows, so
  the budget is spent evenly and the rate ends under the target (see docs/pacing.md).

`DialStats` (in `campaigns.pacing_stats`, re-exported here) is what the hub persists between decisions;
`record_dial` and `record_handle` fold one outcome into it (exponentially weighted counts, so old behaviour
fades out).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache

from campaigns.pacing_stats import (N_BINS, PRIOR_HANDLE_S, PRIOR_HANDLES, DialOutcome, DialStats, blended,
                                    hist_percentile, PRIOR_ANSWER_HIST, PRIOR_FAIL_HIST, record_dial, record_handle)

__all__ = ["AbandonBudget", "DialMode", "DialOutcome", "DialStats", "PacingInput", "PacingPlan", "abandon_slack",
           "allowed_risk", "lines_to_dial", "record_dial", "record_handle"]

GRACE_S = 2.0  # a live answer may wait this long for an agent before it counts as abandoned

# The abandon budget as a count: abandons still allowed = target x live answers - abandons (the "slack").
# The risk one line dialed ahead may take (the chance that, answered, it finds no agent), as a share of the
# target, by slack; linear between knots. None at or below 0 slack (progressive); very little near it, which
# already buys much occupancy; about the target at the usual slack; more when well ahead, up to 6 x the target
# (a campaign whose calls rarely collide, e.g. few agents with long calls and many answers, realises far
# less abandon than the risk it takes, and would otherwise leave its budget unspent). The slack is read
# in units of sqrt(agents / 5) abandons (at least 1): a bigger team's abandons come in bigger clusters.
# Whatever the risk, lines ahead are also never planned past the budget: the answers expected beyond the
# agents for them (the pipeline's expected abandons) must stay within the slack.
RISK_BY_SLACK = ((0.0, 0.0), (0.5, 0.15), (1.5, 0.5), (3.0, 1.0), (5.0, 2.0), (8.0, 4.0), (12.0, 6.0))
SLACK_UNIT_AGENTS = 5
ADVANCE_LIVE = 100  # a campaign with earlier days may count today as if it had this many answers (x unit) ...
ADVANCE_SHARE = 0.25  # ... but no more than this share of the live answers its earlier days in the ledger had
WINDOW_RESERVE = 0.02  # share of the 30-day budget kept back: clean days rolling out of the window shrink it
CHECK_EVERY_S = 2  # compare answers and agents every 2 s of the next ~25 s


class DialMode(StrEnum):
    PREVIEW = "preview"
    PROGRESSIVE = "progressive"
    PREDICTIVE = "predictive"


@dataclass(frozen=True)
class AbandonBudget:
    """The campaign's abandon ledger: live answers and abandons, rolling 30 days (today included) and today."""

    live_30d: int = 0
    abandons_30d: int = 0
    live_today: int = 0
    abandons_today: int = 0
    target: float = 0.03

    @property
    def rate_30d(self) -> float:
        return self.abandons_30d / self.live_30d if self.live_30d else 0.0

    @property
    def rate_today(self) -> float:
        return self.abandons_today / self.live_today if self.live_today else 0.0


@dataclass(frozen=True)
class PacingInput:
    """The campaign at one instant. All times are seconds elapsed before the caller's `now`."""

    mode: DialMode
    agents_free: int  # campaign agents idle and not reserved for a line
    busy_elapsed_s: tuple[float, ...]  # per agent on a call or in wrap-up: seconds since that call started
    ringing_elapsed_s: tuple[float, ...]  # per line dialed and not yet answered or failed: seconds since dialing
    stats: DialStats
    abandon: AbandonBudget
    max_lines: int  # hard cap on new lines now (calls-per-second tokens, trunk lines free)
    answered_waiting: int = 0  # live answers already waiting (< 2 s) for an agent


@dataclass(frozen=True)
class PacingPlan:
    """New lines to dial now. Covered lines have a free agent each; ahead lines bet on agents freeing up."""

    lines_covered: int  # may go to gold / high-value leads
    lines_ahead: int  # predictive only; never for gold leads
    effective_mode: DialMode
    reason: str
    detail: dict = field(default_factory=dict, compare=False)  # the numbers behind `reason`, for the trace

    @property
    def lines(self) -> int:
        return self.lines_covered + self.lines_ahead


def lines_to_dial(inp: PacingInput) -> PacingPlan:
    """Decide how many new lines to dial now for one campaign.

    Args:
        inp: the campaign's live state, measured stats and abandon ledger.

    Returns:
        The plan: lines covered by a free agent, lines dialed ahead (predictive only), the mode actually
        used, and a one-sentence reason.
    """
    cap = max(0, inp.max_lines)
    in_flight = len(inp.ringing_elapsed_s) + inp.answered_waiting
    covered = min(cap, max(0, inp.agents_free - in_flight))
    if inp.mode is DialMode.PREVIEW:
        return PacingPlan(0, 0, DialMode.PREVIEW, "Preview mode: agents dial their own leads.")
    if inp.mode is DialMode.PROGRESSIVE:
        return PacingPlan(covered, 0, DialMode.PROGRESSIVE, _progressive_reason(inp, in_flight, covered, cap))
    return _predictive(inp, in_flight, covered, cap)


def _progressive_reason(inp: PacingInput, in_flight: int, covered: int, cap: int) -> str:
    capped = " (capped by available lines)" if covered == cap and inp.agents_free - in_flight > cap else ""
    return (f"Progressive: {inp.agents_free} free agents, {in_flight} lines in flight, so {covered} new "
            f"lines{capped}.")


def abandon_slack(budget: AbandonBudget, unit: float = 1.0) -> tuple[float, str]:
    """Return how many more abandons the ledger allows now (may be negative), and which window binds.

    Both windows must end under the target: today's (with a small advance for a campaign that has earlier
    days, so a day need not start progressive; it is earned back by the day's first answers) and the 30 days
    (less a reserve for old days leaving the window). `unit` (the slack unit of `allowed_risk`) scales the
    advance with the team.
    """
    tau = budget.target
    earlier = max(0, budget.live_30d - budget.live_today)
    advance = min(ADVANCE_LIVE * unit, ADVANCE_SHARE * earlier)
    today = tau * max(budget.live_today, advance) - budget.abandons_today
    window = tau * budget.live_30d * (1.0 - WINDOW_RESERVE) - budget.abandons_30d
    return (today, "today") if today <= window else (window, "30-day")


def allowed_risk(budget: AbandonBudget, agents: int = 0) -> tuple[float, str]:
    """Return the risk a line dialed ahead may take now (0 = act progressive), and why, from the ledger.

    The risk is the probability that the line, if a person answers, finds no agent within 2 s. It follows the
    abandons the budget still allows, so the budget is spent evenly: more risk when the campaign is ahead,
    none when it is about to reach the target. The realised rate settles just under the target.

    Args:
        budget: the campaign's abandon ledger.
        agents: the campaign's agents (free and busy), which scale how much slack is "plenty".

    Returns:
        The risk (0 to 6 x target) and a clause saying which window binds and how much slack it has.
    """
    tau = budget.target
    unit = _slack_unit(agents)
    slack, window = abandon_slack(budget, unit)
    rate = budget.rate_today if window == "today" else budget.rate_30d
    if slack <= RISK_BY_SLACK[0][0]:
        if budget.live_30d == budget.live_today and budget.abandons_today == 0:
            return 0.0, (f"only {budget.live_30d} live answers in the ledger, too few to risk an abandon against "
                         f"the {tau:.0%} target")
        return 0.0, f"the {window} abandon rate {rate:.1%} is at the {tau:.0%} target"
    units = slack / unit
    share = RISK_BY_SLACK[-1][1]
    for (s0, r0), (s1, r1) in zip(RISK_BY_SLACK, RISK_BY_SLACK[1:]):
        if s0 < units <= s1:
            share = r0 + (r1 - r0) * (units - s0) / (s1 - s0)
            break
    return tau * share, f"{window} abandon rate {rate:.1%} leaves {slack:.1f} abandons before the {tau:.0%} target"


def _slack_unit(agents: int) -> float:
    return max(1.0, math.sqrt(agents / SLACK_UNIT_AGENTS))


@dataclass(frozen=True)
class _Model:
    answer_rate: float
    checkpoints: tuple[float, ...]  # horizons t (s) at which answers and agents are compared
    new_line: tuple[float, ...]  # P(a line dialed now is a live answer within t), per checkpoint
    ringing: tuple[tuple[float, ...], ...]  # [elapsed bin][checkpoint]: same for a line ringing that long
    handle_shape: int  # Erlang-k shape of handle time (1 = exponential)


@lru_cache(maxsize=8)
def _model(stats: DialStats) -> _Model:
    p = stats.answer_rate
    ans = blended(stats.answer_hist, PRIOR_ANSWER_HIST)
    fail = blended(stats.fail_hist, PRIOR_FAIL_HIST)
    s_ans, s_fail = _survival(ans), _survival(fail)
    horizon = max(6.0, hist_percentile(ans, 0.99) + 1.0)
    checkpoints = tuple(float(t) for t in range(CHECK_EVERY_S, int(horizon) + CHECK_EVERY_S, CHECK_EVERY_S))
    new_line = tuple(p * (1.0 - _at(s_ans, t)) for t in checkpoints)
    ringing = []
    for b in range(N_BINS):
        e = b + 0.5
        alive = p * _at(s_ans, e) + (1 - p) * _at(s_fail, e)
        if alive <= 1e-12:
            ringing.append(tuple(0.0 for _ in checkpoints))
            continue
        ringing.append(tuple(p * (_at(s_ans, e) - _at(s_ans, e + t)) / alive for t in checkpoints))
    cv = stats.handle_cv
    shape = min(8, max(1, round(1.0 / (cv * cv)))) if cv > 0 else 8
    return _Model(p, checkpoints, new_line, tuple(ringing), shape)


def _predictive(inp: PacingInput, in_flight: int, covered: int, cap: int) -> PacingPlan:
    r, why = allowed_risk(inp.abandon, inp.agents_free + len(inp.busy_elapsed_s))
    if r == 0.0:
        return PacingPlan(covered, 0, DialMode.PROGRESSIVE,
                          f"Predictive held to progressive because {why}: "
                          + _progressive_reason(inp, in_flight, covered, cap)[len("Progressive: "):])
    budget_left, _ = abandon_slack(inp.abandon, _slack_unit(inp.agents_free + len(inp.busy_elapsed_s)))
    m = _model(inp.stats)
    counts: dict[int, int] = {}
    for e in inp.ringing_elapsed_s:
        b = min(N_BINS - 1, max(0, int(e)))
        counts[b] = counts.get(b, 0) + 1
    # Handle-time mean from completed handles plus the time busy agents have already spent (censored data):
    # from completed calls alone, a young campaign would see only its short calls and expect agents back early.
    s = inp.stats
    handle_mean = ((s.handle_sum_s + PRIOR_HANDLE_S * PRIOR_HANDLES + sum(inp.busy_elapsed_s))
                   / (s.handles + PRIOR_HANDLES))
    frees = _expected_frees(inp.busy_elapsed_s, handle_mean, m)
    busy = len(inp.busy_elapsed_s)
    # For each checkpoint t: live answers expected by t from lines already out, as the sum and the sum of squares
    # of their per-line probabilities (each line answers at most once); answers waiting are certain.
    base_mean, base_sq = [], []
    for k in range(len(m.checkpoints)):
        mean = sq = 0.0
        for b, c in counts.items():
            q = m.ringing[b][k]
            mean += c * q
            sq += c * q * q
        base_mean.append(mean)
        base_sq.append(sq)
    free_pmfs = [_binomial_pmf(busy, frees[k][0] / busy if busy else 0.0) for k in range(len(m.checkpoints))]
    waiting = inp.answered_waiting
    last = len(m.checkpoints) - 1

    def answers(k: int, new_lines: int) -> _Answers:
        a = m.new_line[k]
        return _Answers(waiting, base_mean[k] + new_lines * a, base_sq[k] + new_lines * a * a)

    def fits(n: int) -> bool:
        """Whether the n-th new line, if answered live, finds no agent with probability at most r, and the
        answers expected by the horizon beyond the agents for them (lines out, answers waiting and the n new
        lines) stay within the abandons the budget still allows."""
        risk = 0.0
        prev = 0.0
        for k, a in enumerate(m.new_line):
            w = (a - prev) / m.answer_rate  # share of its live answers arriving between checkpoints k-1 and k
            prev = a
            if w > 0.0:
                risk += w * _p_no_agent(answers(k, n - 1), inp.agents_free, free_pmfs[k])
        return risk <= r and (n <= covered or _expected_excess(answers(last, n), inp.agents_free, free_pmfs[-1])
                              <= budget_left)

    # largest n in [covered, cap] that fits (fits is monotone in n); usually 0-2 lines, so search upwards
    n = covered
    if n < cap and fits(n + 1):
        step = 1
        while n + step <= cap and fits(n + step):
            n += step
            step *= 2
        step //= 2
        while step >= 1:
            if n + step <= cap and fits(n + step):
                n += step
            step //= 2
    ahead = n - covered
    expected_live = sum(c * m.ringing[b][-1] for b, c in counts.items())
    expected_abandons = _expected_excess(answers(last, n), inp.agents_free, free_pmfs[-1])
    detail = {"answer_rate": round(m.answer_rate, 4), "dials_measured": round(inp.stats.dials, 1),
              "expected_frees": round(frees[-1][0], 2), "expected_live_in_flight": round(expected_live, 2),
              "risk": round(r, 4), "expected_abandons": expected_abandons, "abandons_left": budget_left}
    reason = (f"Predictive: {inp.agents_free} free agents, {frees[-1][0]:.1f} expected to finish within "
              f"{m.checkpoints[-1]:.0f} s, {len(inp.ringing_elapsed_s)} lines ringing (~{expected_live:.1f} live "
              f"answers expected); answer rate {m.answer_rate:.0%}; {why}; so {n} new lines ({covered} for free "
              f"agents, {ahead} ahead).")
    return PacingPlan(covered, ahead, DialMode.PREDICTIVE, reason, detail)


def _expected_frees(busy_elapsed: tuple[float, ...], handle_mean: float, m: _Model) -> list[tuple[float, float]]:
    """Per checkpoint t: (expected agents finishing within t + grace, variance of that count)."""
    out = []
    if m.handle_shape == 1:  # memoryless: how long a call has lasted says nothing
        n = len(busy_elapsed)
        for t in m.checkpoints:
            q = 1.0 - math.exp(-(t + GRACE_S) / handle_mean)
            out.append((n * q, n * q * (1 - q)))
        return out
    theta = handle_mean / m.handle_shape
    for t in m.checkpoints:
        s, v = 0.0, 0.0
        for e in busy_elapsed:
            alive = _erlang_survival(e, m.handle_shape, theta)
            q = 1.0 - _erlang_survival(e + t + GRACE_S, m.handle_shape, theta) / alive if alive > 1e-12 else 1.0
            s += q
            v += q * (1 - q)
        out.append((s, v))
    return out


@dataclass(frozen=True)
class _Answers:
    """Live answers by one checkpoint: `certain` already waiting, plus one Bernoulli per line in flight, given by
    the sum (`mean`) and the sum of squares (`sq`) of their probabilities."""

    certain: int
    mean: float
    sq: float

    def pmf(self, top: int) -> list[float]:
        """P(D = d) for d = 0..top-1 (the rest of the mass is above).

        The lines' sum (a Poisson-binomial) is taken as the binomial with its mean and variance: each line
        answers at most once, with a probability of at most the answer rate, so the count's variance is below
        its mean (by a factor of about 1 - answer rate), where a Poisson count's equals it.
        """
        out = [0.0] * top
        if self.certain >= top:
            return out
        mean = self.mean
        if mean <= 1e-12:
            out[self.certain] = 1.0
            return out
        trials = max(1, round(mean * mean / self.sq)) if self.sq > 0.0 else 1
        q = min(1.0, mean / trials)
        if q >= 1.0:
            if self.certain + trials < top:
                out[self.certain + trials] = 1.0
            return out
        p = (1.0 - q) ** trials
        ratio = q / (1.0 - q)
        for j in range(min(trials, top - 1 - self.certain) + 1):
            out[self.certain + j] = p
            p *= (trials - j) / (j + 1) * ratio
        return out


def _p_no_agent(d: _Answers, free_now: int, frees_pmf: tuple[float, ...]) -> float:
    """P(D >= S): D the answers before ours, S = free_now + frees; ours then finds no agent."""
    top = free_now + len(frees_pmf)
    cdf = [0.0] * (top + 1)  # cdf[s] = P(D < s)
    acc = 0.0
    for s, p in enumerate(d.pmf(top)):
        acc += p
        cdf[s + 1] = acc
    return sum(w * (1.0 - cdf[free_now + j]) for j, w in enumerate(frees_pmf) if w > 1e-9)


def _expected_excess(d: _Answers, free_now: int, frees_pmf: tuple[float, ...]) -> float:
    """E[(D - S)+]: answers expected beyond the agents for them, S = free_now + frees.

    Every answer in that excess finds no agent within 2 s, so it is the pipeline's expected abandons by the
    horizon (a lower bound: an answer that comes before an agent frees and gives up also counts as served).
    """
    top = free_now + len(frees_pmf)
    below = [0.0] * (top + 1)  # below[s] = E[(s - D)+]
    cdf = 0.0
    for s, p in enumerate(d.pmf(top)):
        cdf += p
        below[s + 1] = below[s] + cdf
    total = d.certain + d.mean
    return sum(w * (total - (free_now + j) + below[free_now + j]) for j, w in enumerate(frees_pmf) if w > 1e-9)


@lru_cache(maxsize=4096)
def _binomial_pmf(n: int, q: float) -> tuple[float, ...]:
    """P(j of n finish) for j = 0..n, cut where the tail is negligible."""
    if n == 0 or q <= 0.0:
        return (1.0,)
    if q >= 1.0:
        return (0.0,) * n + (1.0,)
    out = []
    p = (1 - q) ** n
    acc = 0.0
    ratio = q / (1 - q)
    for j in range(n + 1):
        out.append(p)
        acc += p
        if acc > 1 - 1e-7 and j >= n * q:
            break
        p *= (n - j) / (j + 1) * ratio
    return tuple(out)


def _erlang_survival(x: float, k: int, theta: float) -> float:
    y = x / theta
    term, total = 1.0, 1.0
    for j in range(1, k):
        term *= y / j
        total += term
    return math.exp(-y) * total


def _survival(hist: tuple[float, ...]) -> tuple[float, ...]:
    """S[i] = share of the histogram at or beyond i seconds, for i = 0..N_BINS."""
    total = sum(hist)
    out = [0.0] * (N_BINS + 1)
    acc = 0.0
    for i in range(N_BINS - 1, -1, -1):
        acc += hist[i]
        out[i] = acc / total
    return tuple(out)


def _at(surv: tuple[float, ...], x: float) -> float:
    if x <= 0:
        return 1.0
    if x >= N_BINS:
        return 0.0
    i = int(x)
    f = x - i
    return surv[i] * (1 - f) + surv[i + 1] * f
