"""Routing engine throughput and latency at contact-centre scale.

    python -m bench.engine [--agents 1000 --queues 50 --waiting 10000 --decisions 20000 --seed 1 --json]
                           [--profile]

Builds a seeded state (queues each needing one skill, some with escalation and a max wait; agents with
1-4 skills at levels 1-5, nearly all busy; `--waiting` callers in line), then replays a seeded
discrete-event mix through `routing.engine.decide` in virtual time, exactly as the hub would feed it:
arrivals (Poisson, rate steered to keep the line near `--waiting`), offers answered (accept, decline or
no answer), the expiry timer of every offer (the hub schedules one per SendOffer, most turn out stale),
agent legs joining, hang-ups after talk, wrap-ups ending, waiting callers abandoning, breaks and
returns, and the Ticks the engine asks for with ScheduleTick. Ended calls are dropped from the state
between decisions, as the hub's `load_state` only reads active calls. Only `decide` is timed, with
`time.perf_counter_ns`. Not a pytest module: nothing here is collected.
"""
from __future__ import annotations

import argparse
import cProfile
import heapq
import io
import json
import math
import pstats
import random
import statistics
import time
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bench.conditions import conditions
from routing import engine as e
from routing.model import Agent, Call, Divert, Diversion, EscalationStep, QueueRules, RoutingState, Strategy
from routing.states import CallState, Presence, Work

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

# Model parameters (seconds unless stated); printed with the results.
PARAMS = {
    "talk_mean_s": 300.0,  # lognormal talk time, sigma below
    "talk_sigma": 0.6,
    "patience_mean_s": 1800.0,  # exponential patience of waiting callers
    "p_accept": 0.85,  # an offer is accepted after U(1, 8) s ...
    "p_decline": 0.05,  # ... declined after U(1, 5) s, otherwise left to expire (offer_timeout)
    "join_delay_s": (2.0, 6.0),  # accepted -> agent leg joins
    "breaks_per_agent_hour": 0.5,  # breaks of U(300, 900) s; some agents log off and on instead
    "p_preferred": 0.10,  # arrivals naming 1-2 preferred agents
    "tiers": {"gold": 0.05, "silver": 0.15},
}


# ---------------------------------------------------------------- the starting state


def build_queues(rng: random.Random, n_queues: int) -> dict[str, QueueRules]:
    names = [f"Q{i:02d}" for i in range(n_queues)]
    queues: dict[str, QueueRules] = {}
    # overflow targets never have a max wait themselves, so a diverted call cannot bounce back
    overflow_ok = [q for i, q in enumerate(names) if i % 5 != 0]
    for i, name in enumerate(names):
        skill = f"s{i:02d}"
        level = rng.choice([1, 1, 1, 2, 2, 3])
        escalation: tuple[EscalationStep, ...] = ()
        if i % 5 in (1, 2):  # 40 %: start at level 2-3, widen to one level less after 30 s, to level 1 after 120 s
            # (a step replaces the requirement, so a wider step must be easier to meet)
            level = rng.choice([2, 3])
            escalation = (EscalationStep(timedelta(seconds=30), {skill: level - 1}),
                          EscalationStep(timedelta(seconds=120), {skill: 1}))
        max_wait = overflow = None
        if i % 5 == 0:  # 20 %: a maximum wait of 15 min, then another queue or voicemail
            max_wait = timedelta(minutes=15)
            overflow = (Diversion(Divert.QUEUE, rng.choice([q for q in overflow_ok if q != name]))
                        if rng.random() < 0.5 else Diversion(Divert.VOICEMAIL))
        queues[name] = QueueRules(
            name, {skill: level}, offer_timeout=timedelta(seconds=15),
            wrap_up=timedelta(seconds=rng.choice([30, 60, 90])), strategy=rng.choice(list(Strategy)),
            escalation=escalation, max_wait=max_wait, overflow=overflow)
    return queues


def build_agents(rng: random.Random, n_agents: int, queues: dict[str, QueueRules],
                 allow_unqualified: bool) -> dict[int, dict]:
    """Skills only (1-4 queue skills at levels 1-5); work is assigned when the state is built.

    Unless `allow_unqualified`, an agent whose levels meet no queue's base requirement is redrawn: a
    centre does not staff people who can take no call, and such an agent, once free, stays free.
    """
    rules = list(queues.values())
    n_queues = len(rules)
    skills = {}
    for aid in range(1, n_agents + 1):
        while True:
            k = rng.choice([1, 2, 2, 3, 3, 4])
            own = {f"s{q:02d}": rng.randint(1, 5) for q in rng.sample(range(n_queues), k)}
            if allow_unqualified or any(all(own.get(s, 0) >= lvl for s, lvl in r.skills.items()) for r in rules):
                break
        skills[aid] = own
    return skills


class Bench:
    """The event loop: virtual time, a heap of timed events, the engine's commands turned into events."""

    def __init__(self, args) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.queues = build_queues(self.rng, args.queues)
        self.queue_names = list(self.queues)
        # a skewed queue mix: a few big queues, a long tail
        self.queue_weights = [1 / (i + 1) ** 0.7 for i in range(len(self.queue_names))]
        self.heap: list = []
        self.seq = 0
        self.now = T0
        self.n_sid = 0
        self.scheduled_ticks: set[tuple[str, datetime]] = set()
        self.counts: Counter = Counter()
        self.latency: dict[str, list[int]] = defaultdict(list)
        self.all_ns: list[int] = []
        self.sizes: list[tuple[int, int, int]] = []  # (waiting, free agents, calls in state) before each decision
        self.state = self._build_state()

    # -------------------------------------------------- helpers

    def push(self, at: datetime, event) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (at, self.seq, event))

    def new_sid(self) -> str:
        self.n_sid += 1
        return f"CA{self.n_sid:08d}"

    def talk(self) -> timedelta:
        sigma = PARAMS["talk_sigma"]
        mu = math.log(PARAMS["talk_mean_s"]) - sigma * sigma / 2
        return timedelta(seconds=self.rng.lognormvariate(mu, sigma))

    def pick_queue(self) -> str:
        return self.rng.choices(self.queue_names, self.queue_weights)[0]

    def _build_state(self) -> RoutingState:
        rng, args = self.rng, self.args
        skills = build_agents(rng, args.agents, self.queues, args.allow_unqualified)
        agents: dict[int, Agent] = {}
        calls: dict[str, Call] = {}
        for aid, own in skills.items():
            r = rng.random()
            idle_since = T0 - timedelta(seconds=rng.uniform(0, 3600))
            if r < 0.03:
                agents[aid] = Agent(aid, Presence.OFFLINE, Work.IDLE, idle_since, own)
                continue
            if r < 0.06:
                agents[aid] = Agent(aid, Presence.BREAK, Work.IDLE, idle_since, own, break_reason="lunch")
                self.push(T0 + timedelta(seconds=rng.uniform(0, 900)), e.PresenceChanged(aid, Presence.AVAILABLE))
                continue
            # busy: on a call in one of their queues (or a random one), or in wrap-up
            sid = self.new_sid()
            mine = [q for q in self.queue_names if self.queues[q].skills.keys() & own.keys()] or self.queue_names
            queue = rng.choice(mine)
            if rng.random() < 0.8:
                calls[sid] = Call(sid, queue, T0 - timedelta(seconds=rng.uniform(300, 3600)),
                                  state=CallState.CONNECTED, agent_id=aid)
                agents[aid] = Agent(aid, Presence.AVAILABLE, Work.ON_CALL, idle_since, own, call_sid=sid)
                self.push(T0 + timedelta(seconds=rng.expovariate(1 / PARAMS["talk_mean_s"])), e.CallHungUp(sid))
            else:
                agents[aid] = Agent(aid, Presence.AVAILABLE, Work.WRAP_UP, idle_since, own, call_sid=sid)
                self.push(T0 + timedelta(seconds=rng.uniform(0, 60)), e.WrapUpFinished(aid, sid))
        for _ in range(args.waiting):
            sid = self.new_sid()
            queue = self.pick_queue()
            rules = self.queues[queue]
            horizon = rules.max_wait.total_seconds() if rules.max_wait else 3600.0
            arrived = T0 - timedelta(seconds=rng.uniform(0, horizon * 0.98))
            tier = self._tier()
            calls[sid] = Call(sid, queue, arrived, priority=RoutingStateDefaults.tiers.get(tier or "", timedelta(0)))
            self.push(T0 + timedelta(seconds=rng.expovariate(1 / PARAMS["patience_mean_s"])), e.CallHungUp(sid))
            for at in self._rule_changes(rules, arrived, ()):
                if at > T0:
                    self._schedule_tick(sid, at)
        return RoutingState(agents, calls, self.queues)

    def _tier(self) -> str | None:
        r = self.rng.random()
        if r < PARAMS["tiers"]["gold"]:
            return "gold"
        if r < PARAMS["tiers"]["gold"] + PARAMS["tiers"]["silver"]:
            return "silver"
        return None

    @staticmethod
    def _rule_changes(rules: QueueRules, arrived: datetime, preferred) -> list[datetime]:
        moments = [arrived + s.after for s in rules.escalation]
        if preferred:
            moments.append(arrived + rules.preferred_window)
        if rules.max_wait is not None:
            moments.append(arrived + rules.max_wait)
        return moments

    def _schedule_tick(self, sid: str, at: datetime) -> None:
        key = (sid, at)  # the hub's job id is tick-<sid>-<epoch>: one job per call and moment
        if key not in self.scheduled_ticks:
            self.scheduled_ticks.add(key)
            self.push(at, e.Tick(sid))  # the hub's tick job names its call

    # -------------------------------------------------- arrivals steered to keep the line near --waiting

    def waiting_count(self) -> int:
        return self._waiting

    def arrival_rate(self) -> float:
        busy = self.args.agents * 0.9
        base = busy / (PARAMS["talk_mean_s"] + 65) + self.args.waiting / PARAMS["patience_mean_s"]
        gap = (self.args.waiting - self._waiting) / max(self.args.waiting, 1)
        return base * min(3.0, max(0.2, math.exp(8 * gap)))

    def schedule_next_arrival(self) -> None:
        self.push(self.now + timedelta(seconds=self.rng.expovariate(self.arrival_rate())), "arrival")

    def presence_rate(self) -> float:
        return self.args.agents * PARAMS["breaks_per_agent_hour"] / 3600

    # -------------------------------------------------- the loop

    def relevant(self, event) -> bool:
        """Drop events that the real world would not send any more (the caller already left, ...)."""
        calls = self.state.calls
        if isinstance(event, (e.OfferAccepted, e.OfferDeclined)):
            call = calls.get(event.sid)
            return (call is not None and call.state is CallState.OFFERED and call.agent_id == event.agent_id
                    and self.now < call.offer_expires_at)
        if isinstance(event, e.AgentJoined):
            call = calls.get(event.sid)
            return call is not None and call.state is CallState.CONNECTING and call.agent_id == event.agent_id
        if isinstance(event, e.CallHungUp):
            return event.sid in calls  # ended calls were dropped from the state
        return True

    def run(self, decisions: int, profiler: cProfile.Profile | None = None, budget_s: float = math.inf) -> None:
        self._waiting = sum(1 for c in self.state.calls.values() if c.state is CallState.WAITING)
        self._since_count = 0
        self.schedule_next_arrival()
        self.push(self.now + timedelta(seconds=self.rng.expovariate(self.presence_rate())), "presence")
        done = 0
        deadline = time.perf_counter() + budget_s
        while done < decisions and not (done % 100 == 0 and time.perf_counter() > deadline):
            at, _, event = heapq.heappop(self.heap)
            self.now = at
            if event == "arrival":
                self.schedule_next_arrival()
                rules_pref = ()
                if self.rng.random() < PARAMS["p_preferred"]:
                    rules_pref = tuple(self.rng.sample(range(1, self.args.agents + 1), self.rng.choice([1, 2])))
                event = e.CallArrived(self.new_sid(), self.pick_queue(), self._tier(), rules_pref)
                self.push(at + timedelta(seconds=self.rng.expovariate(1 / PARAMS["patience_mean_s"])),
                          e.CallHungUp(event.sid))
            elif event == "presence":
                self.push(at + timedelta(seconds=self.rng.expovariate(self.presence_rate())), "presence")
                event = self._presence_event()
                if event is None:
                    continue
            if not self.relevant(event):
                self.counts["skipped:" + type(event).__name__] += 1
                continue
            free = sum(1 for a in self.state.agents.values() if a.is_free())
            self.sizes.append((self._waiting, free, len(self.state.calls)))
            if profiler is not None:
                profiler.enable()
            t = time.perf_counter_ns()
            decision = e.decide(self.state, event, at)
            ns = time.perf_counter_ns() - t
            if profiler is not None:
                profiler.disable()
            name = type(event).__name__
            self.latency[name].append(ns)
            self.all_ns.append(ns)
            self.counts[name] += 1
            done += 1
            self.state = decision.state
            self.carry_out(event, decision.commands)

    def _presence_event(self):
        aid = self.rng.randint(1, self.args.agents)
        agent = self.state.agents[aid]
        if agent.presence is not Presence.AVAILABLE:
            return e.PresenceChanged(aid, Presence.AVAILABLE)
        back = at = self.now + timedelta(seconds=self.rng.uniform(300, 900))
        if self.rng.random() < 0.2:
            self.push(back, e.PresenceChanged(aid, Presence.AVAILABLE))
            return e.PresenceChanged(aid, Presence.OFFLINE)
        self.push(at, e.PresenceChanged(aid, Presence.AVAILABLE))
        return e.PresenceChanged(aid, Presence.BREAK, self.rng.choice(["coffee", "training", "lunch"]))

    def carry_out(self, event, commands) -> None:
        rng, now = self.rng, self.now
        ended: set[str] = set()
        if isinstance(event, e.CallHungUp):
            ended.add(event.sid)
        for c in commands:
            if isinstance(c, e.SendOffer):
                self.push(c.expires_at, e.OfferExpired(c.sid, c.agent_id, c.expires_at))  # the hub's timer
                r = rng.random()
                if r < PARAMS["p_accept"]:
                    self.push(now + timedelta(seconds=rng.uniform(1, 8)), e.OfferAccepted(c.sid, c.agent_id))
                elif r < PARAMS["p_accept"] + PARAMS["p_decline"]:
                    self.push(now + timedelta(seconds=rng.uniform(1, 5)), e.OfferDeclined(c.sid, c.agent_id))
            elif isinstance(c, e.DialAgent):
                lo, hi = PARAMS["join_delay_s"]
                self.push(now + timedelta(seconds=rng.uniform(lo, hi)), e.AgentJoined(c.sid, c.agent_id))
            elif isinstance(c, e.StartWrapUp):
                self.push(c.until, e.WrapUpFinished(c.agent_id, c.sid))
            elif isinstance(c, e.ScheduleTick):
                self._schedule_tick(c.sid, c.at)
            elif isinstance(c, e.DivertCall):
                ended.add(c.sid)
        if isinstance(event, e.AgentJoined):
            self.push(now + self.talk(), e.CallHungUp(event.sid))
        if ended:
            calls = dict(self.state.calls)
            for sid in ended:
                calls.pop(sid, None)
            self.state = replace(self.state, calls=calls)
        # the waiting count steers arrivals; recounted (O(n), outside the timed call) every 20 decisions
        self._since_count += 1
        if self._since_count >= 20:
            self._since_count = 0
            self._waiting = sum(1 for c in self.state.calls.values() if c.state is CallState.WAITING)


class RoutingStateDefaults:
    tiers = {"gold": timedelta(seconds=120), "silver": timedelta(seconds=45)}


# ---------------------------------------------------------------- reporting


def pct(sorted_ns: list[int], p: float) -> float:
    """Nearest-rank percentile, in milliseconds."""
    if not sorted_ns:
        return float("nan")
    k = max(0, min(len(sorted_ns) - 1, math.ceil(p / 100 * len(sorted_ns)) - 1))
    return sorted_ns[k] / 1e6


def summary(ns: list[int]) -> dict:
    s = sorted(ns)
    return {"n": len(s), "mean_ms": statistics.fmean(s) / 1e6 if s else float("nan"), "p50_ms": pct(s, 50),
            "p90_ms": pct(s, 90), "p99_ms": pct(s, 99), "max_ms": s[-1] / 1e6 if s else float("nan")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.engine", description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=1000)
    ap.add_argument("--queues", type=int, default=50)
    ap.add_argument("--waiting", type=int, default=10000)
    ap.add_argument("--decisions", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--goal-p99-ms", type=float, default=5.0)
    ap.add_argument("--budget-s", type=float, default=100.0,
                    help="stop replaying after this many wall seconds even if fewer decisions were made")
    ap.add_argument("--allow-unqualified", action="store_true",
                    help="keep agents whose skills meet no queue (once free they stay free; see the docs)")
    ap.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    ap.add_argument("--profile", action="store_true", help="also profile decide (cProfile, top 15 cumulative)")
    args = ap.parse_args(argv)

    wall = time.perf_counter()
    bench = Bench(args)
    build_s = time.perf_counter() - wall
    profiler = cProfile.Profile() if args.profile else None
    wall = time.perf_counter()
    bench.run(args.decisions, profiler, args.budget_s)
    run_s = time.perf_counter() - wall

    total = summary(bench.all_ns)
    busy_s = sum(bench.all_ns) / 1e9
    waiting = [w for w, _, _ in bench.sizes]
    free = [f for _, f, _ in bench.sizes]
    in_state = [n for _, _, n in bench.sizes]
    result = {
        "benchmark": "routing engine decide()",
        "conditions": {**conditions(), "agents": args.agents, "queues": args.queues, "waiting_target": args.waiting,
                       "decisions_asked": args.decisions,
                       "decisions_made": len(bench.all_ns), "budget_s": args.budget_s,
                       "allow_unqualified": args.allow_unqualified, "seed": args.seed, "profiled": args.profile,
                       "model": PARAMS},
        "state_during_run": {
            # waiting is recounted every 20 decisions, so these are to within ~20 calls
            "waiting_min": min(waiting), "waiting_mean": round(statistics.fmean(waiting)), "waiting_max": max(waiting),
            "free_agents_mean": round(statistics.fmean(free), 1), "free_agents_max": max(free),
            "share_of_decisions_with_a_free_agent": round(sum(1 for f in free if f) / len(free), 3),
            "calls_in_state_mean": round(statistics.fmean(in_state)),
            "virtual_time_s": round((bench.now - T0).total_seconds(), 1),
        },
        "event_mix": {k: v for k, v in sorted(bench.counts.items(), key=lambda kv: -kv[1])},
        "results": {
            "decisions_per_s": round(len(bench.all_ns) / busy_s, 1),  # back to back, decide time only
            **{k: round(v, 3) if isinstance(v, float) else v for k, v in total.items()},
            "goal_p99_ms": args.goal_p99_ms, "goal_met": total["p99_ms"] <= args.goal_p99_ms,
        },
        "per_event": {name: {k: round(v, 3) if isinstance(v, float) else v for k, v in summary(ns).items()}
                      for name, ns in sorted(bench.latency.items())},
        "wall_s": {"build": round(build_s, 2), "run": round(run_s, 2)},
    }
    profile_text = None
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(15)
        profile_text = out.getvalue()
        result["profile_top15_cumulative"] = profile_text
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    c = result["conditions"]
    print(f"routing engine decide() | {c['cpu']} ({c['cpus']} CPUs) | Python {c['python']} | {c['platform']} | load avg at start {c['loadavg_1_5_15_at_start']} | engine {c['engine_version']}")
    print(f"agents {args.agents}, queues {args.queues}, waiting target {args.waiting}, decisions {len(bench.all_ns)} of {args.decisions} asked "
          f"(budget {args.budget_s} s), unqualified agents {'allowed' if args.allow_unqualified else 'redrawn'}, seed {args.seed}{' (profiled: times inflated)' if args.profile else ''}")
    print("model: " + ", ".join(f"{k}={v}" for k, v in PARAMS.items()))
    print("state during run: " + ", ".join(f"{k} {v}" for k, v in result["state_during_run"].items()))
    print("event mix: " + ", ".join(f"{k} {v}" for k, v in result["event_mix"].items()))
    r = result["results"]
    print(f"\ndecisions/s {r['decisions_per_s']}  (1 / mean decide time, one core)")
    print(f"latency ms: p50 {r['p50_ms']}  p90 {r['p90_ms']}  p99 {r['p99_ms']}  max {r['max_ms']}  mean {r['mean_ms']}")
    print(f"goal p99 <= {args.goal_p99_ms} ms: {'MET' if r['goal_met'] else 'NOT MET'}")
    print(f"\n{'event':<16}{'n':>7}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for name, s in result["per_event"].items():
        print(f"{name:<16}{s['n']:>7}{s['p50_ms']:>10.3f}{s['p90_ms']:>10.3f}{s['p99_ms']:>10.3f}{s['max_ms']:>10.3f}")
    print(f"\nwall: build {result['wall_s']['build']} s, run {result['wall_s']['run']} s")
    if profile_text:
        print("\n" + profile_text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
