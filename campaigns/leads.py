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
import operator
import queue
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from json.encoder import encode_basestring_ascii
from typing import Any, TextIO

import phonenumbers
from sqlalchemy import ColumnElement, Engine, func, select
from sqlalchemy.orm import Session

from campaigns.dnc import one_of_numbers, skip_code_for
from campaigns.models import Campaign, DncEntry, Lead, LeadStatus
from hub.errors import FlowError
from hub.models import CustomerPhone
from hub.phone import InvalidNumber, to_e164

US_STATES = frozenset(
    "AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND OH "
    "OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC PR VI GU AS MP".split())
KNOWN_COLUMNS = ("phone", "first_name", "last_name", "state", "postal_code", "zip", "priority")
# Rows per transaction. A commit costs tens of ms (fsync; on SQLite also a WAL checkpoint) and writes every
# page the batch touched, so fewer is faster: on SQLite 20,000 rows commit about 4x faster per row than
# 5,000. A batch of 20,000 rows is about 10 MB.
BATCH_SIZE = 20_000

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
    if "\x00" in text:  # PostgreSQL cannot store it, and SQLite's JSON functions (the batch insert) cut it there
        raise ValueError(f"{name} contains a NUL character")
    return text or None


_STORED = ("phone", "first_name", "last_name", "state", "postal_code", "priority")  # as _lead_fields returns them


def _lead_fields(phone: Any, first_name: Any, last_name: Any, state: Any, postal_code: Any, zip_code: Any,
                 priority: Any, region: str) -> tuple[str, str | None, str | None, str | None, str | None, int]:
    """Check one lead's known fields (None or "" when not given); return them as stored, in `_STORED` order.

    Raises:
        ValueError: with a reason a person can act on.
    """
    raw = "" if phone is None else str(phone).strip()
    if not raw:
        raise ValueError("phone is empty")
    try:
        phone = normalise_number(raw, region)
    except InvalidNumber as exc:
        raise ValueError(f"phone {exc}") from None
    state = _text(state, "state", 100)
    if state is not None:
        state = state.upper()
        if state not in US_STATES:
            raise ValueError(f"state must be a US two-letter code such as NY, not {state!r}")
    postal = _text(postal_code or zip_code, "postal_code", 16)
    priority_text = "" if priority is None else str(priority).strip()
    try:
        number = int(priority_text) if priority_text else 0
    except ValueError:
        raise ValueError(f"priority must be a whole number, not {priority_text!r}") from None
    if not -1_000_000 <= number <= 1_000_000:
        raise ValueError("priority must be between -1000000 and 1000000")
    return (phone, _text(first_name, "first_name", 100), _text(last_name, "last_name", 100), state, postal,
            number)


def parse_lead(values: dict[str, Any], region: str) -> dict[str, Any]:
    """Validate one lead's known fields; return the columns to store (without custom fields).

    Raises:
        ValueError: with a reason a person can act on.
    """
    return dict(zip(_STORED, _lead_fields(*(values.get(name) for name in KNOWN_COLUMNS), region)))


def _custom_fields_json(custom: list[tuple[str, int]]) -> Callable[[list[str]], str]:
    """Return a function that writes a row's non-empty custom columns as the JSON text json.dumps would.

    The keys are the header's, so they are encoded once per file: about 1 µs a row instead of 3 µs for a
    dict and json.dumps.
    """
    keys = [(encode_basestring_ascii(name) + ": ", index) for name, index in custom]

    def encode(cells: list[str]) -> str:
        return "{" + ", ".join([key + encode_basestring_ascii(cells[i]) for key, i in keys if cells[i] != ""]) + "}"

    return encode


def _campaign_or_404(session: Session, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise FlowError(f"no campaign {campaign_id}", 404)
    return campaign


def _found(session: Session, condition: ColumnElement[bool], *columns: ColumnElement[Any]) -> list[tuple]:
    """Return the values of `columns` in the rows that meet `condition`.

    SQLite gets them packed in one JSON row: fetching a row gives the GIL back and takes it again, and while
    the reading thread runs, taking it waits out a switch interval (5 ms), so a few hundred rows would cost
    the writer thread seconds per batch. psycopg fetches the rows in one go.
    """
    if session.get_bind().dialect.name == "sqlite":
        packed = session.scalar(select(func.json_group_array(func.json_array(*columns))).where(condition))
        return [tuple(values) for values in json.loads(packed)]
    return [tuple(row) for row in session.execute(select(*columns).where(condition))]


def _owners_and_dnc_codes(session: Session, phones: list[str]) -> tuple[dict[str, int], dict[str, str]]:
    """Return the customer who owns each number and the DNC skip code of each listed number: one query each.

    Numbers with neither are left out: a batch has a few of those among thousands.
    """
    owners = dict(_found(session, one_of_numbers(session, CustomerPhone.number, phones), CustomerPhone.number,
                         CustomerPhone.customer_id))
    sources: dict[str, set[str]] = {}
    for phone, source in _found(session, one_of_numbers(session, DncEntry.phone, phones), DncEntry.phone,
                                DncEntry.source):
        sources.setdefault(phone, set()).add(source)
    codes = {phone: skip_code_for(found) for phone, found in sources.items()}
    return owners, {phone: code for phone, code in codes.items() if code is not None}


# A row of a batch, in the order of the PostgreSQL stage table's columns; the columns that are the same for
# every row of an import are bound once per batch.
_PER_ROW = ("phone", "first_name", "last_name", "state", "postal_code", "priority", "customer_id", "custom_fields",
            "skip_code", "skip_detail", "source_line")
_CUSTOMER, _SKIP_CODE, _SKIP_DETAIL = (_PER_ROW.index(c) for c in ("customer_id", "skip_code", "skip_detail"))
_DNC_DETAIL = "on a do-not-call list"
_INSERT = ("INSERT INTO leads (campaign_id, status, list_name, created_at, attempts, attempts_by_outcome, answers, "
           f"{', '.join(_PER_ROW)}) ")
_POSTGRES_STAGE = ("CREATE TEMP TABLE IF NOT EXISTS lead_import (phone text, first_name text, last_name text, "
                   "state text, postal_code text, priority integer, customer_id integer, custom_fields text, "
                   "skip_code text, skip_detail text, source_line integer) ON COMMIT DELETE ROWS")
_POSTGRES_INSERT = (
    f"{_INSERT} SELECT %s, %s, %s, %s, 0, CAST('{{}}' AS json), CAST('{{}}' AS json), "
    f"{', '.join(_PER_ROW).replace('custom_fields', 'CAST(custom_fields AS json)')} "
    "FROM lead_import ORDER BY source_line ON CONFLICT (campaign_id, phone) DO NOTHING RETURNING phone")
_SQLITE_UNPACK = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(_PER_ROW)))
_SQLITE_INSERT = f"{_INSERT} SELECT ?, ?, ?, ?, 0, '{{}}', '{{}}', {_SQLITE_UNPACK} FROM json_each(?) ORDER BY key"


def _insert_new(session: Session, campaign_id: int, pending: dict[str, list[Any]], now: datetime,
                list_name: str | None) -> set[str]:
    """Insert the rows whose number is not in the campaign yet, in one statement; return the numbers skipped.

    PostgreSQL: COPY into a temporary table, then one INSERT ... SELECT ... ON CONFLICT DO NOTHING, so the
    unique key decides and no lookup of the growing leads table is needed (its statistics lag during a big
    import; COPY is several times cheaper than binding arrays or multi-row VALUES). SQLite: the write lock is
    held from the transaction's first statement (BEGIN IMMEDIATE), so the lookup and the insert cannot
    interleave with another import. The batch goes in as one JSON array that SQLite unpacks in file order:
    one statement, during which the GIL is free for the reading thread (an executemany takes it back after
    every row). It costs the same CPU as an executemany; most of it is the two indexes on the number.
    """
    connection = session.connection()
    created_at = Lead.__table__.c.created_at.type.bind_processor(connection.dialect)(now)
    per_import = (campaign_id, LeadStatus.READY.value, list_name, created_at)
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(_POSTGRES_STAGE)
        cursor = connection.connection.driver_connection.cursor()
        with cursor.copy(f"COPY lead_import ({', '.join(_PER_ROW)}) FROM STDIN") as copy:
            for row in pending.values():
                copy.write_row(row)
        inserted = {phone for (phone,) in connection.exec_driver_sql(_POSTGRES_INSERT, per_import)}
        return pending.keys() - inserted
    in_campaign = (Lead.campaign_id == campaign_id) & one_of_numbers(session, Lead.phone, list(pending))
    existing = {phone for (phone,) in _found(session, in_campaign, Lead.phone)}
    rows = [row for phone, row in pending.items() if phone not in existing] if existing else list(pending.values())
    if rows:
        connection.exec_driver_sql(_SQLITE_INSERT, (*per_import, json.dumps(rows)))
    return existing


def _store_batch(session: Session, campaign_id: int, now: datetime, list_name: str | None,
                 report: LeadImportReport, pending: dict[str, list[Any]]) -> None:
    owners, codes = _owners_and_dnc_codes(session, list(pending))
    for phone, customer_id in owners.items():
        pending[phone][_CUSTOMER] = customer_id
    for phone, code in codes.items():
        row = pending[phone]
        row[_SKIP_CODE], row[_SKIP_DETAIL] = code, _DNC_DETAIL
    skipped = _insert_new(session, campaign_id, pending, now, list_name)
    session.commit()
    report.imported += len(pending) - len(skipped)
    report.duplicates += len(skipped)
    report.dnc_flagged += len(codes.keys() - skipped)
    report.linked_to_customers += len(owners.keys() - skipped)


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
        FlowError: 404 when the campaign does not exist, 400 for a list name with a NUL character.
    """
    _campaign_or_404(session, campaign_id)
    try:
        list_name = _text((list_name or "").strip()[:100], "list_name", 100)
    except ValueError as exc:
        raise FlowError(str(exc), 400) from None
    session.commit()  # each batch below is its own transaction
    report = LeadImportReport()
    reader = csv.reader(stream)
    try:
        header = next(reader)
    except StopIteration:
        report.rejected.append((1, "the file is empty"))
        return report
    except (csv.Error, UnicodeDecodeError) as exc:
        report.rejected.append((1, f"the file cannot be read: {exc}"))
        return report
    known, custom, problem = _header_map(header)
    if problem:
        report.rejected.append((1, problem))
        return report
    with _import_session(session) as writer_session:
        _import_rows(writer_session, campaign_id, reader, len(header), known, custom, region, now, batch_size,
                     report, list_name)
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
    """Store batches on a second thread while the caller reads and checks the next one.

    psycopg releases the GIL while the server works, and sqlite3 while SQLite runs a statement, so reading
    the file and writing overlap instead of taking turns (a batch is a few long statements, see `_found` and
    `_insert_new`); on a busy machine the second thread also gets its own share of the cores. One batch
    waits at most; the session is only used by this thread until it is joined (SQLite connections from
    hub.db.make_engine may change threads).
    """

    _DONE = object()

    def __init__(self, session: Session, campaign_id: int, now: datetime, list_name: str | None,
                 report: LeadImportReport) -> None:
        self.args = (session, campaign_id, now, list_name, report)
        self.queue: queue.Queue = queue.Queue(maxsize=1)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="lead-import-writer", daemon=True)

    def _run(self) -> None:
        while (batch := self.queue.get()) is not self._DONE:
            if self.error is None:
                try:
                    _store_batch(*self.args, batch)
                except BaseException as exc:  # noqa: BLE001 - handed to the reading thread
                    self.error = exc

    def put(self, batch: dict[str, list[Any]]) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(batch)

    def __enter__(self) -> _BatchWriter:
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.queue.put(self._DONE)
        self.thread.join()
        if self.error is not None and exc_info[0] is None:
            raise self.error


def _import_rows(session: Session, campaign_id: int, reader, width: int, known: dict[str, int],
                 custom: list[tuple[str, int]], region: str, now: datetime, batch_size: int,
                 report: LeadImportReport, list_name: str | None = None) -> None:
    # a known column the header does not name reads the empty cell appended to every row at index `width`
    given = operator.itemgetter(*(known.get(name, width) for name in KNOWN_COLUMNS))
    custom_fields_json = _custom_fields_json(custom)
    pending: dict[str, list[Any]] = {}  # number -> row in _PER_ROW order
    previous_end = reader.line_num
    repeated_in_file = 0  # the writer thread owns report.duplicates until it is joined
    with _BatchWriter(session, campaign_id, now, list_name, report) as writer:
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                break
            except (csv.Error, UnicodeDecodeError) as exc:
                # e.g. a quote never closed, or bytes that are not the text's encoding (found a block of the
                # file ahead): nothing after this point can be read reliably
                report.rejected.append((previous_end + 1, f"the file cannot be read from this line on: {exc}"))
                break
            line, previous_end = previous_end + 1, reader.line_num
            if len(cells) != width:
                if not cells:
                    continue  # a blank line
                if len(cells) > width and any(c.strip() for c in cells[width:]):
                    report.rejected.append((line, f"the row has {len(cells)} values but the header names {width} "
                                                  "columns"))
                    continue
                cells = cells[:width] + [""] * (width - len(cells))
            cells.append("")
            try:
                fields = _lead_fields(*given(cells), region)
            except ValueError as exc:
                report.rejected.append((line, str(exc)))
                continue
            if fields[0] in pending:
                repeated_in_file += 1
                continue
            pending[fields[0]] = [*fields, None, custom_fields_json(cells), None, None, line]
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
    if list_name is not None and (not isinstance(list_name, str) or len(list_name) > 100 or "\x00" in list_name):
        raise FlowError("list_name must be text of at most 100 characters (and no NUL)", 400)
    owners, codes = _owners_and_dnc_codes(session, [fields["phone"]])
    code = codes.get(fields["phone"])
    lead = Lead(campaign_id=campaign_id, **fields, customer_id=owners.get(fields["phone"]), custom_fields=custom,
                status=LeadStatus.READY.value, attempts=0, attempts_by_outcome={}, answers={}, skip_code=code,
                skip_detail=_DNC_DETAIL if code else None, list_name=(list_name or "").strip() or None,
                created_at=now)
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
