"""`python -m hub campaigns|leads|dnc ...`: set up campaigns, import and export leads, keep the DNC lists."""
from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import date


def _hub():
    from hub import cli

    return cli


def cmd_campaigns_add(args) -> int:
    from campaigns.admin import create_campaign
    from hub.errors import FlowError

    values: dict = {}
    if args.from_json:
        try:
            with open(args.from_json, encoding="utf-8") as f:
                values = json.load(f)
        except (OSError, ValueError) as exc:
            raise FlowError(f"cannot read {args.from_json}: {exc}", 400) from None
        if not isinstance(values, dict):
            raise FlowError(f"{args.from_json} must hold a JSON object of settings", 400)
    values["name"] = args.name
    for option, name in (("caller_id", "caller_id"), ("mode", "mode")):
        if getattr(args, option):
            values[name] = getattr(args, option)
    if args.agents:
        values["agents"] = [x.strip() for x in args.agents.split(",") if x.strip()]
    hub = _hub()
    region = hub._settings().default_region
    campaign = hub._in_session(lambda s: create_campaign(s, values, region))
    print(f"campaign {campaign.name} ({campaign.mode}) created with id {campaign.id}")
    return 0


def cmd_campaigns_list(args) -> int:
    from sqlalchemy import func, select

    from campaigns.models import Campaign, Lead

    def rows(session):
        counts = dict(session.execute(select(Lead.campaign_id, func.count()).group_by(Lead.campaign_id)).all())
        return [(c.id, c.name, c.status, c.mode, c.caller_id, counts.get(c.id, 0))
                for c in session.scalars(select(Campaign).order_by(Campaign.id))]

    for cid, name, status, mode, caller_id, leads in _hub()._in_session(rows):
        print(f"{cid:>4}  {name:<30} {status:<8} {mode:<12} {caller_id:<16} {leads} leads")
    return 0


def cmd_campaigns_control(args) -> int:
    """start, pause, resume or stop a campaign (its pacing loop runs on the workers)."""
    from campaigns.admin import find_campaign
    from campaigns.control import change_status
    from hub.services import build_services

    hub = _hub()
    campaign_id = hub._in_session(lambda s: find_campaign(s, args.campaign).id)
    services = build_services(hub._settings())
    try:
        status = change_status(services, campaign_id, args.campaigns_command)
    finally:
        services.close()
    print(f"campaign {args.campaign} is {status}")
    return 0


def cmd_campaigns_status(args) -> int:
    """Print the campaign's live figures as JSON (the same as GET /api/v1/campaigns/<id>/status)."""
    from campaigns.admin import find_campaign
    from campaigns.stats import campaign_summary, funnel_report
    from hub.columns import utcnow

    def figures(session):
        campaign = find_campaign(session, args.campaign)
        return {"status": campaign_summary(session, campaign, utcnow()), "funnel": funnel_report(session, campaign)}

    print(json.dumps(_hub()._in_session(figures), indent=2, default=str))
    return 0


def cmd_leads_import(args) -> int:
    from campaigns.admin import find_campaign
    from campaigns.leads import import_leads
    from hub.columns import utcnow

    hub = _hub()
    region = args.region or hub._settings().default_region
    with open(args.csv, newline="", encoding="utf-8-sig") as stream:
        list_name = args.list or os.path.splitext(os.path.basename(args.csv))[0]
        report = hub._in_session(lambda s: import_leads(s, find_campaign(s, args.campaign).id, stream, region,
                                                        utcnow(), list_name=list_name))
    print(f"imported {report.imported}, duplicates {report.duplicates}, on do-not-call lists "
          f"{report.dnc_flagged}, linked to customers {report.linked_to_customers}, "
          f"rejected {len(report.rejected)}")
    for line, reason in report.rejected:
        print(f"  line {line}: {reason}")
    return 0 if not report.rejected else 2


def cmd_leads_export(args) -> int:
    from campaigns.admin import find_campaign
    from campaigns.export import export_leads

    def write(session):
        campaign_id = find_campaign(session, args.campaign).id
        out = open(args.output, "w", newline="", encoding="utf-8") if args.output else sys.stdout
        try:
            count = -1
            for line in export_leads(session, campaign_id):
                out.write(line)
                count += 1
            return count
        finally:
            if args.output:
                out.close()

    count = _hub()._in_session(write)
    if args.output:
        print(f"{count} leads written to {args.output}")
    return 0


def cmd_dnc_add(args) -> int:
    from campaigns.dnc import add_complaint, add_opt_out
    from hub.columns import utcnow

    hub = _hub()
    region = hub._settings().default_region
    add = add_complaint if args.complaint else add_opt_out
    entry = hub._in_session(lambda s: add(s, args.phone, args.reason, utcnow(), region))
    print(f"{entry.phone} is on the {entry.source} do-not-call list")
    return 0


def cmd_dnc_import_registry(args) -> int:
    from campaigns.dnc import import_registry_extract
    from hub.columns import utcnow
    from hub.errors import FlowError

    try:
        extract_date = date.fromisoformat(args.date)
    except ValueError:
        raise FlowError(f"--date must be YYYY-MM-DD, not {args.date!r}", 400) from None
    hub = _hub()
    region = hub._settings().default_region
    with open(args.csv, newline="", encoding="utf-8-sig") as stream:
        report = hub._in_session(lambda s: import_registry_extract(s, stream, extract_date, region, utcnow()))
    print(f"registry extract of {extract_date} imported: {report.rows} numbers, duplicates {report.duplicates}, "
          f"rejected {len(report.rejected)}")
    for line, reason in report.rejected:
        print(f"  line {line}: {reason}")
    return 0 if not report.rejected else 2


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add the campaigns, leads and dnc command groups to `python -m hub`."""
    campaigns = sub.add_parser("campaigns", help="manage outbound campaigns").add_subparsers(
        dest="campaigns_command", required=True)
    p = campaigns.add_parser("add", help="create a campaign (a draft until started)")
    p.add_argument("name")
    p.add_argument("--caller-id", help="the number the campaign calls from")
    p.add_argument("--mode", choices=["preview", "progressive", "predictive"])
    p.add_argument("--agents", help="agent logins, e.g. alice,bob")
    p.add_argument("--from-json", help="a JSON file with any other settings (see docs/campaigns.md)")
    p.set_defaults(func=cmd_campaigns_add)
    p = campaigns.add_parser("list", help="list campaigns with their lead counts")
    p.set_defaults(func=cmd_campaigns_list)
    for action, words in (("start", "start dialing"), ("pause", "pause: no new dials; ringing calls finish"),
                          ("resume", "resume a paused campaign"), ("stop", "stop the campaign (leads are kept)")):
        p = campaigns.add_parser(action, help=words)
        p.add_argument("campaign", help="the campaign's name or id")
        p.set_defaults(func=cmd_campaigns_control)
    p = campaigns.add_parser("status", help="the campaign's live figures, funnel and costs, as JSON")
    p.add_argument("campaign", help="the campaign's name or id")
    p.set_defaults(func=cmd_campaigns_status)

    leads = sub.add_parser("leads", help="import and export a campaign's leads").add_subparsers(
        dest="leads_command", required=True)
    p = leads.add_parser("import", help="import leads from CSV (phone, [first_name, last_name, state, "
                                        "postal_code|zip, priority], extras)")
    p.add_argument("campaign", help="campaign id or name")
    p.add_argument("csv")
    p.add_argument("--region", help="region for numbers without a country code (default: settings)")
    p.add_argument("--list", help="the list's name, for the funnel by list (default: the file's name)")
    p.set_defaults(func=cmd_leads_import)
    p = leads.add_parser("export", help="export a campaign's leads as CSV")
    p.add_argument("campaign", help="campaign id or name")
    p.add_argument("-o", "--output", help="file to write (default: standard output)")
    p.set_defaults(func=cmd_leads_export)

    dnc = sub.add_parser("dnc", help="do-not-call lists").add_subparsers(dest="dnc_command", required=True)
    p = dnc.add_parser("add", help="put a number on the internal list (an opt-out), effective at once")
    p.add_argument("phone")
    p.add_argument("--reason")
    p.add_argument("--complaint", action="store_true", help="record it as a complaint instead of an opt-out")
    p.set_defaults(func=cmd_dnc_add)
    p = dnc.add_parser("import-registry", help="replace the registry list with an extract")
    p.add_argument("csv")
    p.add_argument("--date", required=True, help="the extract's date, YYYY-MM-DD")
    p.set_defaults(func=cmd_dnc_import_registry)
