"""Leads: CSV import (streamed, batched), single leads from the API, and their JSON form.

A bad row never costs a good one: each bad row is reported with the line where its record starts in the
file (the header is line 1; a quoted value spanning lines counts all its lines) and the reason. A number
already in the campaign, or twice in the file, is a duplicate, not an error. A number on a do-not-call
list is imported but marked, so the list shows why it will not be dialed.
"""
from __future__ import annotations

import csv
import functools
import json
import queue
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

import phonenumbers
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from campaigns.dnc import dnc_sources_for, one_of_numbers, skip_code_for
from campaigns.models import Campaign, Lead, LeadStatus
from hub.errors import FlowError
from hub.models import CustomerPhone
from hub.phone import InvalidNumber, to_e164

US_STATES = frozenset(
    "AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND OH "
    "OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC PR VI GU AS MP".split())
KNOWN_COLUMNS = ("phone", "first_name", "last_name", "state", "postal_code", "zip", "priority")
BATCH_SIZE = 5000  # rows per transaction: a commit costs 10-25 ms (fsync), so fewer is faster

# NANP numbers written as +1 and ten digits, or ten digits read in the US, possibly with the usual
# separators ("(212) 555-0101", "+1 212.555.0101"), skip phonenumbers.parse, the slow half of normalising:
# parse drops those separators and builds the same +1 number. Such a number is valid when it is valid for
# the US (US is the first NANP region and has no leading-digit shortcut, so is_valid_number would pick it);
# that test is phonenumbers' own (the general pattern, then any number type's pattern, for ten digits),
# compiled once from its US metadata instead of walked type by type. Anything else, including numbers valid
# elsewhere in the NANP, takes the full path. tests/campaigns/test_leads.py checks with Hypothesis that both
# paths agree.
_PLAIN = re.compile(r"[0-9 ().-]+")
_SEPARATORS = str.maketrans("", "", " ().-")
_US_TYPES = ("premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan", "voicemail",
             "fixed_line", "mobile")


@functools.cache
def _us_ten_digit_patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    def applies(desc) -> bool:
        return (desc is not None and bool(desc.national_number_pattern)
                and (not desc.possible_length or 10 in desc.possible_length))

    metadata = phonenumbers.PhoneMetadata.metadata_for_region("US")
    general = metadata.general_desc
    if not applies(general):
        return re.compile(r"(?!)"), re.compile(r"(?!)")  # never matches: everything takes the full path
    typed = [getattr(metadata, name) for name in _US_TYPES]
    alternatives = "|".join(f"(?:{d.national_number_pattern})" for d in typed if applies(d)) or r"(?!)"
    return re.compile(general.national_number_pattern), re.compile(alternatives)


def normalise_number(raw: str, region: str) -> str:
    """Return `raw` as E.164, exactly as hub.phone.to_e164 would, faster for NANP numbers.

    Raises:
        InvalidNumber: when `raw` is not a valid number.
    """
    text = raw.strip()
    digits = None
    if text.startswith("+1") and _PLAIN.fullmatch(text, 2):
        digits = text[2:].translate(_SEPARATORS)
    elif region == "US" and _PLAIN.fullmatch(text):
        digits = text.translate(_SEPARATORS)
    if digits is not None and len(digits) == 10 and digits[0] in "23456789" and digits.isdigit():
        general, typed = _us_ten_digit_patterns()
        if general.fullmatch(digits) and typed.fullmatch(digits):
            return "+1" + digits
    return to_e164(raw, region)


@dataclass
class LeadImportReport:
    imported: int = 0
    duplicates: int = 0
    dnc_flagged: int = 0
    linked_to_customers: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)

    def as_dict(self) -> dict[str, Any]:
        return {
            "imported": self.imported, "duplicates": self.duplicates, "dnc_flagged": self.dnc_flagged,
            "linked_to_customers": self.linked_to_customers,
            "rejected": [{"line": line, "reason": reason} for line, reason in self.rejected],
        }


def _text(value: Any, name: str, limit: int) -> str | None:
    text = "" if value is None else str(value).strip()
    if len(text) > limit:
        raise ValueError(f"{name} is longer than {limit} characters")
    return text or None


def parse_lead(values: dict[str, Any], region: str) -> dict[str, Any]:
    """Validate one lead's known fields; return the columns to store (without custom fields).

    Raises:
        ValueError: with a reason a person can act on.
    """
    raw = "" if values.get("phone") is None else str(values["phone"]).strip()
    if not raw:
        raise ValueError("phone is empty")
    try:
        phone = normalise_number(raw, region)
    except InvalidNumber as exc:
        raise ValueError(f"phone {exc}") from None
    state = _text(values.get("state"), "state", 100)
    if state is not None:
        state = state.upper()
        if state not in US_STATES:
            raise ValueError(f"state must be a US two-letter code such as NY, not {state!r}")
    postal = _text(values.get("postal_code") or values.get("zip"), "postal_code", 16)
    priority_text = "" if values.get("priority") is None else str(values["priority"]).strip()
    try:
        priority = int(priority_text) if priority_text else 0
    except ValueError:
        raise ValueError(f"priority must be a whole number, not {priority_text!r}") from None
    if not -1_000_000 <= priority <= 1_000_000:
        raise ValueError("priority must be between -1000000 and 1000000")
    return {"phone": phone, "first_name": _text(values.get("first_name"), "first_name", 100),
            "last_name": _text(values.get("last_name"), "last_name", 100), "state": state,
            "postal_code": postal, "priority": priority}


def _campaign_or_404(session: Session, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise FlowError(f"no campaign {campaign_id}", 404)
    return campaign


def _lead_row(campaign_id: int, fields: dict[str, Any], custom: dict[str, Any], line: int | None,
              now: datetime, list_name: str | None = None) -> dict[str, Any]:
    # every row carries every column so the driver runs one executemany per batch
    return {"campaign_id": campaign_id, **fields, "customer_id": None, "custom_fields": custom,
            "status": LeadStatus.READY.value, "attempts": 0, "attempts_by_outcome": {}, "answers": {},
            "skip_code": None, "skip_detail": None, "source_line": line, "list_name": list_name, "created_at": now}


def _link_and_scrub(session: Session, rows: list[dict[str, Any]]) -> None:
    """Link each row to the customer who owns its number and set its DNC mark: one query each per batch."""
    phones = [r["phone"] for r in rows]
    owners = dict(session.execute(select(CustomerPhone.number, CustomerPhone.customer_id)
                                  .where(one_of_numbers(session, CustomerPhone.number, phones))).all())
    sources = dnc_sources_for(session, phones)
    for row in rows:
        row["customer_id"] = owners.get(row["phone"])
        code = skip_code_for(sources[row["phone"]])
        if code is not None:
            row["skip_code"], row["skip_detail"] = code, "on a do-not-call list"


_COLUMNS = ("campaign_id", "phone", "first_name", "last_name", "state", "postal_code", "priority", "customer_id",
            "custom_fields", "status", "attempts", "attempts_by_outcome", "answers", "skip_code", "skip_detail",
            "source_line", "list_name", "created_at")
_PER_ROW = ("phone", "first_name", "last_name", "state", "postal_code", "priority", "customer_id", "custom_fields",
            "skip_code", "skip_detail", "source_line", "list_name")
_POSTGRES_STAGE = ("CREATE TEMP TABLE IF NOT EXISTS lead_import (phone text, first_name text, last_name text, "
                   "state text, postal_code text, priority integer, customer_id integer, custom_fields text, "
                   "skip_code text, skip_detail text, source_line integer, list_name text) ON COMMIT DELETE ROWS")
_POSTGRES_INSERT = (
    f"INSERT INTO leads ({', '.join(_COLUMNS)}) "
    "SELECT %s, phone, first_name, last_name, state, postal_code, priority, customer_id, "
    "CAST(custom_fields AS json), %s, 0, CAST('{}' AS json), CAST('{}' AS json), skip_code, skip_detail, "
    "source_line, list_name, %s FROM lead_import ORDER BY source_line "
    "ON CONFLICT (campaign_id, phone) DO NOTHING RETURNING phone")
_SQLITE_INSERT = f"INSERT INTO leads ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"


def _insert_new(session: Session, campaign_id: int, rows: list[dict[str, Any]], now: datetime) -> set[str]:
    """Insert the rows whose number is not in the campaign yet, in one statement; return the numbers inserted.

    PostgreSQL: COPY into a temporary table, then one INSERT ... SELECT ... ON CONFLICT DO NOTHING, so the
    unique key decides and no lookup of the growing leads table is needed (its statistics lag during a big
    import; COPY is several times cheaper than binding arrays or multi-row VALUES). SQLite:
    the write lock is held from the transaction's first statement (BEGIN IMMEDIATE), so a lookup and an
    executemany cannot interleave with another import.
    """
    connection = session.connection()
    created_at = Lead.__table__.c.created_at.type.bind_processor(connection.dialect)(now)
    for row in rows:
        row["custom_fields"] = json.dumps(row["custom_fields"])
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(_POSTGRES_STAGE)
        cursor = connection.connection.driver_connection.cursor()
        with cursor.copy(f"COPY lead_import ({', '.join(_PER_ROW)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[c] for c in _PER_ROW])
        result = connection.exec_driver_sql(_POSTGRES_INSERT, (campaign_id, LeadStatus.READY.value, created_at))
        return {phone for (phone,) in result}
    phones = [row["phone"] for row in rows]
    existing = set(session.scalars(select(Lead.phone).where(Lead.campaign_id == campaign_id,
                                                            one_of_numbers(session, Lead.phone, phones))))
    fresh = [row for row in rows if row["phone"] not in existing]
    if fresh:
        connection.exec_driver_sql(_SQLITE_INSERT, [
            (campaign_id, r["phone"], r["first_name"], r["last_name"], r["state"], r["postal_code"], r["priority"],
             r["customer_id"], r["custom_fields"], LeadStatus.READY.value, 0, "{}", "{}", r["skip_code"],
             r["skip_detail"], r["source_line"], r["list_name"], created_at) for r in fresh])
    return {row["phone"] for row in fresh}


def _store_batch(session: Session, campaign_id: int, pending: dict[str, dict[str, Any]], now: datetime,
                 report: LeadImportReport) -> None:
    rows = list(pending.values())
    _link_and_scrub(session, rows)
    inserted = _insert_new(session, campaign_id, rows, now)
    session.commit()
    report.imported += len(inserted)
    report.duplicates += len(rows) - len(inserted)
    for row in rows:
        if row["phone"] in inserted:
            report.dnc_flagged += row["skip_code"] is not None
            report.linked_to_customers += row["customer_id"] is not None


def _header_map(header: list[str]) -> tuple[dict[str, int], list[tuple[str, int]], str | None]:
    known: dict[str, int] = {}
    custom: list[tuple[str, int]] = []
    seen: set[str] = set()
    for index, name in enumerate(header):
        name = name.strip().lstrip("\ufeff")
        key = name.lower()
        if not name:
            continue
        if key in seen:
            return {}, [], f"the header names column {name!r} twice"
        seen.add(key)
        if key in KNOWN_COLUMNS:
            known[key] = index
        else:
            custom.append((name, index))
    if "phone" not in known:
        return {}, [], "the header must name a 'phone' column"
    return known, custom, None


def import_leads(session: Session, campaign_id: int, stream: TextIO, region: str, now: datetime,
                 batch_size: int = BATCH_SIZE, list_name: str | None = None) -> LeadImportReport:
    """Import a campaign's leads from CSV, streamed and inserted in batches (each batch committed).

    Columns: phone (required), first_name, last_name, state, postal_code or zip, priority; any other
    column is kept in the lead's custom fields. `list_name` names the list the leads came from (the funnel
    and its costs are also reported per list).

    Raises:
        FlowError: 404 when the campaign does not exist.
    """
    _campaign_or_404(session, campaign_id)
    session.commit()  # each batch below is its own transaction
    report = LeadImportReport()
    reader = csv.reader(stream)
    try:
        header = next(reader)
    except StopIteration:
        report.rejected.append((1, "the file is empty"))
        return report
    known, custom, problem = _header_map(header)
    if problem:
        report.rejected.append((1, problem))
        return report
    with _import_session(session) as writer_session:
        _import_rows(writer_session, campaign_id, reader, header, known, custom, region, now, batch_size, report,
                     (list_name or "").strip()[:100] or None)
    return report


@contextmanager
def _import_session(session: Session) -> Iterator[Session]:
    """Yield the session the batches are written with.

    On SQLite that is a session on one dedicated connection with a 128 MB page cache: inserting into the
    leads indexes at random places thrashes the default 2 MB once the table passes a few hundred thousand
    rows, and a pooled session could take a different connection (a cold cache) after every commit. The
    connection goes back to the pool with its previous cache size.
    """
    bind = session.get_bind()
    if bind.dialect.name != "sqlite" or not isinstance(bind, Engine):
        yield session
        return
    with bind.connect() as connection:
        previous = int(connection.exec_driver_sql("PRAGMA cache_size").scalar())
        connection.exec_driver_sql("PRAGMA cache_size = -131072")
        connection.commit()
        import_session = Session(bind=connection, expire_on_commit=False)
        try:
            yield import_session
        finally:
            import_session.close()
            connection.rollback()
            connection.exec_driver_sql(f"PRAGMA cache_size = {previous}")
            connection.commit()


class _BatchWriter:
    """On PostgreSQL, store batches on a second thread while the caller reads and checks the next one.

    psycopg releases the GIL while the server works, so reading the file and inserting overlap instead of
    taking turns. One batch waits at most; the session is only used by this thread until it is joined. On
    SQLite the insert runs in this process and mostly holds the GIL, so batches are stored inline.
    """

    _DONE = object()

    def __init__(self, session: Session, campaign_id: int, now: datetime, report: LeadImportReport) -> None:
        self.args = (session, campaign_id)
        self.now, self.report = now, report
        self.queue: queue.Queue = queue.Queue(maxsize=1)
        self.error: BaseException | None = None
        self.threaded = session.get_bind().dialect.name == "postgresql"
        self.thread = threading.Thread(target=self._run, name="lead-import-writer", daemon=True)

    def _run(self) -> None:
        while (batch := self.queue.get()) is not self._DONE:
            if self.error is None:
                try:
                    _store_batch(*self.args, batch, self.now, self.report)
                except BaseException as exc:  # noqa: BLE001 - handed to the reading thread
                    self.error = exc

    def put(self, batch: dict[str, dict[str, Any]]) -> None:
        if not self.threaded:
            _store_batch(*self.args, batch, self.now, self.report)
            return
        if self.error is not None:
            raise self.error
        self.queue.put(batch)

    def __enter__(self) -> _BatchWriter:
        if self.threaded:
            self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        if not self.threaded:
            return
        self.queue.put(self._DONE)
        self.thread.join()
        if self.error is not None and exc_info[0] is None:
            raise self.error


def _import_rows(session: Session, campaign_id: int, reader, header: list[str], known: dict[str, int],
                 custom: list[tuple[str, int]], region: str, now: datetime, batch_size: int,
                 report: LeadImportReport, list_name: str | None = None) -> None:
    width = len(header)
    known_items = list(known.items())
    pending: dict[str, dict[str, Any]] = {}
    previous_end = reader.line_num
    repeated_in_file = 0  # the writer thread owns report.duplicates until it is joined
    with _BatchWriter(session, campaign_id, now, report) as writer:
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                # e.g. a quote never closed: nothing after this point can be read reliably
                report.rejected.append((previous_end + 1, f"the file cannot be read from this line on: {exc}"))
                break
            line, previous_end = previous_end + 1, reader.line_num
            if not cells:
                continue  # a blank line
            if len(cells) > width and any(c.strip() for c in cells[width:]):
                report.rejected.append((line, f"the row has {len(cells)} values but the header names {width} "
                                              "columns"))
                continue
            if len(cells) < width:
                cells = cells + [""] * (width - len(cells))
            try:
                fields = parse_lead({k: cells[i] for k, i in known_items}, region)
            except ValueError as exc:
                report.rejected.append((line, str(exc)))
                continue
            if fields["phone"] in pending:
                repeated_in_file += 1
                continue
            extras = {name: cells[i] for name, i in custom if cells[i] != ""}
            pending[fields["phone"]] = _lead_row(campaign_id, fields, extras, line, now, list_name)
            if len(pending) >= batch_size:
                writer.put(pending)
                pending = {}
        if pending:
            writer.put(pending)
    report.duplicates += repeated_in_file


def add_lead(session: Session, campaign_id: int, values: dict[str, Any], region: str, now: datetime) -> Lead:
    """Add one lead (the API's JSON form): same checks as an import row; custom fields under `custom_fields`.

    Raises:
        FlowError: 400 for a bad field, 404 for no campaign, 409 when the number is in the campaign already.
    """
    _campaign_or_404(session, campaign_id)
    unknown = set(values) - {*KNOWN_COLUMNS, "custom_fields", "list_name"}
    if unknown:
        raise FlowError(f"unknown lead fields: {', '.join(sorted(unknown))} (put extras in custom_fields)", 400)
    custom = values.get("custom_fields") or {}
    if not isinstance(custom, dict):
        raise FlowError("custom_fields must be an object", 400)
    try:
        fields = parse_lead(values, region)
    except ValueError as exc:
        raise FlowError(str(exc), 400) from None
    if session.scalar(select(Lead.id).where(Lead.campaign_id == campaign_id, Lead.phone == fields["phone"])):
        raise FlowError(f"{fields['phone']} is already a lead of this campaign", 409)
    list_name = values.get("list_name")
    if list_name is not None and (not isinstance(list_name, str) or len(list_name) > 100):
        raise FlowError("list_name must be text of at most 100 characters", 400)
    row = _lead_row(campaign_id, fields, custom, None, now, (list_name or "").strip() or None)
    _link_and_scrub(session, [row])
    lead = Lead(**row)
    session.add(lead)
    session.flush()
    return lead


def lead_dict(lead: Lead) -> dict[str, Any]:
    return {
        "id": lead.id, "campaign_id": lead.campaign_id, "phone": lead.phone, "customer_id": lead.customer_id,
        "first_name": lead.first_name, "last_name": lead.last_name, "state": lead.state,
        "postal_code": lead.postal_code, "priority": lead.priority, "status": lead.status,
        "attempts": lead.attempts, "last_outcome": lead.last_outcome, "skip_code": lead.skip_code,
        "skip_detail": lead.skip_detail, "disposition": lead.disposition, "custom_fields": lead.custom_fields,
        "answers": lead.answers, "source_line": lead.source_line, "list_name": lead.list_name,
        "created_at": lead.created_at.isoformat(),
    }


def list_leads(session: Session, campaign_id: int, *, status: str | None = None, skip_code: str | None = None,
               limit: int = 50, offset: int = 0) -> tuple[int, list[Lead]]:
    """Return (total, page) of a campaign's leads in import order, optionally filtered."""
    _campaign_or_404(session, campaign_id)
    query = select(Lead).where(Lead.campaign_id == campaign_id)
    if status:
        query = query.where(Lead.status == status)
    if skip_code:
        query = query.where(Lead.skip_code == skip_code)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    return total, list(session.scalars(query.order_by(Lead.id).limit(limit).offset(offset)))
