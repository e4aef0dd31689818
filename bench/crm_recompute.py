"""Full CRM recompute: tiers, RFM, stages, BG/NBD + Gamma-Gamma lifetime value, churn, value to date.

    python -m bench.crm_recompute [--customers 100000 --orders 1000000 --database postgresql --seed 1 --json]

Generates, seeded, `--customers` customers (a quarter never buy) and `--orders` orders over three years:
each buyer has a buying rate drawn from a gamma distribution and a spend level drawn from another, the way
the BG/NBD and Gamma-Gamma models picture a customer base. Rows go in with PostgreSQL COPY (or SQLite
executemany). Then `crm.recompute.recompute_all` is timed three times, each run in a fresh child process
whose own peak RSS is reported (the data generation above is not in it; the database's memory is not
either):

* first_run: every buyer moves from standard/prospect, so every change is written with its history row and
  timeline entry;
* same_day_run: the same data at the same time: every figure is the same, so almost nothing is written;
* next_day_run: a day later: every buyer's P(alive), expected purchases and lifetime value change (they are
  a day older), so their rows are rewritten, and some move stage (the daily steady state).

The load average before each run is printed: the machine is shared, and a busy machine is slower.
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


def _timed_recompute(url: str, when: datetime) -> tuple[float, float, dict]:
    """One full recompute in this (child) process: seconds, this process's peak RSS in MB, the result."""
    from crm.recompute import recompute_all
    from hub.db import make_engine, make_session_factory

    engine = make_engine(url)
    started = time.monotonic()
    result = recompute_all(make_session_factory(engine), when)
    elapsed = time.monotonic() - started
    engine.dispose()
    return elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, result.as_dict()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from hub.migrate import upgrade

    report = {"benchmark": "crm_recompute", "customers": args.customers, "orders": args.orders,
              "database": args.database, "seed": args.seed, **conditions()}
    admin = None
    tmp = tempfile.TemporaryDirectory()
    if args.database == "postgresql":
        name = f"switchboard_bench_crm_{os.getpid()}"
        admin = create_engine(PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://"),
                              isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    else:
        url = f"sqlite:///{tmp.name}/bench.db"
    try:
        upgrade(url)
        report["load_s"] = round(load(url, args.customers, args.orders, args.seed), 1)
        report["generator_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        spawn = multiprocessing.get_context("spawn")
        for label, when in (("first_run", NOW), ("same_day_run", NOW), ("next_day_run", NOW + timedelta(days=1))):
            report[f"loadavg_before_{label}"] = os.getloadavg()
            with spawn.Pool(1) as pool:
                elapsed, peak_mb, result = pool.apply(_timed_recompute, (url, when))
            report[f"{label}_s"] = round(elapsed, 1)
            report[f"{label}_peak_rss_mb"] = round(peak_mb, 1)
            report[f"{label}_result"] = result
    finally:
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
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
