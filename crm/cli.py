"""`python -m hub crm ...`: import purchase history, recompute, list segments, export a segment."""
from __future__ import annotations

import argparse
import json
import sys


def _hub():
    from hub import cli

    return cli


def _sessions():
    from hub.db import make_engine, make_session_factory

    engine = make_engine(_hub()._settings().database_url)
    return engine, make_session_factory(engine)


def cmd_import_orders(args) -> int:
    from crm.orders import import_orders, text_lines
    from hub.columns import utcnow

    hub = _hub()
    region = args.region or hub._settings().default_region
    with open(args.csv, "rb") as stream:  # decoded line by line: a line that is not UTF-8 is reported as such
        report = hub._in_session(lambda s: import_orders(s, text_lines(stream), region, utcnow()))
    print(f"imported {report.imported}, duplicates {report.duplicates}, customers {report.customers}, "
          f"rejected {len(report.rejected)}")
    for line, reason in sorted(report.rejected):
        print(f"  line {line}: {reason}")
    if report.imported:
        print("run `python -m hub crm recompute` (or wait for the daily run) to update tiers and stages")
    return 0 if not report.rejected else 2


def cmd_recompute(args) -> int:
    from crm.recompute import recompute_all
    from hub.columns import utcnow

    engine, sessions = _sessions()
    try:
        result = recompute_all(sessions, utcnow())
    finally:
        engine.dispose()
    print(json.dumps(result.as_dict(), indent=2))
    return 0


def cmd_segments(args) -> int:
    from sqlalchemy import select

    from crm.models import Segment
    from crm.segments import count_segment
    from hub.columns import utcnow

    def rows(session):
        now = utcnow()
        return [(s.id, s.name, count_segment(session, s.criteria, now), s.criteria)
                for s in session.scalars(select(Segment).order_by(Segment.name))]

    for segment_id, name, count, criteria in _hub()._in_session(rows):
        print(f"{segment_id:>4}  {name:<30} {count:>9} customers  {json.dumps(criteria, sort_keys=True)}")
    return 0


def cmd_export_segment(args) -> int:
    from crm.segments import export_segment, find_segment
    from hub.columns import utcnow

    def write(session):
        criteria = find_segment(session, args.segment).criteria
        out = open(args.output, "w", newline="", encoding="utf-8") if args.output != "-" else sys.stdout
        try:
            count = -1
            for line in export_segment(session, criteria, utcnow()):
                out.write(line)
                count += 1
            return count
        finally:
            if out is not sys.stdout:
                out.close()

    count = _hub()._in_session(write)
    if args.output != "-":
        print(f"{count} customers written to {args.output}")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add the crm command group to `python -m hub`."""
    crm = sub.add_parser("crm", help="customer value: orders, recompute, segments").add_subparsers(
        dest="crm_command", required=True)
    p = crm.add_parser("import-orders", help="import purchase history from CSV (ordered_at, amount, and "
                                             "customer_id, customer_ref or phone; [currency, product, category, "
                                             "order_id])")
    p.add_argument("csv")
    p.add_argument("--region", help="region for numbers without a country code (default: settings)")
    p.set_defaults(func=cmd_import_orders)
    p = crm.add_parser("recompute", help="recompute every customer's tier, stage, lifetime value and churn risk")
    p.set_defaults(func=cmd_recompute)
    p = crm.add_parser("segments", help="list the saved segments with their live counts")
    p.set_defaults(func=cmd_segments)
    p = crm.add_parser("export-segment", help="write a segment's customers as CSV")
    p.add_argument("segment", help="the segment's name or id")
    p.add_argument("output", help="the file to write (- for standard output)")
    p.set_defaults(func=cmd_export_segment)
