"""Lead import throughput: CSV parsing, E.164 normalisation, dedupe, customer links, DNC scrub, inserts.

    python -m bench.lead_import [--rows 1000000 --database sqlite|postgresql --seed 1 --json]

Generates a seeded CSV file of `--rows` leads (US numbers in the forms people send: +1XXXXXXXXXX, 10
digits, and about 10% formatted like "(212) 555-0101"), about 2% bad rows (invalid numbers, empty phones,
bad states), about 1% numbers repeated, six custom columns. A fresh, migrated database gets one campaign,
5,000 customers whose numbers appear in the file, and a DNC list of 50,000 numbers (internal, complaint and
registry, about a third of them in the file). Only `import_leads` on the file is timed (wall clock), on a
SQLite file database or a private PostgreSQL database (SWITCHBOARD_TEST_POSTGRES_URL, default
postgresql://postgres@127.0.0.1:5432/test; it is created and dropped). It also prints the process's peak
resident memory before and after the import: streaming keeps the second near the first whatever --rows is.
Not a pytest module.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import tempfile
import time
from datetime import UTC, datetime

from sqlalchemy import create_engine, func, insert, select, text

from bench.conditions import conditions

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
STATES = ["NY", "CA", "TX", "FL", "IL", "PA", "OH", "GA", "NC", "MI"]
AREA_CODES = ["212", "213", "214", "305", "312", "404", "415", "503", "617", "702", "713", "718", "917"]
PG_ADMIN_URL = os.environ.get("SWITCHBOARD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _number(rng: random.Random) -> str:
    return f"{rng.choice(AREA_CODES)}{rng.randint(2, 9)}{rng.randint(0, 999999):06d}"


def write_csv(path: str, rows: int, rng: random.Random) -> dict[str, list[str]]:
    """Write the lead file; return samples of its numbers (for customers and the DNC list)."""
    seen: list[str] = []
    samples: list[str] = []
    with open(path, "w", encoding="utf-8") as f:
        f.write("phone,first_name,last_name,state,zip,priority,source,segment,age,income,notes,ref\n")
        for i in range(rows):
            roll = rng.random()
            if roll < 0.01 and seen:
                digits = rng.choice(seen)  # a repeated number
            else:
                digits = _number(rng)
                if len(seen) < 200_000:
                    seen.append(digits)
                if rng.random() < 0.06:
                    samples.append(digits)
            form = rng.random()
            phone = f"+1{digits}" if form < 0.5 else digits if form < 0.9 else \
                f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"
            state = rng.choice(STATES)
            bad = rng.random()
            if bad < 0.008:
                phone = "12345"
            elif bad < 0.012:
                phone = ""
            elif bad < 0.016:
                phone = f"+1{rng.choice('01')}{digits[1:]}"  # an area code cannot start with 0 or 1
            elif bad < 0.02:
                state = "ZZ"
            f.write(f"{phone},Name{i},Family{i % 997},{state},{rng.randint(10000, 99999)},{i % 5},web,"
                    f"s{i % 7},{20 + i % 50},{30000 + i % 90000},\"note, with comma\",R{i}\n")
    return {"samples": samples}


def _database(kind: str, tmp: str) -> tuple[str, callable]:
    if kind == "sqlite":
        return f"sqlite:///{os.path.join(tmp, 'bench.db')}", lambda: None
    from urllib.parse import urlsplit, urlunsplit

    name = f"switchboard_bench_{os.getpid()}"
    admin = create_engine(PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    parts = urlsplit(PG_ADMIN_URL)

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, "")), drop


def seed(session, samples: list[str], rng: random.Random) -> int:
    """Add the campaign, customers and a DNC list of 50,000 numbers; return the campaign id."""
    from campaigns.models import Campaign, DncEntry
    from hub.models import Customer, CustomerPhone

    campaign = Campaign(name="Bench", caller_id="+14155550100", abandon_message="This is Bench")
    session.add(campaign)
    session.flush()
    customer_numbers = samples[:5000]
    session.execute(insert(Customer), [{"name": f"C{i}", "value_tier": "standard", "lifecycle_stage": "prospect",
                                         "custom_fields": {}, "created_at": T0} for i in range(len(customer_numbers))])
    ids = list(session.scalars(select(Customer.id).order_by(Customer.id)))
    session.execute(insert(CustomerPhone), [{"customer_id": c, "number": "+1" + n}
                                             for c, n in zip(ids, customer_numbers)])
    dnc = list(dict.fromkeys(samples[5000:5000 + 17000]))
    while len(dnc) < 50_000:
        dnc.append(_number(rng))
    dnc = list(dict.fromkeys(dnc))
    sources = ["registry"] * 8 + ["internal", "complaint"]
    session.execute(insert(DncEntry), [{"phone": "+1" + n, "source": rng.choice(sources), "added_at": T0}
                                        for n in dnc])
    session.commit()
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("ANALYZE"))  # as autovacuum would have done on a live database
        session.commit()
    return campaign.id


def _peak_rss_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # KiB on Linux


def run(rows: int, database: str, seed_value: int) -> dict:
    from campaigns.leads import import_leads
    from campaigns.models import Lead
    from hub.db import make_engine, make_session_factory
    from hub.migrate import upgrade

    rng = random.Random(seed_value)
    start_conditions = conditions()
    with tempfile.TemporaryDirectory() as tmp:
        url, drop = _database(database, tmp)
        try:
            upgrade(url)
            csv_path = os.path.join(tmp, "leads.csv")
            info = write_csv(csv_path, rows, rng)
            engine = make_engine(url)
            sessions = make_session_factory(engine)
            with sessions() as session:
                campaign_id = seed(session, info["samples"], rng)
            with sessions() as session, open(csv_path, newline="", encoding="utf-8") as stream:
                peak_before = _peak_rss_mb()
                started, cpu_started = time.perf_counter(), time.process_time()
                report = import_leads(session, campaign_id, stream, "US", T0)
                elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
                peak_after = _peak_rss_mb()
                stored = session.scalar(select(func.count()).select_from(Lead))
            engine.dispose()
        finally:
            drop()
    return {
        "rows": rows, "database": database, "seconds": round(elapsed, 2), "rows_per_s": round(rows / elapsed),
        "importer_cpu_seconds": round(cpu, 2),
        "imported": report.imported, "stored": stored, "duplicates": report.duplicates,
        "dnc_flagged": report.dnc_flagged, "linked_to_customers": report.linked_to_customers,
        "rejected": len(report.rejected), "peak_rss_mb_before_import": peak_before,
        "peak_rss_mb_after_import": peak_after, "conditions": start_conditions,
        "loadavg_1_5_15_at_end": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    result = run(args.rows, args.database, args.seed)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    c = result["conditions"]
    print(f"conditions: {result['rows']} rows on {result['database']}, {c['cpus']} cores ({c['cpu']}), "
          f"Python {c['python']}, load average at start {tuple(round(x, 2) for x in c['loadavg_1_5_15_at_start'])}, "
          f"at end {tuple(round(x, 2) for x in result['loadavg_1_5_15_at_end'])}")
    print(f"imported {result['imported']}, duplicates {result['duplicates']}, DNC flagged {result['dnc_flagged']}, "
          f"linked to customers {result['linked_to_customers']}, rejected {result['rejected']}")
    print(f"{result['seconds']} s, {result['rows_per_s']} rows/s "
          f"(importer process CPU {result['importer_cpu_seconds']} s; the database server's is not included)")
    print(f"peak resident memory {result['peak_rss_mb_before_import']} MB before the import (file and seed), "
          f"{result['peak_rss_mb_after_import']} MB after it (SQLite's page cache of up to 128 MB included)")


if __name__ == "__main__":
    main()
