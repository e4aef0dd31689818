"""How long the wallboard's snapshot and a month's report take on a busy day's data.

    python -m bench.wallboard [--today 2000 --older 20000 --agents 30 --repeat 10 --seed 1]
                              [--database-url postgresql://postgres@127.0.0.1:5432/bench_wallboard]

Seeds an empty database (a temporary SQLite file unless --database-url names an empty one, which is
migrated first) with three queues, `--agents` agents, 500 customers and customer calls: `--today` spread
over the 17 hours before 17:00 UTC (90 % answered, exponential waits (mean 20 s) and talk (mean 180 s),
a disposition 20 s after hang-up) and `--older` over the 120 days before. Then times `hub.snapshots.board`
(what the feed publishes at most twice a second) and `hub.metrics.report` for the last 30 days in
Europe/Paris, `--repeat` times each, and prints the median and the worst with the conditions.
Not a pytest module: nothing here is collected.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bench.conditions import conditions
from hub import metrics
from hub.admin import add_agent, add_queue
from hub.db import make_engine, make_session_factory, transaction
from hub.migrate import upgrade
from hub.models import Call, Customer, TimelineEntry
from hub.snapshots import board

NOW = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)


def seed(sessions, rng: random.Random, today: int, older: int, agents: int) -> None:
    with transaction(sessions) as s:
        queues = [add_queue(s, name, f"+1415555010{i}", {name.lower(): 1})
                  for i, name in enumerate(("Support", "Sales", "Billing"))]
        staff = [add_agent(s, f"a{i}", f"Agent {i}", "password1", "agent",
                           {"support": 1, "sales": 1, "billing": 1}) for i in range(agents)]
        for agent in staff:
            agent.presence = "available"
        customers = [Customer(name=f"Customer {i}") for i in range(500)]
        s.add_all(customers)
        s.flush()
        for i in range(today + older):
            created = (NOW - timedelta(seconds=rng.uniform(0, 17 * 3600)) if i < today
                       else NOW - timedelta(days=rng.uniform(1, 120)))
            wait, talk = rng.expovariate(1 / 20), rng.expovariate(1 / 180)
            answered = rng.random() < 0.9
            customer = customers[rng.randrange(len(customers))]
            ended = created + timedelta(seconds=wait + (talk if answered else 0))
            call = Call(sid=f"CA{i:032x}", leg="customer", direction="inbound", from_number="+12125550001",
                        to_number="+14155550100", customer_id=customer.id, queue_id=queues[i % 3].id,
                        agent_id=staff[i % agents].id if answered else None, status="completed",
                        created_at=created, routing_state="ended", ended_at=ended,
                        connected_at=created + timedelta(seconds=wait) if answered else None,
                        wrap_up_until=ended + timedelta(seconds=60) if answered else None)
            s.add(call)
            if answered:
                s.flush()
                s.add(TimelineEntry(customer_id=customer.id, kind="disposition", call_id=call.id,
                                    occurred_at=ended + timedelta(seconds=20), summary="Disposition: resolved"))


def timed(fn, repeat: int) -> dict[str, float]:
    fn()  # warm caches and the connection
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return {"median_ms": round(statistics.median(samples), 1), "max_ms": round(max(samples), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--today", type=int, default=2000)
    parser.add_argument("--older", type=int, default=20000)
    parser.add_argument("--agents", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        engine = make_engine(url)
        sessions = make_session_factory(engine)
        seed(sessions, random.Random(args.seed), args.today, args.older, args.agents)

        def snapshot():
            with transaction(sessions) as session:
                board(session, NOW)

        def month():
            with transaction(sessions) as session:
                metrics.report(session, (NOW - timedelta(days=29)).date(), NOW.date(), ZoneInfo("Europe/Paris"), NOW)

        results = {"board": timed(snapshot, args.repeat), "report_30_days": timed(month, args.repeat)}
        engine.dispose()
    print(json.dumps({"conditions": {**conditions(), "database": url.split(":")[0], "calls_today": args.today,
                                     "calls_older": args.older, "agents": args.agents, "repeat": args.repeat,
                                     "seed": args.seed},
                      "results": results}, indent=2))


if __name__ == "__main__":
    main()
