"""Incoming-call webhook to TwiML latency through the real hub on PostgreSQL, with the carrier simulator as load.

    python -m bench.webhooks [--rate 100 --seconds 30 --web gunicorn|werkzeug --threads 50 --agents 20
                              --seed 1 --patience 8 --talk 5 --accept --profile --json]

Creates a private PostgreSQL database (dropped and recreated every run), migrates it, seeds one queue
(+14155550100, skill support:1), `--agents` agents with that skill set AVAILABLE/idle directly in the
database, and `--customers` customers with numbers. Starts the hub's web process (gunicorn gthread, 1 worker
process, `--threads` threads; or `python -m hub serve`) and one `python -m hub worker` as subprocesses, and
runs the carrier simulator in this process. Callers arrive open-loop (Poisson, seeded, paced by the monotonic
clock) at `--rate` per second for `--seconds`; each has a patience drawn uniformly in [0.5, 1.5] x
`--patience` seconds and a talk time of `--talk` seconds. Without `--accept` nobody answers: the agents hold
offers until they time out (the queue's 15 s) and callers wait and abandon, so the line settles at about
rate x patience waiting calls, the worst case for routing (every decision loads them all). With `--accept`
the simulator's Socket.IO agent bots accept offers, talk and wrap up, which adds agent legs, REST calls and
conference events.

Measured on the client side, in the simulator's webhook sender (a subclass in this file; the simulator's
code is untouched): for every POST to /webhooks/voice/incoming, the time from sending the request to having
the TwiML body; also every other webhook by path. The sender's pool is sized (`--sim-workers`) so that it
never queues; the time a request waited in that pool and the lag behind its scheduled arrival are reported
too. Errors: non-2xx answers; timeouts/connection failures (status 0, the simulator's 15 s timeout, as
Twilio's).

`--profile` runs a wall-clock sampling profiler inside the web process (every 5 ms it samples every thread
that is serving a webhook, via sys._current_frames; under gunicorn it is started by the post_fork hook
below, with `-c python:bench.webhooks`), and prints where webhook threads spend their time, inclusive,
by function. Not a pytest module: nothing here is collected.
"""
from __future__ import annotations

import argparse
import collections
import json as jsonlib
import math
import os
import random
import secrets
import signal
import socket as socketlib
import subprocess
import sys
import tempfile
import threading
import time as timelib
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit
from bench.conditions import cpu_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUEUE_NUMBER = "+14155550100"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "e" * 32
PASSWORD = "benchpass1"
INCOMING = "/webhooks/voice/incoming"


# ---------------------------------------------------------------- the profiler that runs in the web process


# leaf frames of a thread blocked outside the GIL (socket, select, lock, sleep): not using the CPU
WAIT_LEAVES = {
    "psycopg/connection.py:wait", "threading.py:wait", "threading.py:_wait_for_tstate_lock", "selectors.py:select",
    "socket.py:readinto", "socket.py:accept", "redis/_parsers/socket.py:_read_from_socket", "queue.py:get",
    "gunicorn/workers/gthread.py:wait_for_and_dispatch_events", "gunicorn/workers/base.py:notify",
    "gunicorn/workers/gthread.py:run", "thread.py:_worker", "socketserver.py:serve_forever",
    "redis/client.py:listen", "redis/connection.py:can_read", "redis/_parsers/base.py:can_read_destructive",
    "ssl.py:read", "socket.py:recv", "time.py:sleep", "gunicorn/http/unreader.py:chunk", "gunicorn/http/body.py:read",
    "gunicorn/http/unreader.py:read", "http/client.py:_read_status", "engineio/async_drivers/threading.py:wait",
    "simple_websocket/ws.py:_thread", "selectors.py:_select",
}


def start_sampler(out_path: str, interval_s: float = 0.005) -> None:
    """Sample, every `interval_s`, the stacks of threads serving a webhook; dump counts to `out_path`."""
    me_holder: list[int] = []

    def label(code) -> str:
        path = code.co_filename
        if path.startswith(ROOT + os.sep) and f"{os.sep}.venv{os.sep}" not in path:
            path = os.path.relpath(path, ROOT)
        elif "site-packages" in path:
            path = path.split("site-packages" + os.sep, 1)[1]
        else:
            path = os.path.basename(path)
        return f"{path}:{code.co_name}"

    def run() -> None:
        me_holder.append(threading.get_ident())
        inclusive: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        leaf: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        samples: collections.Counter = collections.Counter()
        run_samples: collections.Counter = collections.Counter()
        run_inclusive: collections.Counter = collections.Counter()
        run_leaf: collections.Counter = collections.Counter()
        all_leaf: collections.Counter = collections.Counter()
        busy_threads: collections.Counter = collections.Counter()
        last_dump = timelib.monotonic()
        n = 0
        while True:
            timelib.sleep(interval_s)
            n += 1
            busy = 0
            for tid, frame in sys._current_frames().items():
                if tid == me_holder[0]:
                    continue
                codes = []
                while frame is not None:
                    codes.append(frame.f_code)
                    frame = frame.f_back
                endpoint = None
                for code in codes:
                    if code.co_filename.endswith(os.path.join("webhooks", "views.py")):
                        endpoint = code.co_name
                        break
                leaf_name = label(codes[0]) if codes else "?"
                if leaf_name not in WAIT_LEAVES:  # runnable: on the CPU or waiting for the GIL
                    thread_kind = f"webhook:{endpoint}" if endpoint else "other"
                    run_samples[thread_kind] += 1
                    seen = set()
                    for code in codes:
                        name = label(code)
                        if name not in seen:
                            seen.add(name)
                            run_inclusive[name] += 1
                    run_leaf[leaf_name] += 1
                all_leaf[leaf_name] += 1
                if endpoint is None:
                    continue
                busy += 1
                samples[endpoint] += 1
                seen = set()
                for code in codes:
                    name = label(code)
                    if name not in seen:
                        seen.add(name)
                        inclusive[endpoint][name] += 1
                leaf[endpoint][label(codes[0])] += 1
            busy_threads[busy] += 1
            now = timelib.monotonic()
            if now - last_dump > 1.0:
                last_dump = now
                data = {"interval_s": interval_s, "ticks": n, "samples": dict(samples),
                        "busy_threads": {str(k): v for k, v in busy_threads.items()},
                        "inclusive": {k: dict(v.most_common(400)) for k, v in inclusive.items()},
                        "leaf": {k: dict(v.most_common(60)) for k, v in leaf.items()},
                        "runnable": {"samples": dict(run_samples), "inclusive": dict(run_inclusive.most_common(400)),
                                     "leaf": dict(run_leaf.most_common(60)), "all_leaf": dict(all_leaf.most_common(40))}}
                tmp = out_path + ".tmp"
                with open(tmp, "w") as f:
                    jsonlib.dump(data, f)
                os.replace(tmp, out_path)

    threading.Thread(target=run, name="bench-sampler", daemon=True).start()


def start_cprofile(out_prefix: str) -> None:
    """cProfile every thread (started from now on, and this one) with a per-thread CPU clock (thread_time).

    Every 8 s, each thread's stats are written (marshal, pstats format) to `out_prefix`.N.
    """
    import cProfile
    import marshal

    profiles: list = []
    lock = threading.Lock()

    def begin(*_args) -> None:
        prof = cProfile.Profile(timelib.thread_time)
        with lock:
            profiles.append(prof)
        prof.enable()  # replaces this hook for the thread

    threading.setprofile(begin)
    begin()

    def dump() -> None:
        while True:
            timelib.sleep(8.0)
            with lock:
                current = list(profiles)
            for i, prof in enumerate(current):
                prof.snapshot_stats()
                tmp = f"{out_prefix}.{i}.tmp"
                with open(tmp, "wb") as f:
                    marshal.dump(prof.stats, f)
                os.replace(tmp, f"{out_prefix}.{i}")

    threading.Thread(target=dump, name="bench-cprofile-dump", daemon=True).start()


def post_fork(server, worker) -> None:  # gunicorn hook, read with `-c python:bench.webhooks`
    out = os.environ.get("BENCH_PROFILE_OUT")
    if out:
        start_sampler(out)
    out = os.environ.get("BENCH_CPROFILE_OUT")
    if out:
        start_cprofile(out)


def summarise_cprofile(prefix: str, top: int = 45) -> str:
    """Merge the per-thread dumps and return pstats' text, by cumulative then by own CPU time."""
    import glob
    import io
    import pstats

    files = sorted(f for f in glob.glob(prefix + ".*") if not f.endswith(".tmp"))
    if not files:
        return "no cProfile dumps"
    stream = io.StringIO()
    stats = pstats.Stats(files[0], stream=stream)
    for f in files[1:]:
        stats.add(f)
    stats.strip_dirs()
    total = sum(v[2] for v in stats.stats.values())
    stream.write(f"threads profiled: {len(files)}; CPU seconds (sum of own times): {total:.2f}\n")
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    return stream.getvalue()


# ---------------------------------------------------------------- helpers


def free_port() -> int:
    with socketlib.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, seconds: float, proc: subprocess.Popen, log_path: str) -> None:
    import requests

    deadline = timelib.monotonic() + seconds
    while timelib.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"web process exited:\n{tail(log_path)}")
        try:
            if requests.get(url, timeout=2).ok:
                return
        except requests.RequestException:
            pass
        timelib.sleep(0.1)
    raise RuntimeError(f"web process did not answer {url}:\n{tail(log_path)}")


def tail(path: str, lines: int = 40) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def pct(values: list[float], p: float) -> float | None:
    """Percentile with linear interpolation (p in 0..100)."""
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summary_ms(values_s: list[float]) -> dict:
    ms = [v * 1000.0 for v in values_s]
    return {"n": len(ms), "p50_ms": _r(pct(ms, 50)), "p90_ms": _r(pct(ms, 90)), "p99_ms": _r(pct(ms, 99)),
            "max_ms": _r(max(ms) if ms else None), "mean_ms": _r(sum(ms) / len(ms) if ms else None)}


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def cpu_busy() -> tuple[float, float]:
    with open("/proc/stat") as f:
        parts = [float(x) for x in f.readline().split()[1:]]
    idle = parts[3] + parts[4]
    return sum(parts), idle


def proc_cpu_seconds(pid: int) -> float:
    """utime+stime of a process and its reaped children... plus live children (gunicorn's worker)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            pids += [int(x) for x in f.read().split()]
    except OSError:
        pass
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (float(fields[11]) + float(fields[12])) / tick
        except OSError:
            pass
    return total


# ---------------------------------------------------------------- the timed webhook sender


def make_timed_sender(base_cls, records: list, lock: threading.Lock):
    """A WebhookSender that records (path, CallSid, t_submit, t_start, t_end, status, error) per request."""
    import requests

    class TimedSender(base_cls):
        def __init__(self, auth_token: str, *, workers: int, timeout: float) -> None:
            super().__init__(auth_token, workers=workers, timeout=timeout)
            adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=workers)
            self._session.mount("http://", adapter)

        def send(self, url, params, method="POST", on_done=None, *, token=None):
            self._submitted_at(url, params, timelib.monotonic())
            super().send(url, params, method, on_done, token=token)

        def _submitted_at(self, url, params, t):
            key = (url, params.get("CallSid"), params.get("SequenceNumber"), params.get("StatusCallbackEvent"),
                   params.get("CallStatus"))
            with lock:
                self._pending.setdefault(key, collections.deque()).append(t)

        def _request(self, url, params, method, token):
            key = (url, params.get("CallSid"), params.get("SequenceNumber"), params.get("StatusCallbackEvent"),
                   params.get("CallStatus"))
            start = timelib.monotonic()
            with lock:
                q = self._pending.get(key)
                submitted = q.popleft() if q else start
                if q is not None and not q:
                    del self._pending[key]
            result = super()._request(url, params, method, token)
            end = timelib.monotonic()
            with lock:
                records.append((urlsplit(url).path, params.get("CallSid"), submitted, start, end, result.status,
                                result.error))
            return result

    TimedSender._pending = {}
    return TimedSender


# ---------------------------------------------------------------- database


def pg_urls(admin_url: str, name: str) -> tuple[str, str]:
    parts = urlsplit(admin_url)
    return (urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, "")),
            urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, "")))


def recreate_db(admin_url: str, name: str, drop_only: bool = False) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(admin_url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if not drop_only:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()


def seed(url: str, agents: int, customers: int, rng: random.Random) -> tuple[list[str], list[str]]:
    """Queue, available agents, customers; returns (agent logins, customer numbers)."""
    from sqlalchemy import update

    from hub.admin import add_agent, add_queue
    from hub.db import make_engine, make_session_factory, transaction
    from hub.models import Agent, Customer, CustomerPhone

    engine = make_engine(url)
    sessions = make_session_factory(engine)
    logins = [f"agent{i:03d}" for i in range(agents)]
    numbers = [f"+1212555{i:04d}" for i in range(1, customers + 1)]
    tiers = ["gold"] * 5 + ["silver"] * 15 + ["standard"] * 80
    with transaction(sessions) as session:
        add_queue(session, "Support", QUEUE_NUMBER, {"support": 1}, offer_timeout_s=15, wrap_up_s=10)
        for login in logins:
            add_agent(session, login, login.title(), PASSWORD, "agent", {"support": rng.randint(1, 3)})
        for i, number in enumerate(numbers):
            session.add(Customer(name=f"Customer {i}", value_tier=rng.choice(tiers), lifecycle_stage="loyal",
                                 phones=[CustomerPhone(number=number)]))
    now = datetime.now(UTC)
    with transaction(sessions) as session:
        session.execute(update(Agent).values(presence="available", work="idle", idle_since=now, state_since=now))
    engine.dispose()
    return logins, numbers


def active_calls(engine) -> int:
    from sqlalchemy import text

    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM calls WHERE leg = 'customer' AND routing_state <> 'ended'")
                            ).scalar() or 0


def pg_version(engine) -> str:
    from sqlalchemy import text

    with engine.connect() as conn:
        return conn.execute(text("SHOW server_version")).scalar()


# ---------------------------------------------------------------- the run


def run(args) -> dict:
    from redis import Redis

    from hub.db import make_engine
    from hub.migrate import upgrade
    from simulator.carrier import CarrierConfig
    from simulator.server import SimulatorServer
    from simulator.webhooks import WebhookSender

    rng = random.Random(args.seed)
    admin_url, db_url = pg_urls(args.postgres, args.database)
    logdir = tempfile.mkdtemp(prefix="bench-webhooks-")
    redis = Redis.from_url(args.redis)
    redis.flushdb()
    recreate_db(admin_url, args.database)
    upgrade(db_url)
    logins, numbers = seed(db_url, args.agents, args.customers, rng)
    engine = make_engine(db_url)

    port = free_port()
    hub_url = f"http://127.0.0.1:{port}"
    records: list = []
    rec_lock = threading.Lock()
    timed_cls = make_timed_sender(WebhookSender, records, rec_lock)
    config = CarrierConfig(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, public_url=hub_url, seed=args.seed,
                           webhook_workers=args.sim_workers)
    sim = SimulatorServer(config)
    sim.carrier.webhooks = timed_cls(AUTH_TOKEN, workers=args.sim_workers, timeout=config.webhook_timeout)
    sim.start()

    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    env.update({
        "SWITCHBOARD_DATABASE_URL": db_url, "SWITCHBOARD_REDIS_URL": args.redis,
        "SWITCHBOARD_SECRET_KEY": secrets.token_urlsafe(24), "SWITCHBOARD_PUBLIC_URL": hub_url,
        "SWITCHBOARD_TWILIO_ACCOUNT_SID": ACCOUNT_SID, "SWITCHBOARD_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "SWITCHBOARD_TWILIO_API_URL": sim.url, "SWITCHBOARD_SOCKETIO_CHANNEL": "bench-webhooks",
        "SWITCHBOARD_RQ_QUEUE": "bench-webhooks", "PYTHONUNBUFFERED": "1",
        "SWITCHBOARD_DB_POOL_SIZE": str(args.threads + 5),  # as the README sizes it: threads + 4, and the board feed
    })
    profile_out = os.path.join(logdir, "profile.json") if args.profile else None
    cprofile_out = os.path.join(logdir, "cprofile") if args.cprofile else None
    web_env = dict(env)
    if profile_out:
        web_env["BENCH_PROFILE_OUT"] = profile_out
    if cprofile_out:
        web_env["BENCH_CPROFILE_OUT"] = cprofile_out
    if args.web == "gunicorn":
        cmd = [sys.executable, "-m", "gunicorn", "-k", "gthread", "--threads", str(args.threads), "-w", str(args.processes),
               "-b", f"127.0.0.1:{port}"]
        if profile_out or cprofile_out:
            cmd += ["-c", "python:bench.webhooks"]
        cmd += ["hub.wsgi:app"]
    elif profile_out or cprofile_out:
        cmd = [sys.executable, "-c", "import os, sys; import bench.webhooks as b; "
               "os.environ.get('BENCH_PROFILE_OUT') and b.start_sampler(os.environ['BENCH_PROFILE_OUT']); "
               "os.environ.get('BENCH_CPROFILE_OUT') and b.start_cprofile(os.environ['BENCH_CPROFILE_OUT']); "
               "from hub.cli import main; "
               f"sys.exit(main(['serve', '--port', '{port}']))"]
    else:
        cmd = [sys.executable, "-m", "hub", "serve", "--port", str(port)]
    children: list[tuple[str, subprocess.Popen, object]] = []
    bots = None
    result: dict = {}
    try:
        web_log = os.path.join(logdir, "web.log")
        f = open(web_log, "w")
        web = subprocess.Popen(cmd, env=web_env, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)
        children.append(("web", web, f))
        wlog = open(os.path.join(logdir, "worker.log"), "w")
        worker = subprocess.Popen([sys.executable, "-m", "hub", "worker"], env=env, cwd=ROOT, stdout=wlog,
                                  stderr=subprocess.STDOUT)
        children.append(("worker", worker, wlog))
        wait_for_http(hub_url + "/healthz", 60, web, web_log)

        if args.accept:
            from simulator.bots import BotAccount, BotSwarm

            bots = BotSwarm(hub_url, [BotAccount(login, PASSWORD) for login in logins], seed=args.seed,
                            accept_delay=(0.5, 2.0), wrap_delay=(1.0, 3.0))
            bots.start()
            deadline = timelib.monotonic() + 30
            while timelib.monotonic() < deadline and not all(b.connected for b in bots.bots):
                timelib.sleep(0.2)
            timelib.sleep(1.0)

        def caller() -> tuple[str, float, float]:
            if rng.random() < args.unknown:
                number = f"+1646555{rng.randint(0, 9999):04d}"
            else:
                number = rng.choice(numbers)
            patience = rng.uniform(0.5, 1.5) * args.patience
            return number, patience, args.talk

        # warm-up: not measured (first requests pay imports and connection set-up)
        warm_sids = set()
        for _ in range(int(args.warmup * 10)):
            number, patience, talk = caller()
            warm_sids.add(sim.place_inbound_call(number, QUEUE_NUMBER, talk_seconds=talk, patience_seconds=patience))
            timelib.sleep(0.1)
        timelib.sleep(1.0)
        with rec_lock:
            records.clear()

        intended: dict[str, float] = {}
        windows: list[dict] = []
        web_pid = web.pid
        cpu0, idle0 = cpu_busy()
        web_cpu0, worker_cpu0 = proc_cpu_seconds(web_pid), proc_cpu_seconds(worker.pid)
        self_cpu0 = timelib.process_time()
        t0 = timelib.monotonic()
        end = t0 + args.seconds
        stop_sampling = threading.Event()

        def sample_windows() -> None:
            while not stop_sampling.wait(args.window):
                try:
                    windows.append({"t": round(timelib.monotonic() - t0, 1), "active_calls": active_calls(engine)})
                except Exception as exc:  # noqa: BLE001 - informative only
                    windows.append({"t": round(timelib.monotonic() - t0, 1), "error": str(exc)})

        sampler = threading.Thread(target=sample_windows, daemon=True)
        sampler.start()
        due = t0
        placed = 0
        while True:
            due += rng.expovariate(args.rate) if args.arrivals == "poisson" else 1.0 / args.rate
            if due >= end:
                break
            delay = due - timelib.monotonic()
            if delay > 0:
                timelib.sleep(delay)
            number, patience, talk = caller()
            sid = sim.place_inbound_call(number, QUEUE_NUMBER, talk_seconds=talk, patience_seconds=patience)
            intended[sid] = due
            placed += 1
        load_end = timelib.monotonic()
        # drain: wait for every measured incoming webhook to finish (the sender times out at 15 s)
        drain_deadline = load_end + args.drain
        while timelib.monotonic() < drain_deadline:
            with rec_lock:
                done = sum(1 for r in records if r[0] == INCOMING and r[1] in intended)
            if done >= placed:
                break
            timelib.sleep(0.2)
        stop_sampling.set()
        cpu1, idle1 = cpu_busy()
        web_cpu1, worker_cpu1 = proc_cpu_seconds(web_pid), proc_cpu_seconds(worker.pid)
        self_cpu1 = timelib.process_time()
        elapsed = timelib.monotonic() - t0
        with rec_lock:
            recs = list(records)

        incoming = [r for r in recs if r[0] == INCOMING and r[1] in intended]
        lat = [r[4] - r[3] for r in incoming]
        ok = [r for r in incoming if 200 <= r[5] < 300]
        non2xx = [r for r in incoming if r[5] != 0 and not 200 <= r[5] < 300]
        failed = [r for r in incoming if r[5] == 0]
        from_intended = [r[4] - intended[r[1]] for r in incoming]
        pool_wait = [r[3] - r[2] for r in incoming]
        by_path: dict[str, list] = collections.defaultdict(list)
        for r in recs:
            if r[0] != INCOMING and r[2] >= t0:
                by_path[r[0]].append(r)
        # per-window latency of incoming webhooks (by send time)
        for w in windows:
            lo = t0 + w["t"] - args.window
            hi = t0 + w["t"]
            xs = [r[4] - r[3] for r in incoming if lo <= r[3] < hi]
            w.update({"incoming_n": len(xs), "p50_ms": _r(pct([x * 1000 for x in xs], 50)),
                      "p99_ms": _r(pct([x * 1000 for x in xs], 99))})
        busy = (cpu1 - cpu0) - (idle1 - idle0)
        result = {
            "conditions": {
                "cpu": cpu_model(), "cpus": os.cpu_count(), "python": sys.version.split()[0],
                "postgres": pg_version(engine), "web": args.web,
                "threads": args.threads if args.web == "gunicorn" else "werkzeug threaded (one per request)",
                "db_pool_size": args.threads + 5,
                "processes": args.processes if args.web == "gunicorn" else 1,
                "rate_per_s": args.rate, "seconds": args.seconds, "arrivals": args.arrivals,
                "agents": args.agents, "agents_accept": bool(args.accept), "customers": args.customers,
                "unknown_callers": args.unknown, "patience_s": f"U({0.5 * args.patience:g}, {1.5 * args.patience:g})",
                "talk_s": args.talk, "offer_timeout_s": 15, "seed": args.seed, "sim_webhook_workers": args.sim_workers,
                "profile": bool(args.profile), "loadavg_at_start": os.getloadavg(),
            },
            "results": {
                "calls_placed": placed,
                "achieved_rate_per_s": round(placed / (load_end - t0), 1),
                "incoming_completed": len(incoming), "incoming_ok": len(ok),
                "incoming_non_2xx": len(non2xx), "incoming_failed_or_timeout": len(failed),
                "incoming_missing_after_drain": placed - len(incoming),
                "incoming_latency": summary_ms(lat),
                "incoming_from_scheduled_arrival": summary_ms(from_intended),
                "incoming_sender_pool_wait": summary_ms(pool_wait),
                "other_webhooks": {p: {**summary_ms([r[4] - r[3] for r in rs]),
                                       "errors": sum(1 for r in rs if not 200 <= r[5] < 300)}
                                   for p, rs in sorted(by_path.items())},
                "cpu_busy_machine_pct": round(100.0 * busy / max(cpu1 - cpu0, 1e-9), 1),
                "cpu_s_web": round(web_cpu1 - web_cpu0, 1), "cpu_s_worker": round(worker_cpu1 - worker_cpu0, 1),
                "cpu_s_bench_and_simulator": round(self_cpu1 - self_cpu0, 1),
                "elapsed_s": round(elapsed, 1),
                "windows": windows,
            },
            "goal": {"p99_ms_max": 50, "errors": 0},
        }
        res = result["results"]
        res["goal_met"] = bool(res["incoming_latency"]["p99_ms"] is not None and res["incoming_latency"]["p99_ms"] <= 50
                               and not res["incoming_non_2xx"] and not res["incoming_failed_or_timeout"]
                               and not res["incoming_missing_after_drain"])
        if profile_out:
            timelib.sleep(1.5)  # let the sampler write its last dump
            try:
                with open(profile_out) as f:
                    result["profile"] = summarise_profile(jsonlib.load(f))
            except OSError as exc:
                result["profile"] = {"error": str(exc)}
        if cprofile_out:
            timelib.sleep(8.5)  # let the last dump land
            result["cprofile"] = summarise_cprofile(cprofile_out)
        return result
    finally:
        if bots is not None:
            bots.stop()
        sim.stop()
        for name, child, f in reversed(children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for name, child, f in reversed(children):
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            f.close()
        if result is not None:
            result["logs"] = logdir
        engine.dispose()
        recreate_db(admin_url, args.database, drop_only=True)
        redis.flushdb()
        redis.close()


KEY_FUNCTIONS = [
    ("webhooks/signature.py:wrapper", "signature check + view (whole request inside the view)"),
    ("hub/call_flows.py:receive_incoming_call", "receive_incoming_call (whole flow)"),
    ("hub/db.py:lock_routing", "lock_routing: SELECT ... FOR UPDATE on routing_lock (waiting for the lock)"),
    ("hub/routing_store.py:decide_and_store", "decide_and_store"),
    ("hub/routing_store.py:load_state", "  load_state (all agents + all active calls)"),
    ("routing/engine.py:decide", "  routing engine decide"),
    ("hub/routing_store.py:_store_calls", "  _store_calls"),
    ("hub/routing_store.py:_store_agents", "  _store_agents"),
    ("hub/call_flows.py:_preferred_agents", "_preferred_agents"),
    ("hub/customers.py:identify_caller", "identify_caller"),
    ("hub/effects.py:carry_out", "carry_out (after commit)"),
    ("hub/jobs.py:at", "  RQ enqueue_at (offer timers)"),
    ("hub/effects.py:push", "  push (snapshots + emits)"),
    ("hub/snapshots.py:board", "    wallboard snapshot board()"),
    ("hub/snapshots.py:agent_state", "    agent_state snapshots"),
    ("hub/notifier.py:_emit", "    Socket.IO emits via Redis"),
    ("hub/call_flows.py:_leg_ended", "_leg_ended (status: completed)"),
    ("hub/call_flows.py:_put_call_on_timeline", "_put_call_on_timeline"),
    ("sqlalchemy/orm/session.py:commit", "session commit"),
    ("sqlalchemy/orm/session.py:flush", "session flush (ORM writes)"),
    ("sqlalchemy/pool/base.py:connect", "pool checkout"),
    ("sqlalchemy/pool/impl.py:_do_get", "  waiting for a pooled connection"),
    ("psycopg/cursor.py:execute", "psycopg execute (all SQL round trips)"),
    ("psycopg/connection.py:commit", "psycopg COMMIT"),
    ("redis/connection.py:send_packed_command", "redis send"),
    ("redis/connection.py:read_response", "redis read_response"),
]


def summarise_profile(data: dict) -> dict:
    out = {"interval_s": data["interval_s"], "ticks": data["ticks"], "samples_by_endpoint": data["samples"],
           "mean_busy_webhook_threads": None, "endpoints": {}}
    total_ticks = sum(data["busy_threads"].values()) or 1
    out["mean_busy_webhook_threads"] = round(sum(int(k) * v for k, v in data["busy_threads"].items()) / total_ticks, 2)
    rn = data.get("runnable") or {}
    n_run = sum((rn.get("samples") or {}).values()) or 1
    out["runnable"] = {
        "samples_by_thread_kind": rn.get("samples"),
        "key": [{"function": fn, "what": what, "pct": round(100.0 * rn["inclusive"].get(fn, 0) / n_run, 1)}
                for fn, what in KEY_FUNCTIONS if rn.get("inclusive", {}).get(fn)],
        "top_inclusive": [{"function": fn, "pct": round(100.0 * c / n_run, 1)} for fn, c in
                          sorted(rn.get("inclusive", {}).items(), key=lambda kv: -kv[1])[:60]],
        "top_leaf": [{"function": fn, "pct": round(100.0 * c / n_run, 1)} for fn, c in
                     sorted(rn.get("leaf", {}).items(), key=lambda kv: -kv[1])[:30]],
        "all_leaf": rn.get("all_leaf"),
    }
    for endpoint, counts in data["inclusive"].items():
        n = data["samples"].get(endpoint, 0) or 1
        key = [{"function": fn, "what": what, "pct": round(100.0 * counts.get(fn, 0) / n, 1)} for fn, what in KEY_FUNCTIONS
               if counts.get(fn)]
        top = [{"function": fn, "pct": round(100.0 * c / n, 1)} for fn, c in
               sorted(counts.items(), key=lambda kv: -kv[1])[:40]]
        leaf = [{"function": fn, "pct": round(100.0 * c / n, 1)} for fn, c in
                sorted(data["leaf"].get(endpoint, {}).items(), key=lambda kv: -kv[1])[:15]]
        out["endpoints"][endpoint] = {"samples": data["samples"].get(endpoint, 0), "key": key, "top_inclusive": top,
                                      "top_leaf": leaf}
    return out


def print_human(result: dict) -> None:
    c, r = result["conditions"], result["results"]
    print("conditions:")
    for k, v in c.items():
        print(f"  {k}: {v}")
    lat = r["incoming_latency"]
    print("results:")
    print(f"  calls placed {r['calls_placed']}, achieved {r['achieved_rate_per_s']}/s; incoming answered "
          f"{r['incoming_ok']} OK, {r['incoming_non_2xx']} non-2xx, {r['incoming_failed_or_timeout']} failed/timeout, "
          f"{r['incoming_missing_after_drain']} unanswered after drain")
    print(f"  incoming webhook -> TwiML: p50 {lat['p50_ms']} ms, p90 {lat['p90_ms']} ms, p99 {lat['p99_ms']} ms, "
          f"max {lat['max_ms']} ms (n={lat['n']})")
    s = r["incoming_from_scheduled_arrival"]
    print(f"  from scheduled arrival to TwiML: p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms, max {s['max_ms']} ms")
    s = r["incoming_sender_pool_wait"]
    print(f"  queued in the simulator's sender pool: p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms, max {s['max_ms']} ms")
    for path, s in r["other_webhooks"].items():
        print(f"  {path}: n={s['n']} p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms, max {s['max_ms']} ms, "
              f"errors {s['errors']}")
    print(f"  CPU: machine busy {r['cpu_busy_machine_pct']} %; web {r['cpu_s_web']} s, worker {r['cpu_s_worker']} s, "
          f"bench+simulator {r['cpu_s_bench_and_simulator']} s over {r['elapsed_s']} s")
    print("  windows (t s: active calls, incoming n, p50/p99 ms):")
    for w in r["windows"]:
        print(f"    {w['t']:>5}: {w.get('active_calls')}, {w.get('incoming_n')}, {w.get('p50_ms')}/{w.get('p99_ms')}")
    print(f"goal (p99 <= 50 ms, no errors): {'MET' if r['goal_met'] else 'MISSED'}")
    prof = result.get("profile")
    if prof and "endpoints" in prof:
        print(f"profile (wall-clock samples every {prof['interval_s'] * 1000:g} ms of threads serving webhooks; "
              f"mean busy webhook threads {prof['mean_busy_webhook_threads']}):")
        for endpoint, e in sorted(prof["endpoints"].items(), key=lambda kv: -kv[1]["samples"]):
            print(f"  {endpoint}: {e['samples']} samples")
            for k in e["key"]:
                print(f"    {k['pct']:5.1f} %  {k['what']}  [{k['function']}]")
            print("    top leaf frames:")
            for k in e["top_leaf"][:8]:
                print(f"    {k['pct']:5.1f} %  {k['function']}")
        rn = prof["runnable"]
        print(f"  CPU view: samples of runnable threads (leaf not blocked in I/O or a lock), all threads: "
              f"{rn['samples_by_thread_kind']}")
        for k in rn["key"]:
            print(f"    {k['pct']:5.1f} %  {k['what']}  [{k['function']}]")
        print("    top inclusive (runnable samples):")
        for k in rn["top_inclusive"][:45]:
            print(f"    {k['pct']:5.1f} %  {k['function']}")
        print("    top leaf (runnable samples):")
        for k in rn["top_leaf"][:20]:
            print(f"    {k['pct']:5.1f} %  {k['function']}")
    if result.get("cprofile"):
        print("cProfile of the web process (per-thread CPU time, all threads):")
        print(result["cprofile"])
    print(f"logs: {result.get('logs')}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.webhooks", description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=float, default=100.0, help="inbound calls per second")
    p.add_argument("--seconds", type=float, default=30.0, help="length of the measured load")
    p.add_argument("--web", choices=["gunicorn", "werkzeug"], default="gunicorn")
    p.add_argument("--threads", type=int, default=50, help="gunicorn gthread threads")
    p.add_argument("--processes", type=int, default=1, help="gunicorn worker processes (each a Socket.IO server)")
    p.add_argument("--agents", type=int, default=20)
    p.add_argument("--customers", type=int, default=300)
    p.add_argument("--unknown", type=float, default=0.1, help="fraction of callers with a number never seen")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--patience", type=float, default=8.0, help="mean caller patience, s (uniform 0.5x-1.5x)")
    p.add_argument("--talk", type=float, default=5.0, help="talk time once connected, s")
    p.add_argument("--arrivals", choices=["poisson", "uniform"], default="poisson")
    p.add_argument("--accept", action="store_true", help="simulated agents (Socket.IO bots) accept offers")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured calls at 10/s first")
    p.add_argument("--drain", type=float, default=20.0, help="max seconds to wait for in-flight incoming webhooks")
    p.add_argument("--window", type=float, default=5.0, help="seconds per progress window")
    p.add_argument("--sim-workers", type=int, default=64, help="simulator webhook sender threads")
    p.add_argument("--profile", action="store_true", help="sample webhook threads' stacks in the web process")
    p.add_argument("--cprofile", action="store_true",
                   help="cProfile every thread of the web process with a CPU clock (slows it down)")
    p.add_argument("--postgres", default=os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    p.add_argument("--database", default="switchboard_bench")
    p.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12"))
    p.add_argument("--json", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import logging

    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.ERROR)
    result = run(args)
    if args.json:
        print(jsonlib.dumps(result, indent=2, default=str))
    else:
        print_human(result)
    return 0 if result["results"]["goal_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
