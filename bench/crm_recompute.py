"""Full CRM recompute: tiers, RFM, stages, BG/NBD + Gamma-Gamma lifetime value, churn, value to date.

    python -m bench.crm_recompute [--customers 100000 --orders 1000000 --database postgresql --seed 1 --json]
                                  [--keep-database NAME [--load-only]]

Generates, seeded, `--customers` customers (a quarter never buy) and `--orders` orders over three years:
each buyer has a buying rate drawn from a gamma distribution and a spend level drawn from another, the way
the BG/NBD and Gamma-Gamma models picture a customer base. Rows go in with PostgreSQL COPY (or SQLite
executemany). Then `crm.recompute.recompute_all` is timed three times, each run in a fresh child process
whose own peak RSS is reported (VmHWM: the data generation above is not in it; the database's memory is not
either):

* first_run: every buyer moves from standard/prospect, so every change is written with its history row and
  timeline entry;
* same_day_run: the same data at the same time: every figure is the same, so almost nothing is written;
* next_day_run: a day later: every buyer's P(alive), expected purchases and lifetime value change (they are
  a day older), so their rows are rewritten, and some move stage (the daily steady state).

The load average before each run is printed: the machine is shared, and a busy machine is slower.

Loading a million customers and ten million orders takes minutes. `--keep-database NAME` (PostgreSQL) keeps
the database afterwards and, next time, reuses it when it holds the same customers, orders and seed (a
`bench_loaded` row says so): the CRM's results are reset to the freshly loaded state (everyone standard and
prospect, no figures, history, timeline entries or runs) instead of loading again. `--load-only` stops after
loading (or resetting).

Not a pytest module.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import tempfile
import time
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import create_engine, text

from bench.conditions import conditions
from crm import pgcopy

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
LOAD_CHUNK = 1_000_000
PG_ADMIN_URL = os.environ.get("SWITCHBOARD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _orders(rng: np.random.Generator, customers: int, orders: int):
    """(customer index, seconds before NOW, cents) for every order, seeded."""
    buyers = rng.random(customers) < 0.75
    rate = np.where(buyers, rng.gamma(0.8, 1.0, customers), 0.0)
    owner = rng.choice(customers, size=orders, p=rate / rate.sum())
    seconds = rng.integers(0, 3 * 365 * 86400, size=orders)
    spend = rng.gamma(4.0, 12.0, customers)  # each customer's own average, dollars
    cents = np.maximum(100, rng.gamma(6.0, spend[owner] / 6.0) * 100).astype(np.int64)
    return owner, seconds, cents


def load(url: str, customers: int, orders: int, seed: int) -> float:
    from hub.db import make_engine

    rng = np.random.default_rng(seed)
    owner, seconds, cents = _orders(rng, customers, orders)
    started = time.monotonic()
    engine = make_engine(url)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # COPY: customers as text, orders in the binary format
            cursor = conn.connection.driver_connection.cursor()
            stamp = NOW.replace(tzinfo=None).isoformat()
            with cursor.copy("COPY customers (id, name, value_tier, lifecycle_stage, custom_fields, created_at) "
                             "FROM STDIN") as copy:
                for start in range(0, customers, LOAD_CHUNK):
                    copy.write("".join(f"{i}\tCustomer {i}\tstandard\tprospect\t{{}}\t{stamp}\n"
                                       for i in range(start + 1, min(start + LOAD_CHUNK, customers) + 1)))
            with cursor.copy("COPY crm_orders (customer_id, ordered_at, amount_cents, currency, source, created_at) "
                             "FROM STDIN (FORMAT binary)") as copy:
                copy.write(pgcopy.HEADER)
                for start in range(0, orders, LOAD_CHUNK):
                    part = slice(start, start + LOAD_CHUNK)
                    copy.write(pgcopy.encode_rows([
                        ("int4", owner[part] + 1), ("timestamp", NOW.timestamp() - seconds[part]),
                        ("int8", cents[part]), ("char3", b"USD"), ("char6", b"import"),
                        ("timestamp", np.full(len(owner[part]), NOW.timestamp()))]))
                copy.write(pgcopy.TRAILER)
            conn.exec_driver_sql("SELECT setval('customers_id_seq', %s)" % customers)
            conn.exec_driver_sql("ANALYZE customers")
            conn.exec_driver_sql("ANALYZE crm_orders")
        else:
            stamp = NOW.strftime("%Y-%m-%d %H:%M:%S.%f")
            conn.exec_driver_sql("INSERT INTO customers (id, name, value_tier, lifecycle_stage, custom_fields, "
                                 "created_at) VALUES (?, ?, 'standard', 'prospect', '{}', ?)",
                                 [(i + 1, f"Customer {i + 1}", stamp) for i in range(customers)])
            batch = []
            for o, s, c in zip(owner.tolist(), seconds.tolist(), cents.tolist()):
                batch.append((o + 1, (NOW - timedelta(seconds=s)).strftime("%Y-%m-%d %H:%M:%S.%f"), c, stamp))
                if len(batch) == 100_000:
                    conn.exec_driver_sql("INSERT INTO crm_orders (customer_id, ordered_at, amount_cents, currency, "
                                         "source, created_at) VALUES (?, ?, ?, 'USD', 'import', ?)", batch)
                    batch = []
            if batch:
                conn.exec_driver_sql("INSERT INTO crm_orders (customer_id, ordered_at, amount_cents, currency, "
                                     "source, created_at) VALUES (?, ?, ?, 'USD', 'import', ?)", batch)
    engine.dispose()
    return time.monotonic() - started


def _loaded(url: str, customers: int, orders: int, seed: int) -> bool:
    """Whether this kept database already holds this data set (a finished load recorded in bench_loaded)."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS bench_loaded (customers bigint, orders bigint, seed int)"))
            return conn.execute(text("SELECT count(*) FROM bench_loaded WHERE customers = :c AND orders = :o "
                                     "AND seed = :s"), {"c": customers, "o": orders, "s": seed}).scalar() > 0
    finally:
        engine.dispose()


def _reset(url: str) -> float:
    """Put a kept database back as loaded: no CRM results, everyone standard and prospect."""
    started = time.monotonic()
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("TRUNCATE crm_customer_values, crm_tier_changes, crm_stage_changes, timeline_entries, "
                          "crm_model_runs"))
        conn.execute(text("UPDATE customers SET value_tier = 'standard', lifecycle_stage = 'prospect' "
                          "WHERE value_tier <> 'standard' OR lifecycle_stage <> 'prospect'"))
        conn.execute(text("VACUUM ANALYZE customers"))
    engine.dispose()
    return time.monotonic() - started


def _record_load(url: str, customers: int, orders: int, seed: int) -> None:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO bench_loaded VALUES (:c, :o, :s)"), {"c": customers, "o": orders, "s": seed})
    engine.dispose()


def _peak_rss_mb() -> float:
    """This process's own peak resident memory in MB: VmHWM on Linux (ru_maxrss would also count the memory of
    the parent that forked it, carried across exec: the data generator's), else ru_maxrss."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed_recompute(url: str, when: datetime) -> tuple[float, float, dict]:
    """One full recompute in this (child) process: seconds, this process's peak RSS in MB, the result."""
    from crm.recompute import recompute_all
    from hub.db import make_engine, make_session_factory

    engine = make_engine(url)
    started = time.monotonic()
    result = recompute_all(make_session_factory(engine), when)
    elapsed = time.monotonic() - started
    engine.dispose()
    return elapsed, _peak_rss_mb(), result.as_dict()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep-database", metavar="NAME", help="PostgreSQL: keep this database, reuse it if loaded")
    parser.add_argument("--load-only", action="store_true", help="stop after loading (or resetting) the data")
    args = parser.parse_args()

    from hub.migrate import upgrade

    report = {"benchmark": "crm_recompute", "customers": args.customers, "orders": args.orders,
              "database": args.database, "seed": args.seed, **conditions()}
    admin = None
    tmp = tempfile.TemporaryDirectory()
    keep = args.keep_database
    if keep and args.database != "postgresql":
        parser.error("--keep-database needs --database postgresql")
    if args.database == "postgresql":
        name = keep or f"switchboard_bench_crm_{os.getpid()}"
        admin = create_engine(PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://"),
                              isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    else:
        url = f"sqlite:///{tmp.name}/bench.db"
    try:
        upgrade(url)
        if keep and _loaded(url, args.customers, args.orders, args.seed):
            report["reused_database"] = name
            report["reset_s"] = round(_reset(url), 1)
        else:
            if keep and exists:
                raise SystemExit(f"database {name} exists but does not hold this data set; drop it or pick "
                                 "another name")
            report["load_s"] = round(load(url, args.customers, args.orders, args.seed), 1)
            if keep:
                _record_load(url, args.customers, args.orders, args.seed)
        report["generator_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        spawn = multiprocessing.get_context("spawn")
        for label, when in (() if args.load_only else
                            (("first_run", NOW), ("same_day_run", NOW), ("next_day_run", NOW + timedelta(days=1)))):
            report[f"loadavg_before_{label}"] = os.getloadavg()
            with spawn.Pool(1) as pool:
                elapsed, peak_mb, result = pool.apply(_timed_recompute, (url, when))
            report[f"{label}_s"] = round(elapsed, 1)
            report[f"{label}_peak_rss_mb"] = round(peak_mb, 1)
            report[f"{label}_result"] = result
    finally:
        if admin is not None and not keep:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if admin is not None:
            admin.dispose()
        tmp.cleanup()
    report["loadavg_at_end"] = os.getloadavg()
    if args.json:
        print(json.dumps(report, default=str))
    else:
        for key, value in report.items():
            print(f"{key}: {value}")


if __name__ == "__main__":
    main()
