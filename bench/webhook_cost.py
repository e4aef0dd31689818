"""What one webhook costs the web process: CPU milliseconds and SQL statements, by kind, in one process.

    python -m bench.webhook_cost [--calls 400 --waiting 100 --agents 20 --database postgresql|sqlite
                                  --seed 1 --json]

The latency benchmark (`bench.webhooks`) measures the whole machine under load; on two shared cores its
figures move with whatever else runs. This one measures the cause: the work the hub does per webhook, which
other load barely changes. It builds the hub's Flask app in this process (a private PostgreSQL database,
recreated each run, or a temporary SQLite file), seeds one queue, `--agents` available agents and 300
customers (`bench.webhooks.seed`), and plays inbound callers through the app with the Flask test client,
each request signed with the twilio library as Twilio would:

1. `/webhooks/voice/incoming` (the caller arrives; 10 % from numbers never seen),
2. `/webhooks/voice/conference` participant-join (the caller enters their waiting conference),
3. `/webhooks/voice/hold` (the conference's wait music),
4. `/webhooks/voice/status` completed, `--waiting` arrivals later (the caller gave up), so about
   `--waiting` callers wait at any time; nobody accepts the offers, as in `bench.webhooks` without `--accept`.

Each request is closed as a WSGI server closes it, which wakes the deferred router; after an incoming call
and a hang-up the router is drained before the clock stops, so the routing they cause is counted with them. CPU is this process's
(`time.process_time`, every thread); the database server's own CPU is not included. Statements are counted
at the engine (`before_cursor_execute`), transactions' BEGIN/COMMIT not included. `BENCH_TRACE_SQL=1` prints
each statement under the webhook that caused it (use it with `--calls 1`); background threads' statements
(the wallboard's feed) land under whichever webhook is running.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict

from sqlalchemy import event

from bench.conditions import conditions
from bench.webhooks import ACCOUNT_SID, AUTH_TOKEN, QUEUE_NUMBER, pg_urls, recreate_db, seed

KINDS = ("incoming", "conference-join", "hold", "status-completed")


def _sid(prefix: str = "CA") -> str:
    return prefix + uuid.uuid4().hex


def run(args) -> dict:
    from twilio.request_validator import RequestValidator

    from config.settings import Settings
    from hub.app import create_app
    from hub.migrate import upgrade

    tmp = None
    if args.database == "postgresql":
        admin, url = pg_urls(args.postgres, args.db_name)
        recreate_db(admin, args.db_name)
    else:
        tmp = tempfile.mkdtemp(prefix="bench-webhook-cost-")
        url = f"sqlite:///{os.path.join(tmp, 'hub.db')}"
    upgrade(url)
    rng = random.Random(args.seed)
    _, numbers = seed(url, args.agents, 300, rng)
    settings = Settings(database_url=url, redis_url=args.redis, secret_key=os.urandom(16).hex(),
                        public_url="http://127.0.0.1:5000", twilio_account_sid=ACCOUNT_SID,
                        twilio_auth_token=AUTH_TOKEN, twilio_api_url="http://127.0.0.1:9",
                        socketio_channel=f"bench-cost-{uuid.uuid4().hex[:8]}", rq_queue=f"bench-cost-{uuid.uuid4().hex[:8]}")
    app = create_app(settings)
    services = app.extensions["switchboard"]
    router = app.extensions["deferred_router"]
    client = app.test_client()
    validator = RequestValidator(AUTH_TOKEN)
    statements = [0]

    @event.listens_for(services.engine, "before_cursor_execute")
    def _count(_conn, _cursor, statement, *_args):
        statements[0] += 1
        if os.environ.get("BENCH_TRACE_SQL"):
            print("   ", " ".join(statement.split())[:200])

    def post(path: str, params: dict[str, str], routes: bool = False) -> tuple[float, int]:
        if os.environ.get("BENCH_TRACE_SQL"):
            print("----", path, params.get("StatusCallbackEvent") or params.get("CallStatus") or "")
        signature = validator.compute_signature(settings.public_url + path, params)
        n0, t0 = statements[0], time.process_time()
        response = client.post(path, data=params, headers={"X-Twilio-Signature": signature})
        response.close()
        if routes and not router.drain():  # what the webhook deferred is routed before the clock stops
            raise RuntimeError("the deferred router did not finish its round")
        cpu, n = time.process_time() - t0, statements[0] - n0
        if response.status_code >= 400:
            raise RuntimeError(f"{path} answered {response.status_code}")
        return cpu, n

    cpu: dict[str, list[float]] = defaultdict(list)
    stmts: dict[str, list[int]] = defaultdict(list)
    waiting: list[str] = []

    def record(kind: str, measured: tuple[float, int], warm: bool) -> None:
        if not warm:
            cpu[kind].append(measured[0])
            stmts[kind].append(measured[1])

    total = args.warmup + args.calls
    for i in range(total):
        warm = i < args.warmup
        sid = _sid()
        caller = numbers[rng.randrange(len(numbers))] if rng.random() >= 0.1 else f"+1415555{rng.randrange(10000):04d}"
        base = {"AccountSid": ACCOUNT_SID, "ApiVersion": "2010-04-01"}
        record("incoming", post("/webhooks/voice/incoming", {**base, "CallSid": sid, "From": caller,
                                                            "To": QUEUE_NUMBER, "CallStatus": "ringing",
                                                            "Direction": "inbound"}, routes=True), warm)
        conference = _sid("CF")
        record("conference-join", post("/webhooks/voice/conference", {
            **base, "ConferenceSid": conference, "FriendlyName": sid, "CallSid": sid,
            "StatusCallbackEvent": "participant-join", "SequenceNumber": "1", "Muted": "false", "Hold": "false",
            "Coaching": "false", "EndConferenceOnExit": "false", "StartConferenceOnEnter": "false"}), warm)
        record("hold", post("/webhooks/voice/hold", {**base, "CallSid": sid, "ConferenceSid": conference,
                                                      "FriendlyName": sid}), warm)
        waiting.append(sid)
        if len(waiting) > args.waiting:
            gone = waiting.pop(0)
            record("status-completed", post("/webhooks/voice/status", {
                **base, "CallSid": gone, "CallStatus": "completed", "SequenceNumber": "3", "CallDuration": "8",
                "From": caller, "To": QUEUE_NUMBER, "Direction": "inbound"}, routes=True), warm)
    services.close()
    router_stop = getattr(router, "stop", None)
    if router_stop:
        router_stop()
    if args.database == "postgresql":
        recreate_db(admin, args.db_name, drop_only=True)

    by_kind = {}
    for kind in KINDS:
        values = cpu[kind]
        if not values:
            continue
        by_kind[kind] = {"n": len(values), "cpu_ms_mean": round(1e3 * statistics.fmean(values), 3),
                         "cpu_ms_p50": round(1e3 * statistics.median(values), 3),
                         "statements_mean": round(statistics.fmean(stmts[kind]), 2)}
    per_call = sum(v["cpu_ms_mean"] for v in by_kind.values())
    return {"benchmark": "webhook_cost", "database": args.database, "calls": args.calls, "warmup": args.warmup,
            "waiting": args.waiting, "agents": args.agents, "seed": args.seed, "conditions": conditions(),
            "by_kind": by_kind, "cpu_ms_per_call": round(per_call, 3),
            "statements_per_call": round(sum(v["statements_mean"] for v in by_kind.values()), 2)}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--calls", type=int, default=400, help="measured callers")
    p.add_argument("--warmup", type=int, default=50, help="callers played first, not measured")
    p.add_argument("--waiting", type=int, default=100, help="callers waiting at once (each hangs up this many later)")
    p.add_argument("--agents", type=int, default=20)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    p.add_argument("--postgres", default=os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    p.add_argument("--db-name", default="switchboard_bench_cost")
    p.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12"))
    p.add_argument("--json", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    c = result["conditions"]
    print(f"webhook cost, {result['database']}: {result['calls']} callers after {result['warmup']} warm-up, "
          f"{result['waiting']} waiting, {result['agents']} agents, seed {result['seed']}")
    print(f"  {c['cpu']} x{c['cpus']}, Python {c['python']}, load {c['loadavg_1_5_15_at_start']}, "
          f"code {c['engine_version']}")
    for kind, v in result["by_kind"].items():
        print(f"  {kind:17s} n={v['n']:4d}  CPU {v['cpu_ms_mean']:7.3f} ms mean, {v['cpu_ms_p50']:7.3f} ms p50, "
              f"{v['statements_mean']:5.2f} statements")
    print(f"  per caller: {result['cpu_ms_per_call']:.3f} ms CPU, {result['statements_per_call']:.2f} statements")
    return 0


if __name__ == "__main__":
    sys.exit(main())
