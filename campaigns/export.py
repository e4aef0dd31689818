"""A campaign's leads as CSV, streamed line by line, safe to open in a spreadsheet.

Any cell that a spreadsheet would read as a formula (starting with =, +, -, @, a tab or a carriage return)
gets a leading single quote, as OWASP's CSV injection guidance says. The one exception is the `phone`
column: it holds only numbers the import validated as E.164 ("+" and digits), which a spreadsheet can at
worst read as a positive number, never a function or a reference; it is written as-is so the file can be
re-imported and dialed without editing. Should a phone value ever not be strict E.164 it is neutralised
like any other cell.
"""
from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.models import Lead

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_E164 = re.compile(r"\+[1-9]\d{6,14}")
COLUMNS = ("id", "phone", "first_name", "last_name", "state", "postal_code", "priority", "status", "attempts",
           "last_outcome", "last_attempt_at", "skip_code", "disposition", "customer_id", "source_line",
           "created_at")
CHUNK = 1000


def neutralise(value: Any) -> str:
    """Return the cell's text, with a leading quote when a spreadsheet would take it for a formula."""
    text = "" if value is None else value.isoformat() if hasattr(value, "isoformat") else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def phone_cell(value: str) -> str:
    """Return a strict E.164 number unchanged; neutralise anything else."""
    return value if _E164.fullmatch(value or "") else neutralise(value)


def _line(cells: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(cells)
    return buffer.getvalue()


def export_leads(session: Session, campaign_id: int) -> Iterator[str]:
    """Yield the campaign's leads as CSV lines (header first): fixed columns, then one per custom field,
    then the screening answers as JSON."""
    custom_keys: dict[str, None] = {}
    for fields in session.scalars(select(Lead.custom_fields).where(Lead.campaign_id == campaign_id)
                                  .execution_options(yield_per=CHUNK)):
        custom_keys.update(dict.fromkeys(fields or {}))
    custom = [k for k in custom_keys if k not in COLUMNS]
    yield _line([neutralise(c) for c in (*COLUMNS, *custom, "answers")])
    query = (select(Lead).where(Lead.campaign_id == campaign_id).order_by(Lead.id)
             .execution_options(yield_per=CHUNK))
    for lead in session.scalars(query):
        cells = [phone_cell(lead.phone) if c == "phone" else neutralise(getattr(lead, c)) for c in COLUMNS]
        cells += [neutralise((lead.custom_fields or {}).get(k)) for k in custom]
        cells.append(neutralise(json.dumps(lead.answers, sort_keys=True) if lead.answers else ""))
        yield _line(cells)


HANDOFF_COLUMNS = ("id", "campaign", "lead_id", "first_name", "last_name", "phone", "state", "postal_code",
                   "territory", "rep", "rep_email", "status", "sent_at", "outcome", "amount", "outcome_reason",
                   "answers", "note")


def export_handoffs(handoffs) -> Iterator[str]:
    """Yield handoffs as CSV lines (header first), formula-safe like the leads export."""
    yield _line(list(HANDOFF_COLUMNS))
    for h in handoffs:
        payload = h.payload or {}
        lead = payload.get("lead") or {}
        cells = [h.id, payload.get("campaign"), h.lead_id, lead.get("first_name"), lead.get("last_name"),
                 None, lead.get("state"), lead.get("postal_code"), h.territory, h.rep_name, h.rep_email, h.status,
                 h.sent_at, h.outcome, h.amount, h.outcome_reason, json.dumps(payload.get("answers") or {}),
                 payload.get("note")]
        row = [neutralise(cell) for cell in cells]
        row[5] = phone_cell(lead.get("phone") or "")
        yield _line(row)
