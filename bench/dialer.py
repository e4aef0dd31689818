"""The outbound dialer's pacing core in a simulated shift: occupancy against the 3 % abandon limit.

    python -m bench.dialer [--agents 20 --answer-rate 0.10 --aht 120 --mode predictive --seed 1 --hours 8
                            --seeds 1 --cps 0 --history previous-day] [--grid [--grid-modes predictive]]
                           [--processes 2] [--json]

Discrete-event simulation in virtual time (a heapq of timed events; no sleeping) with the real
`campaigns.pacing.lines_to_dial` in the loop. The model, exactly:

* each dial is a live answer with probability P (`--answer-rate`); a live answer comes U(4, 20) s after
  dialing; any other attempt ends U(5, 30) s after dialing;
* handle time is exponential with mean AHT (`--aht`; no separate wrap-up);
* an answered call waits at most 2 s for a free agent (first come first served), then is abandoned;
* the dialer re-plans on every event and at least every second (a 1 s tick), dialing what the plan says;
* the campaign's history (`--history`, predictive only): `previous-day` (the default) first runs one
  progressive shift of the same length on seed + `PREVIOUS_DAY_SEED`; the measured shift starts from the
  stats learned there, and its 30-day ledger holds that day's answers (today's ledger starts empty). `cold`:
  no stats, an empty ledger. Progressive ignores both. The pacing core sees only what the hub would see:
  agents free, elapsed times of busy agents and ringing lines, and stats learned from outcomes
  (`record_dial` / `record_handle`), published to the planner every `STATS_EVERY_S` seconds as the hub
  would persist them. It never sees P or AHT.
* lines: at most 10 per agent in use at once (ringing + waiting + talking); `--cps` > 0 adds a
  calls-per-second token bucket (0 = unlimited, the default; the table reports dials per second).

Counted over the `--hours` window (default 8, one shift): live answers, abandons (= live answers with no
agent within 2 s), abandon rate = abandons / live answers, occupancy = handling time inside the window /
(agents x window), talk minutes per agent hour (= 60 x occupancy, since there is no wrap-up), dials per
second. After the window no new lines are dialed; lines dialed inside it are followed to their end, so a
line answered a few seconds after the window still counts (as connected or abandoned).
Not a pytest module: nothing here is collected.
"""
from __future__ import annotations

import argparse
import heapq
import json
import multiprocessing
import random
import statistics
import time
from collections import OrderedDict

from bench.conditions import conditions
from campaigns.pacing import (AbandonBudget, DialMode, DialOutcome, DialStats, PacingInput, lines_to_dial,
                              record_dial, record_handle)

STATS_EVERY_S = 30.0
LINES_PER_AGENT = 10
GRID_AGENTS = (5, 10, 20, 50)
GRID_ANSWER_RATES = (0.10, 0.25)
GRID_AHTS = (120.0, 300.0)
GRID_SEEDS = 20
# occupancy goals for predictive, from the issue: (agents, answer rate, AHT) -> minimum mean occupancy
GOALS = {(5, 0.10, 120.0): 0.71, (5, 0.25, 300.0): 0.86, (20, 0.10, 120.0): 0.86, (20, 0.25, 300.0): 0.91,
         (50, 0.10, 120.0): 0.92, (50, 0.25, 300.0): 0.945}
ABANDON_LIMIT = 0.03
HISTORIES = ("previous-day", "cold")
PREVIOUS_DAY_SEED = 1_000_003  # the previous day's shift runs on seed + this


def simulate_shift(agents: int, answer_rate: float, aht: float, mode: str, seed: int, hours: float = 8.0,
                   cps: float = 0.0, history: str = "previous-day") -> dict:
    """Run one shift with the real pacing core; return its counts and measures.

    With `history="previous-day"` (predictive only) the campaign first works one progressive shift of the
    same length on another seed; the measured shift starts from the stats learned there and its ledger holds
    that day's live answers and abandons in the 30-day window. With `"cold"` it starts from nothing.
    """
    if history not in HISTORIES:
        raise ValueError(f"history must be one of {HISTORIES}, not {history!r}")
    stats0, ledger0 = DialStats(), (0, 0)
    if history == "previous-day" and mode == DialMode.PREDICTIVE.value:
        before, stats0 = _shift(agents, answer_rate, aht, DialMode.PROGRESSIVE.value, seed + PREVIOUS_DAY_SEED,
                                hours, cps, stats0, ledger0)
        ledger0 = (before["live"], before["abandons"])
    result, _ = _shift(agents, answer_rate, aht, mode, seed, hours, cps, stats0, ledger0)
    return {**result, "history": history if mode == DialMode.PREDICTIVE.value else "cold"}


def _shift(agents: int, answer_rate: float, aht: float, mode: str, seed: int, hours: float, cps: float,
           stats0: DialStats, ledger0: tuple[int, int]) -> tuple[dict, DialStats]:
    """Simulate one shift from the given stats and earlier ledger; return its measures and final stats."""
    rng = random.Random(seed)
    dial_mode = DialMode(mode)
    horizon = hours * 3600.0
    heap: list = []
    seq = 0

    def push(at: float, kind: str, ref: int) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(heap, (at, seq, kind, ref))

    free = agents
    busy: dict[int, float] = {}  # call id -> connect time
    ringing: dict[int, float] = {}  # line id -> dial time
    waiting: OrderedDict[int, float] = OrderedDict()  # answered line id -> answer time
    stats = stats0
    published = stats
    next_publish = STATS_EVERY_S
    dials = live = abandons = 0
    handled_s = 0.0
    tokens = cps
    plans = 0
    plan_ns = 0
    max_ringing = 0

    def connect(ref: int, at: float) -> None:
        nonlocal handled_s
        h = rng.expovariate(1.0 / aht)
        busy[ref] = at
        push(at + h, "hangup", ref)
        if at < horizon:
            handled_s += min(at + h, horizon) - at

    def plan(at: float) -> None:
        nonlocal dials, plans, plan_ns, tokens, max_ringing
        if at >= horizon:
            return
        cap = agents * LINES_PER_AGENT - len(ringing) - len(waiting) - len(busy)
        if cps > 0:
            cap = min(cap, int(tokens))
        inp = PacingInput(dial_mode, free, tuple(at - s for s in busy.values()),
                          tuple(at - s for s in ringing.values()), published,
                          AbandonBudget(ledger0[0] + live, ledger0[1] + abandons, live, abandons), max(0, cap),
                          len(waiting))
        t = time.perf_counter_ns()
        p = lines_to_dial(inp)
        plan_ns += time.perf_counter_ns() - t
        plans += 1
        for _ in range(p.lines_covered + p.lines_ahead):
            dials += 1
            ringing[dials] = at
            if rng.random() < answer_rate:
                push(at + rng.uniform(4.0, 20.0), "live", dials)
            else:
                push(at + rng.uniform(5.0, 30.0), "fail", dials)
        tokens -= p.lines_covered + p.lines_ahead
        max_ringing = max(max_ringing, len(ringing))

    push(0.0, "tick", 0)
    while heap:
        at, _, kind, ref = heapq.heappop(heap)
        if kind == "tick":
            if at < horizon:
                push(at + 1.0, "tick", 0)
                tokens = min(cps, tokens + cps) if cps > 0 else tokens
        elif kind == "live":
            stats = record_dial(stats, DialOutcome.LIVE, at - ringing.pop(ref))
            live += 1
            if free:
                free -= 1
                connect(ref, at)
            else:
                waiting[ref] = at
                push(at + 2.0, "abandon", ref)
        elif kind == "fail":
            stats = record_dial(stats, DialOutcome.FAILED, at - ringing.pop(ref))
        elif kind == "abandon":
            if waiting.pop(ref, None) is not None:
                abandons += 1
        else:  # hangup
            stats = record_handle(stats, at - busy.pop(ref))
            if waiting:
                wref, _ = waiting.popitem(last=False)
                connect(wref, at)
            else:
                free += 1
        if at >= next_publish:
            published = stats
            next_publish = at + STATS_EVERY_S
        plan(at)
        if at > horizon and not ringing and not waiting:
            break
    occupancy = handled_s / (agents * horizon)
    return ({"agents": agents, "answer_rate": answer_rate, "aht_s": aht, "mode": mode, "seed": seed,
            "hours": hours, "dials": dials, "live": live, "abandons": abandons,
            "abandon_rate": abandons / live if live else 0.0, "occupancy": occupancy,
            "talk_min_per_agent_hour": 60.0 * occupancy, "dials_per_s": dials / horizon,
            "max_lines_ringing": max_ringing, "plans": plans,
            "plan_us_mean": plan_ns / plans / 1e3 if plans else 0.0,
            "learned_answer_rate": round(stats.answer_rate, 4), "learned_aht_s": round(stats.mean_handle_s, 1)}, stats)


def _run(task: tuple) -> dict:
    return simulate_shift(*task)


def summarise(runs: list[dict]) -> dict:
    """Mean and extremes over seeds for one (cell, mode)."""
    occ = [r["occupancy"] for r in runs]
    ab = [r["abandon_rate"] for r in runs]
    return {"seeds": len(runs), "occupancy_mean": statistics.fmean(occ), "occupancy_min": min(occ),
            "abandon_mean": statistics.fmean(ab), "abandon_max": max(ab),
            "talk_min_per_agent_hour_mean": statistics.fmean(r["talk_min_per_agent_hour"] for r in runs),
            "talk_min_per_agent_hour_min": min(r["talk_min_per_agent_hour"] for r in runs),
            "dials_per_s_mean": statistics.fmean(r["dials_per_s"] for r in runs),
            "dials_per_s_max": max(r["dials_per_s"] for r in runs),
            "plan_us_mean": statistics.fmean(r["plan_us_mean"] for r in runs)}


def run_grid(cells: list[tuple[int, float, float]], modes: list[str], seeds: list[int], hours: float, cps: float,
             processes: int, history: str = "previous-day") -> list[dict]:
    """Run every (cell, mode, seed); return one summary row per (cell, mode) with its goal reading."""
    tasks = [(n, p, a, m, s, hours, cps, history) for (n, p, a) in cells for m in modes for s in seeds]
    tasks.sort(key=lambda t: -(t[0] / t[2] / t[1]) * (t[3] == "predictive" or 0.3))  # longest first
    if processes > 1:
        with multiprocessing.Pool(processes) as pool:
            runs = pool.map(_run, tasks, chunksize=1)
    else:
        runs = [_run(t) for t in tasks]
    rows = []
    for (n, p, a) in cells:
        by_mode = {m: summarise([r for r in runs if (r["agents"], r["answer_rate"], r["aht_s"], r["mode"])
                                 == (n, p, a, m)]) for m in modes}
        row = {"agents": n, "answer_rate": p, "aht_s": a, **{m: by_mode[m] for m in modes}}
        if "predictive" in by_mode:
            pr = by_mode["predictive"]
            goal = GOALS.get((n, p, a))
            row["occupancy_goal"] = goal
            row["abandon_ok_every_seed"] = pr["abandon_max"] <= ABANDON_LIMIT
            row["occupancy_ok"] = goal is None or pr["occupancy_mean"] >= goal
            if "progressive" in by_mode:
                row["above_progressive"] = pr["occupancy_mean"] > by_mode["progressive"]["occupancy_mean"]
            row["goals_met"] = all(row.get(k, True) for k in ("abandon_ok_every_seed", "occupancy_ok",
                                                               "above_progressive"))
        rows.append(row)
    return rows


def print_table(rows: list[dict], modes: list[str]) -> None:
    head = (f"{'N':>3} {'P':>5} {'AHT':>4} {'mode':<11} | {'occ mean':>8} {'occ min':>7} | {'aband mean':>10}"
            f" {'aband max':>9} | {'talk min/ag-h':>13} | {'dials/s':>7} | goal")
    print(head)
    print("-" * len(head))
    for r in rows:
        for m in modes:
            s = r[m]
            if m == "predictive":
                goal = r.get("occupancy_goal")
                verdict = ("MET" if r.get("goals_met") else "NOT MET") + (f" (>= {goal})" if goal else "")
            else:
                verdict = ""
            print(f"{r['agents']:>3} {r['answer_rate']:>5.2f} {r['aht_s']:>4.0f} {m:<11} | "
                  f"{s['occupancy_mean']:8.3f} {s['occupancy_min']:7.3f} | {100 * s['abandon_mean']:9.2f}%"
                  f" {100 * s['abandon_max']:8.2f}% | {s['talk_min_per_agent_hour_mean']:13.1f} | "
                  f"{s['dials_per_s_mean']:7.3f} | {verdict}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.dialer", description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=20)
    ap.add_argument("--answer-rate", type=float, default=0.10, help="P: share of dials that reach a live person")
    ap.add_argument("--aht", type=float, default=120.0, help="mean handle time, seconds (exponential)")
    ap.add_argument("--mode", choices=[m.value for m in DialMode], default="predictive")
    ap.add_argument("--seed", type=int, default=1, help="first seed; run i uses seed + i")
    ap.add_argument("--seeds", type=int, default=1, help="number of seeds (shifts) to run")
    ap.add_argument("--hours", type=float, default=8.0, help="length of the shift in virtual hours")
    ap.add_argument("--cps", type=float, default=0.0, help="calls-per-second cap (0 = none)")
    ap.add_argument("--history", choices=HISTORIES, default="previous-day",
                    help="predictive: start from a previous (progressive) day's stats and ledger, or cold")
    ap.add_argument("--grid", action="store_true",
                    help=f"agents {GRID_AGENTS} x P {GRID_ANSWER_RATES} x AHT {GRID_AHTS} x {GRID_SEEDS} seeds, "
                         "predictive and progressive")
    ap.add_argument("--grid-modes", default="predictive,progressive",
                    help="--grid: comma-separated modes to run (progressive is unchanged by pacing work and "
                         "deterministic per seed, so it need not be rerun)")
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    wall = time.perf_counter()
    cond = {**conditions(), "hours": args.hours, "history": args.history, "cps_cap": args.cps or None,
            "stats_published_every_s": STATS_EVERY_S,
            "lines_per_agent": LINES_PER_AGENT, "processes": args.processes,
            "model": "live U(4,20) s w.p. P; other U(5,30) s; handle Exp(AHT); abandon after 2 s without an agent"}
    if args.grid:
        cells = [(n, p, a) for n in GRID_AGENTS for p in GRID_ANSWER_RATES for a in GRID_AHTS]
        modes = [m.strip() for m in args.grid_modes.split(",") if m.strip()]
        seeds = list(range(args.seed, args.seed + GRID_SEEDS))
        rows = run_grid(cells, modes, seeds, args.hours, args.cps, args.processes, args.history)
        cond["seeds"] = f"{seeds[0]}..{seeds[-1]}"
        cond["wall_s"] = round(time.perf_counter() - wall, 1)
        if args.json:
            print(json.dumps({"benchmark": "dialer pacing grid", "conditions": cond, "rows": rows}, indent=2))
            return 0
        print(f"dialer pacing grid | {cond['cpu']} ({cond['cpus']} CPUs) | Python {cond['python']} | code "
              f"{cond['engine_version']} | load avg at start {cond['loadavg_1_5_15_at_start']} | "
              f"{args.hours:g} h shifts, seeds {cond['seeds']}, history {args.history} | wall {cond['wall_s']} s\n")
        print_table(rows, modes)
        return 0
    seeds = list(range(args.seed, args.seed + args.seeds))
    tasks = [(args.agents, args.answer_rate, args.aht, args.mode, s, args.hours, args.cps, args.history)
             for s in seeds]
    if args.processes > 1 and len(tasks) > 1:
        with multiprocessing.Pool(args.processes) as pool:
            runs = pool.map(_run, tasks, chunksize=1)
    else:
        runs = [_run(t) for t in tasks]
    cond["wall_s"] = round(time.perf_counter() - wall, 1)
    out = {"benchmark": "dialer pacing", "conditions": {**cond, "args": vars(args)},
           "summary": summarise(runs), "runs": runs}
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"dialer pacing | {args.mode}, {args.agents} agents, P {args.answer_rate}, AHT {args.aht:g} s, "
          f"{args.hours:g} h, history {args.history} | Python {cond['python']} | wall {cond['wall_s']} s")
    for r in runs:
        print(f"  seed {r['seed']}: occupancy {r['occupancy']:.3f}, talk {r['talk_min_per_agent_hour']:.1f} min/agent-h,"
              f" abandon {100 * r['abandon_rate']:.2f}% ({r['abandons']}/{r['live']}), {r['dials_per_s']:.3f} dials/s,"
              f" plan {r['plan_us_mean']:.0f} us")
    s = out["summary"]
    print(f"  mean occupancy {s['occupancy_mean']:.3f} (min {s['occupancy_min']:.3f}), abandon max "
          f"{100 * s['abandon_max']:.2f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
