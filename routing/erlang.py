"""Staffing and service-level maths for call-centre queues: Erlang C (M/M/n) and Erlang A (M/M/n+M).

Inputs are what a wallboard knows: calls offered per interval, the interval length, average handle time
(AHT), agents, the service-level target and, for Erlang A, the callers' mean patience. Traffic is
a = calls * AHT / interval Erlangs.

Erlang C uses the Erlang B recursion B(k) = a*B(k-1) / (k + a*B(k-1)), then C = n*B / (n - a*(1-B)):
every step stays in [0, 1], so hundreds or thousands of agents cost O(n) and never overflow.

Erlang A is the birth-death chain of the number in system j: births at lambda, deaths at
min(j, n)*mu + max(j - n, 0)*theta, theta = 1/patience. Its ratios pi(j)/pi(j-1) strictly decrease, so the
distribution is built in log space and cut once the geometric bound on the tail is below 1e-14 of the peak.
An arrival that finds k callers waiting (PASTA) is served when the k ahead have gone and a server frees:
T = sum of Exp(n*mu + i*theta), i = 0..k, raced against its own Exp(theta) patience. Because
e^(-theta*s) shifts every rate by theta, E[e^(-uT); T < patience] = r_0/r_(k+1) * E[e^(-uH)] with
r_i = n*mu + i*theta and H = sum of Exp(r_i), i = 1..k+1. So, given k: P(answered) = n*mu / (n*mu + (k+1)*theta),
the answered wait is distributed as H, and e^(-theta*H) ~ Beta(n*mu/theta + 1, k+1) (equally spaced rates), i.e.
P(H <= t) = I_x(k+1, n*mu/theta + 1) with x = 1 - e^(-theta*t). The regularised incomplete beta is walked
up k by I_x(m+1, b) = I_x(m, b) - d_m with d_m kept in log space: no alternating sums, no overflow for k
in the thousands, and each step loses one rounding in absolute terms, so a service level is good to about
1e-12 absolute (a level that is itself below that carries no relative accuracy). The mean answered wait
given k is E[H] = sum of 1/r_i, i = 1..k+1; the mean wait of all arrivals is E[queue]/lambda (Little's law).
Cost is O(states): about n plus the queue's reach, which grows like (lambda - n*mu) * patience once agents
fall short of traffic, so an overloaded queue with near-infinite patience is refused instead.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

_TAIL = 1e-14  # truncated Erlang A tail mass, relative to the largest state probability
_MAX_STATES = 1_000_000  # an overloaded queue with near-infinite patience would never finish


@dataclass(frozen=True)
class ErlangCResult:
    traffic_erlangs: float  # a = offered load
    occupancy: float  # a / n; 1.0 when the queue is unstable
    probability_of_waiting: float  # C(n, a)
    service_level: float  # P(wait <= target)
    average_speed_of_answer: float  # mean wait in seconds, answered immediately counted as 0


@dataclass(frozen=True)
class ErlangAResult:
    traffic_erlangs: float
    occupancy: float  # carried load / n
    probability_of_waiting: float  # P(an arrival finds every agent busy)
    probability_of_abandoning: float
    service_level: float  # P(answered within target) over ALL arrivals
    service_level_of_answered: float  # P(wait <= target | answered)
    average_speed_of_answer: float  # mean wait of answered calls, seconds
    average_wait: float  # mean wait of all arrivals (abandoned ones until they hang up), seconds


def _check(calls: float, interval: float, aht: float, agents: int, target: float) -> float:
    """Validate the shared inputs and return the offered load in Erlangs."""
    for name, value in (("calls_per_interval", calls), ("interval_seconds", interval),
                        ("aht_seconds", aht), ("target_seconds", target)):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
    if calls < 0:
        raise ValueError(f"calls_per_interval must be >= 0, got {calls!r}")
    if interval <= 0:
        raise ValueError(f"interval_seconds must be > 0, got {interval!r}")
    if aht <= 0:
        raise ValueError(f"aht_seconds must be > 0, got {aht!r}")
    if agents < 0:
        raise ValueError(f"agents must be >= 0, got {agents!r}")
    if target < 0:
        raise ValueError(f"target_seconds must be >= 0, got {target!r}")
    return calls * aht / interval


def _erlang_c_from_b(a: float, n: int, b: float, aht: float, target: float) -> ErlangCResult:
    """Finish Erlang C from the Erlang B blocking probability B(n, a)."""
    if a == 0:
        return ErlangCResult(0.0, 0.0, 0.0, 1.0, 0.0)
    if n <= a:
        return ErlangCResult(a, 1.0, 1.0, 0.0, math.inf)
    c = n * b / (n - a * (1 - b))
    service_level = 1 - c * math.exp(-(n - a) * target / aht)
    return ErlangCResult(a, a / n, c, service_level, c * aht / (n - a))


def erlang_c(calls_per_interval: float, interval_seconds: float, aht_seconds: float, agents: int,
             target_seconds: float) -> ErlangCResult:
    """Forecast an M/M/n queue with no abandonment.

    When agents <= traffic the queue grows without bound: the result then says every call waits
    (probability_of_waiting 1.0), none within target (service_level 0.0), ASA is `math.inf` and
    occupancy is 1.0. With no calls at all nobody waits: service_level 1.0, occupancy 0.0.

    Args:
        calls_per_interval: calls offered in the interval.
        interval_seconds: interval length in seconds.
        aht_seconds: average handle time in seconds.
        agents: agents taking calls.
        target_seconds: service-level threshold on the wait.

    Returns:
        Traffic, occupancy, probability of waiting, service level and average speed of answer.

    Raises:
        ValueError: a non-finite or out-of-range input.
    """
    a = _check(calls_per_interval, interval_seconds, aht_seconds, agents, target_seconds)
    b = 1.0
    for k in range(1, agents + 1):
        b = a * b / (k + a * b)
    return _erlang_c_from_b(a, agents, b, aht_seconds, target_seconds)


def agents_for_service_level(calls_per_interval: float, interval_seconds: float, aht_seconds: float,
                             target_seconds: float, service_level_goal: float) -> int:
    """Return the fewest agents whose Erlang C service level meets the goal.

    Args:
        calls_per_interval: calls offered in the interval.
        interval_seconds: interval length in seconds.
        aht_seconds: average handle time in seconds.
        target_seconds: service-level threshold on the wait.
        service_level_goal: required share answered within target, strictly between 0 and 1.

    Returns:
        The smallest n with erlang_c(...).service_level >= service_level_goal (0 when no calls arrive).

    Raises:
        ValueError: a non-finite or out-of-range input.
    """
    a = _check(calls_per_interval, interval_seconds, aht_seconds, 0, target_seconds)
    if not 0 < service_level_goal < 1:  # exactly 1 is never reached with traffic and a finite target
        raise ValueError(f"service_level_goal must be strictly between 0 and 1, got {service_level_goal!r}")
    if a == 0:
        return 0
    # Same recursion as erlang_c, carried forward one agent at a time so the search stays O(n).
    b, n = 1.0, 0
    while True:
        n += 1
        b = a * b / (n + a * b)
        if n > a and _erlang_c_from_b(a, n, b, aht_seconds, target_seconds).service_level >= service_level_goal:
            return n


def _log_state_weights(lam: float, mu: float, theta: float, n: int) -> list[float]:
    """Return unnormalised log pi(j) of the M/M/n+M chain, cut where the tail is negligible."""
    log_lam, log_tail = math.log(lam), math.log(_TAIL)
    logs, peak, j = [0.0], 0.0, 0
    while True:
        death = min(j + 1, n) * mu + max(j + 1 - n, 0) * theta
        ratio = lam / death  # pi(j+1)/pi(j); it strictly decreases in j
        # Past the peak, the tail beyond j is at most pi(j) * r / (1 - r).
        if ratio < 1 and logs[j] + math.log(ratio / (1 - ratio)) < peak + log_tail:
            return logs
        if len(logs) >= _MAX_STATES:
            raise ValueError("the queue is overloaded and patience so long that Erlang A needs over "
                             f"{_MAX_STATES} states; use erlang_c or a shorter patience_seconds")
        logs.append(logs[j] + log_lam - math.log(death))
        peak, j = max(peak, logs[-1]), j + 1


def erlang_a(calls_per_interval: float, interval_seconds: float, aht_seconds: float, agents: int,
             target_seconds: float, patience_seconds: float) -> ErlangAResult:
    """Forecast an M/M/n+M queue: callers hang up after an exponential patience.

    `service_level` is the share of ALL arriving calls answered within target: abandoned calls count
    against it, as on a wallboard. `service_level_of_answered` conditions on being answered. With
    zero agents no call is answered: ASA is `math.inf`, service_level_of_answered and occupancy 0.0.

    Args:
        calls_per_interval: calls offered in the interval.
        interval_seconds: interval length in seconds.
        aht_seconds: average handle time in seconds.
        agents: agents taking calls.
        target_seconds: service-level threshold on the wait.
        patience_seconds: callers' mean time to abandon (finite, > 0).

    Returns:
        Traffic, occupancy, waiting and abandonment probabilities, service levels and mean waits.

    Raises:
        ValueError: a non-finite or out-of-range input, or an overloaded queue whose patience is so
            long that the chain would need over a million states.
    """
    a = _check(calls_per_interval, interval_seconds, aht_seconds, agents, target_seconds)
    if not (math.isfinite(patience_seconds) and patience_seconds > 0):
        raise ValueError(f"patience_seconds must be finite and > 0, got {patience_seconds!r}")
    if a == 0:
        return ErlangAResult(traffic_erlangs=0.0, occupancy=0.0, probability_of_waiting=0.0,
                             probability_of_abandoning=0.0, service_level=1.0, service_level_of_answered=1.0,
                             average_speed_of_answer=0.0, average_wait=0.0)
    n = agents
    lam, mu, theta = calls_per_interval / interval_seconds, 1 / aht_seconds, 1 / patience_seconds
    logs = _log_state_weights(lam, mu, theta, n)
    peak = max(logs)
    weights = [math.exp(v - peak) for v in logs]
    total = math.fsum(weights)
    pi = [w / total for w in weights]

    served_at_once = math.fsum(pi[:n])
    n_mu = n * mu
    b_param = n_mu / theta + 1
    x = -math.expm1(-theta * target_seconds)  # P(H <= t) = I_x(k+1, b_param)
    log_x = math.log(x) if x > 0 else -math.inf  # a zero target leaves d_m = 0 throughout
    cdf = -math.expm1(-(n_mu + theta) * target_seconds)  # I_x(1, b) = 1 - (1-x)^b
    log_d = math.log(b_param) + log_x - (n_mu + theta) * target_seconds  # d_1 = b x (1-x)^b
    mean_h = 0.0
    queued: list[float] = []
    wait_answered: list[float] = []
    abandon: list[float] = []
    within: list[float] = []
    for k, p in enumerate(pi[n:]):
        rate_out = n_mu + (k + 1) * theta
        answered = n_mu / rate_out
        mean_h += 1 / rate_out  # E[H] = sum over i = 1..k+1 of 1/(n*mu + i*theta)
        queued.append(p * k)
        wait_answered.append(p * answered * mean_h)
        abandon.append(p * (k + 1) * theta / rate_out)  # not 1 - answered: keeps tiny rates accurate
        within.append(p * answered * cdf)
        # Step I_x(k+1, b) to I_x(k+2, b); clamp the rounding that can push a tiny value below 0.
        cdf = max(cdf - math.exp(log_d), 0.0)
        log_d += math.log((k + 1 + b_param) / (k + 2)) + log_x

    p_abandon = math.fsum(abandon)
    p_answered = 1 - p_abandon
    service_level = served_at_once + math.fsum(within)
    if n == 0:
        sl_answered, asa, occupancy = 0.0, math.inf, 0.0
    else:
        sl_answered, asa = service_level / p_answered, math.fsum(wait_answered) / p_answered
        occupancy = a * p_answered / n
    return ErlangAResult(traffic_erlangs=a, occupancy=occupancy, probability_of_waiting=math.fsum(pi[n:]),
                         probability_of_abandoning=p_abandon, service_level=service_level,
                         service_level_of_answered=sl_answered, average_speed_of_answer=asa,
                         average_wait=math.fsum(queued) / lam)  # Little's law on the queue
