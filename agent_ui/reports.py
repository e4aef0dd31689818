"""The reports page for supervisors: figures by day, queue, agent and campaign in the viewer's time zone, as a
table and as CSV. The numbers come from hub.metrics, the module the wallboard uses."""
from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from datetime import date
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template, request, send_from_directory

from campaigns.export import neutralise
from hub import metrics
from hub.auth import role_required
from hub.db import transaction

bp = Blueprint("reports", __name__, template_folder="templates")

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHART_JS_DIR = os.path.join(PROJECT_ROOT, "node_modules", "chart.js", "dist")
SECTION_TITLES = (("days", "By day"), ("queues", "By queue"), ("agents", "By agent"), ("campaigns", "By campaign"))


@bp.errorhandler(metrics.ReportError)
def _bad_request(exc: metrics.ReportError):
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
    with transaction(services.sessions) as session:
        data = metrics.report(session, first, last, zone, services.clock())
    data["columns"] = {section: [{"key": k, "label": label, "kind": kind} for k, label, kind in columns]
                       for section, columns in metrics.REPORT_COLUMNS.items()}
    return data


@bp.get("/reports")
@role_required("supervisor")
def reports_page():
    return render_template("reports.html", zones=metrics.time_zone_names(),
                           sections=SECTION_TITLES)


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
    columns = metrics.REPORT_COLUMNS.get(section)
    if columns is None:
        raise metrics.ReportError(f"no such report: {section[:32]!r}; one of {', '.join(metrics.REPORT_COLUMNS)}")
    data = _report()
    filename = f"switchboard-{section}-{data['from']}-to-{data['to']}.csv"
    return Response("".join(csv_lines(data[section], columns)), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.get("/assets/chart.umd.min.js")
def chart_js():
    return send_from_directory(CHART_JS_DIR, "chart.umd.min.js", mimetype="text/javascript")
