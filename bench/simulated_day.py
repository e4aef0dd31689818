"""A simulated contact-centre day with the real routing engine in the loop, against Erlang A.

    python -m bench.simulated_day [--agents 14 --calls-per-30min 100 --aht 180 --patience 120 --target 20
                                   --hours 8 --seed 1 --days 10 --service lognormal|exponential --sigma 0.6]
                                  [--grid] [--json]

Discrete-event simulation in virtual time (a heapq of timed events, `now` handed to `routing.engine.decide`,
no sleeping). One queue, N agents always available. Each call: Poisson arrival -> CallArrived -> the
engine's SendOffer -> the agent accepts at the same instant (OfferAccepted) -> DialAgent -> AgentJoined (the
caller is answered; wait = answer time - arrival) -> talk for the handle time -> CallHungUp -> StartWrapUp
-> WrapUpFinished at the same instant (the queue's wrap_up is 0, so AHT = talk time) -> the engine offers
the next caller. A caller still WAITING when their exponential patience runs out hangs up (CallHungUp).
Offer expiry timers are not scheduled: every offer is accepted at once, so they would all be stale.

Counted: every call arriving within the `--hours` window (the day then drains). Service level = answered
within target / offered, abandoned calls counting against it: Erlang A's `service_level`. Days run with
seeds seed, seed+1, ...; the table gives the mean over days, its spread and a 95 % confidence interval.
Not a pytest module: nothing here is collected.
"""
from __future__ import annotations

import argparse
import heapq
import json
import math
import random
import statistics
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bench.conditions import conditions
from routing import engine as e
from routing.erlang import erlang_a
from routing.model import Agent, QueueRules, RoutingState, Strategy
from routing.states import CallState, Presence, Work

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
QUEUE = "Check"
# two-sided 95 % Student t quantiles by degrees of freedom (normal beyond 30)
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
        11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093,
        20: 2.086, 25: 2.060, 30: 2.042}


def t95(df: int) -> float:
    if df <= 0:
        return math.nan
    if df in _T95:
        return _T95[df]
    return _T95[max(k for k in _T95 if k <= df)] if df < 30 else 1.96


def simulate_day(agents: int, calls_per_30min: float, aht: float, patience: float, target: float, hours: float,
                 seed: int, service: str, sigma: float) -> dict:
    """Run one day; return its counts and measures."""
    rng = random.Random(seed)
    lam = calls_per_30min / 1800.0
    mu_log = math.log(aht) - sigma * sigma / 2  # lognormal with mean exactly `aht`

    def handle_time() -> float:
        if service == "exponential":
            return rng.expovariate(1 / aht)
        return rng.lognormvariate(mu_log, sigma)

    rules = QueueRules(QUEUE, {"check": 1}, wrap_up=timedelta(0), strategy=Strategy.LONGEST_IDLE)
    state = RoutingState(
        {aid: Agent(aid, Presence.AVAILABLE, Work.IDLE, T0, {"check": 1}) for aid in range(1, agents + 1)},
        {}, {QUEUE: rules})
    heap: list = []
    seq = 0

    def push(at: float, kind: str, sid: str | None = None) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(heap, (at, seq, kind, sid))

    arrived: dict[str, float] = {}
    waits: list[float] = []  # answered calls
    abandoned = 0
    decisions = 0
    decide_ns = 0
    horizon = hours * 3600.0

    def run_event(event, at: float) -> None:
        """Hand one event to the engine and carry out its commands at the same instant, as the hub does."""
        nonlocal state, decisions, decide_ns
        pending = [event]
        while pending:
            ev = pending.pop(0)
            now = T0 + timedelta(seconds=at)
            t = time.perf_counter_ns()
            decision = e.decide(state, ev, now)
            decide_ns += time.perf_counter_ns() - t
            decisions += 1
            state = decision.state
            ended = [ev.sid] if isinstance(ev, e.CallHungUp) else []
            for c in decision.commands:
                if isinstance(c, e.SendOffer):
                    pending.append(e.OfferAccepted(c.sid, c.agent_id))  # the agent accepts at once
                elif isinstance(c, e.DialAgent):
                    pending.append(e.AgentJoined(c.sid, c.agent_id))  # and the leg joins at once
                elif isinstance(c, e.StartWrapUp):
                    pending.append(e.WrapUpFinished(c.agent_id, c.sid))  # wrap-up is 0 s
                elif isinstance(c, e.DivertCall):
                    ended.append(c.sid)
            if isinstance(ev, e.AgentJoined):
                waits.append(at - arrived[ev.sid])
                push(at + handle_time(), "hangup", ev.sid)
            if ended:  # the hub's state holds active calls only
                calls = dict(state.calls)
                for sid in ended:
                    calls.pop(sid, None)
                state = replace(state, calls=calls)

    push(rng.expovariate(lam), "arrival")
    n = 0
    while heap:
        at, _, kind, sid = heapq.heappop(heap)
        if kind == "arrival":
            if at >= horizon:
                continue  # the day is over for new calls; the rest drains
            n += 1
            sid = f"CA{n:06d}"
            arrived[sid] = at
            push(at + rng.expovariate(lam), "arrival")
            push(at + rng.expovariate(1 / patience), "patience", sid)
            run_event(e.CallArrived(sid, QUEUE), at)
        elif kind == "patience":
            call = state.calls.get(sid)
            if call is not None and call.state is CallState.WAITING:
                abandoned += 1
                run_event(e.CallHungUp(sid), at)
        else:  # hangup after talk
            run_event(e.CallHungUp(sid), at)
    offered = len(arrived)
    answered = len(waits)
    assert answered + abandoned == offered, (answered, abandoned, offered)
    within = sum(1 for w in waits if w <= target)
    return {
        "seed": seed, "offered": offered, "answered": answered, "abandoned": abandoned,
        "service_level": within / offered if offered else 1.0,
        "asa_s": statistics.fmean(waits) if waits else math.nan,
        "abandon_rate": abandoned / offered if offered else 0.0,
        "decisions": decisions, "decide_us_mean": decide_ns / decisions / 1e3 if decisions else 0.0,
    }


def spread(values: list[float]) -> dict:
    m = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else math.nan
    half = t95(len(values) - 1) * sd / math.sqrt(len(values)) if len(values) > 1 else math.nan
    return {"mean": m, "sd": sd, "ci95": [m - half, m + half], "min": min(values), "max": max(values)}


def run_cell(args, agents: int, service: str) -> dict:
    days = [simulate_day(agents, args.calls_per_30min, args.aht, args.patience, args.target, args.hours,
                         args.seed + d, service, args.sigma) for d in range(args.days)]
    erl = erlang_a(args.calls_per_30min, 1800, args.aht, agents, args.target, args.patience)
    offered = sum(d["offered"] for d in days)
    measured = {
        "service_level": spread([d["service_level"] for d in days]),
        "asa_s": spread([d["asa_s"] for d in days]),
        "abandon_rate": spread([d["abandon_rate"] for d in days]),
    }
    sl_gap_points = 100 * (measured["service_level"]["mean"] - erl.service_level)
    lo, hi = measured["service_level"]["ci95"]
    return {
        "agents": agents, "service": service, "days": args.days, "calls_offered": offered,
        "measured": measured,
        "erlang_a": {"service_level": erl.service_level, "asa_s": erl.average_speed_of_answer,
                     "abandon_rate": erl.probability_of_abandoning, "occupancy": erl.occupancy,
                     "traffic_erlangs": erl.traffic_erlangs},
        "sl_gap_points": sl_gap_points,
        "sl_ci95_gap_points": [100 * (lo - erl.service_level), 100 * (hi - erl.service_level)],
        "within_1_point": abs(sl_gap_points) <= 1.0,
        "decisions": sum(d["decisions"] for d in days),
        "decide_us_mean": statistics.fmean(d["decide_us_mean"] for d in days),
        "per_day": days,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.simulated_day", description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=14)
    ap.add_argument("--calls-per-30min", type=float, default=100.0)
    ap.add_argument("--aht", type=float, default=180.0, help="mean handle time, seconds (talk; wrap-up is 0)")
    ap.add_argument("--patience", type=float, default=120.0, help="callers' mean patience, seconds (exponential)")
    ap.add_argument("--target", type=float, default=20.0, help="service-level target, seconds")
    ap.add_argument("--hours", type=float, default=8.0)
    ap.add_argument("--seed", type=int, default=1, help="first seed; day d uses seed + d")
    ap.add_argument("--days", type=int, default=10)
    ap.add_argument("--service", choices=["lognormal", "exponential"], default="lognormal")
    ap.add_argument("--sigma", type=float, default=0.6, help="lognormal shape (log-space sd) of handle times")
    ap.add_argument("--grid", action="store_true",
                    help="agents 12, 14, 16 x service lognormal and exponential (overrides --agents/--service)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    cells = ([(n, s) for s in ("lognormal", "exponential") for n in (12, 14, 16)] if args.grid
             else [(args.agents, args.service)])
    wall = time.perf_counter()
    results = [run_cell(args, n, s) for n, s in cells]
    wall = time.perf_counter() - wall
    cv = math.sqrt(math.exp(args.sigma ** 2) - 1)
    cond = {**conditions(), "calls_per_30min": args.calls_per_30min, "aht_s": args.aht,
            "patience_s": args.patience, "target_s": args.target, "hours": args.hours, "days": args.days,
            "seeds": f"{args.seed}..{args.seed + args.days - 1}", "lognormal_sigma": args.sigma,
            "lognormal_cv": round(cv, 4), "wrap_up_s": 0, "wall_s": round(wall, 1)}
    if args.json:
        print(json.dumps({"benchmark": "simulated day vs Erlang A", "conditions": cond, "results": results},
                         indent=2))
        return 0
    print(f"simulated day vs Erlang A | {cond['cpu']} ({cond['cpus']} CPUs) | Python {cond['python']} | engine {cond['engine_version']} | load avg at start {cond['loadavg_1_5_15_at_start']}")
    print(f"load {args.calls_per_30min:g} calls/30 min, AHT {args.aht:g} s (talk only, wrap-up 0), patience "
          f"{args.patience:g} s (exponential), target {args.target:g} s, {args.hours:g} h days, {args.days} days, "
          f"seeds {cond['seeds']}; lognormal sigma {args.sigma} (CV {cv:.3f}); wall {cond['wall_s']} s")
    print("\nmeasured: mean over days (95 % CI of the mean); sd = day-to-day standard deviation\n")
    head = (f"{'agents':>6} {'service':<11} {'calls':>6} | {'SL %':>6} {'95% CI':>13} {'sd':>5} {'ErlA':>6}"
            f" {'gap pt':>7} | {'ASA s':>6} {'ErlA':>6} | {'aband %':>7} {'ErlA':>6}")
    print(head)
    print("-" * len(head))
    for r in results:
        m, a = r["measured"], r["erlang_a"]
        sl = m["service_level"]
        print(f"{r['agents']:>6} {r['service']:<11} {r['calls_offered']:>6} | {100 * sl['mean']:6.2f} "
              f"{100 * sl['ci95'][0]:6.2f}-{100 * sl['ci95'][1]:6.2f} {100 * sl['sd']:5.2f} "
              f"{100 * a['service_level']:6.2f} {r['sl_gap_points']:+7.2f} | {m['asa_s']['mean']:6.2f} "
              f"{a['asa_s']:6.2f} | {100 * m['abandon_rate']['mean']:7.2f} {100 * a['abandon_rate']:6.2f}")
    print("\ngap pt = measured mean SL - Erlang A SL, in percentage points (goal: |gap| <= 1)")
    for r in results:
        lo, hi = r["sl_ci95_gap_points"]
        print(f"  {r['agents']} agents, {r['service']}: gap {r['sl_gap_points']:+.2f} pt (95 % CI {lo:+.2f} .. "
              f"{hi:+.2f}); engine {r['decisions']} decisions, mean decide {r['decide_us_mean']:.1f} us")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
