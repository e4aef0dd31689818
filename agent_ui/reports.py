"""The reports page for supervisors: figures by day, queue, agent and campaign, and the CRM's monthly churn and
repeat-customer rates and revenue by tier, in the viewer's time zone, as a table and as CSV. The numbers come
from hub.metrics and crm.insights, the modules the wallboard uses."""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template, request

from agent_ui.node_scripts import send_node_script
from campaigns.export import neutralise
from crm import insights
from hub import metrics
from hub.auth import role_required
from hub.db import transaction

bp = Blueprint("reports", __name__, template_folder="templates")

SECTION_TITLES = (("days", "By day"), ("queues", "By queue"), ("agents", "By agent"), ("campaigns", "By campaign"),
                  ("months", "Customers by month"), ("tiers", "Revenue by tier"))
SECTION_NOTES = {
    "months": "Whole calendar months in the chosen time zone that touch the range; the current month counts to date. "
              "Churn rate: customers who were buyers in good standing (first-time, repeat, loyal or advocate) at the "
              "month's start and were marked lapsed or churned during it, over all of those. Repeat-customer rate: "
              "buyers in the month who had ordered before it, over all buyers in the month.",
    "tiers": "Orders placed in the range, by each customer's tier now; customers now counts everyone in the tier.",
}
COLUMNS = {**metrics.REPORT_COLUMNS, **insights.REPORT_COLUMNS}


@bp.errorhandler(metrics.ReportError)
@bp.errorhandler(insights.InsightError)
def _bad_request(exc: ValueError):
    return jsonify(error="Bad Request", message=str(exc)), 400


def _date(name: str) -> date:
    value = request.args.get(name, "")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise metrics.ReportError(f"{name} must be a date like 2024-05-31, got {value[:32]!r}") from None


def _report() -> dict[str, Any]:
    zone = metrics.zone_named(request.args.get("tz", "UTC"))
    first, last = _date("from"), _date("to")
    services = current_app.extensions["switchboard"]
    now = services.clock()
    with transaction(services.sessions) as session:
        data = metrics.report(session, first, last, zone, now)
        bounds = metrics.day_bounds(first, last, zone)
        data.update(insights.report(session, first, last, bounds[0][1], bounds[-1][2], zone, now))
    data["columns"] = {section: [{"key": k, "label": label, "kind": kind} for k, label, kind in
                                 _headed(columns, data["currency"])] for section, columns in COLUMNS.items()}
    return data


def _headed(columns: tuple[tuple[str, str, str], ...], currency: str) -> tuple[tuple[str, str, str], ...]:
    """Put the CRM's currency into the headings that name it ("Revenue (USD)")."""
    return tuple((key, label.replace("{currency}", currency), kind) for key, label, kind in columns)


@bp.get("/reports")
@role_required("supervisor")
def reports_page():
    return render_template("reports.html", zones=metrics.time_zone_names(),
                           sections=SECTION_TITLES, notes=SECTION_NOTES)


@bp.get("/reports/data")
@role_required("supervisor", api=True)
def reports_data():
    return jsonify(_report())


def csv_lines(rows: list[dict[str, Any]], columns: tuple[tuple[str, str, str], ...]) -> Iterator[str]:
    """Yield the rows as CSV lines under their headings, every cell safe to open in a spreadsheet."""
    for cells in ([label for _, label, _ in columns], *([row.get(k) for k, _, _ in columns] for row in rows)):
        buffer = io.StringIO()
        csv.writer(buffer).writerow([neutralise(cell) for cell in cells])
        yield buffer.getvalue()


@bp.get("/reports/<section>.csv")
@role_required("supervisor", api=True)
def reports_csv(section: str):
    columns = COLUMNS.get(section)
    if columns is None:
        raise metrics.ReportError(f"no such report: {section[:32]!r}; one of {', '.join(COLUMNS)}")
    data = _report()
    filename = f"switchboard-{section}-{data['from']}-to-{data['to']}.csv"
    return Response("".join(csv_lines(data[section], _headed(columns, data["currency"]))), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.get("/assets/chart.umd.min.js")
def chart_js():
    return send_node_script("chart.js/dist", "chart.umd.min.js")
