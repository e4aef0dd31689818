"""Do-not-call: the internal list (opt-outs), complaints, and national registry extracts.

An opt-out or a complaint takes effect at once: every lead still waiting to be dialed with that number, in
every campaign, is marked with a `dnc_*` skip code in the same transaction. The dialer's compliance gate
re-checks with `dnc_sources_for` at dial time anyway, so the marks are for people reading lists.
"""
from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, TextIO

from sqlalchemy import ColumnElement, any_, bindparam, delete, func, literal_column, select, update
from sqlalchemy.orm import Session

from campaigns.models import DncEntry, DncSource, Lead, LeadStatus, RegistryExtract
from hub.customers import add_entry, find_by_number
from hub.errors import FlowError
from hub.phone import InvalidNumber, masked, to_e164

log = logging.getLogger(__name__)

# When a number is on several lists, the lead shows the strongest reason.
SKIP_CODES: dict[str, str] = {
    DncSource.COMPLAINT.value: "dnc_complaint",
    DncSource.INTERNAL.value: "dnc_internal",
    DncSource.REGISTRY.value: "dnc_registry",
}
DNC_SKIP_CODES = tuple(SKIP_CODES.values())
LOOKUP_CHUNK = 5000
REGISTRY_BATCH = 2000


def skip_code_for(sources: Iterable[str]) -> str | None:
    """Return the lead skip code for a number on `sources` (complaint > internal > registry), or None."""
    present = set(sources)
    for source, code in SKIP_CODES.items():
        if source in present:
            return code
    return None


def one_of_numbers(session: Session, column: ColumnElement[str], numbers: list[str]) -> ColumnElement[bool]:
    """Return `column IN numbers` with the numbers bound as one parameter.

    An expanding IN of thousands of parameters costs more to render and bind than the query takes to run.
    E.164 numbers hold no comma, so PostgreSQL gets one comma-joined string and SQLite one JSON array.
    """
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(func.string_to_array(bindparam("numbers", ",".join(numbers)), ","))
    listed = select(literal_column("value")).select_from(func.json_each(bindparam("numbers", json.dumps(numbers))))
    return column.in_(listed)


def dnc_sources_for(session: Session, phones: Iterable[str]) -> dict[str, set[str]]:
    """Return, for every E.164 number given, the DNC sources it is on (an empty set when it is on none).

    One query per 5,000 numbers, whatever the count.
    """
    wanted = list(dict.fromkeys(phones))
    found: dict[str, set[str]] = {p: set() for p in wanted}
    for start in range(0, len(wanted), LOOKUP_CHUNK):
        chunk = wanted[start:start + LOOKUP_CHUNK]
        for phone, source in session.execute(
                select(DncEntry.phone, DncEntry.source).where(one_of_numbers(session, DncEntry.phone, chunk))):
            found[phone].add(source)
    return found


def _normalise(phone: str, region: str) -> str:
    try:
        return to_e164(phone, region)
    except InvalidNumber as exc:
        raise FlowError(f"phone: {exc}", 400) from None


def _remark_leads(session: Session, phone: str) -> int:
    """Set the DNC skip code of the number's ready leads from the lists it is on now; return how many."""
    code = skip_code_for(dnc_sources_for(session, [phone])[phone])
    ready = (Lead.phone == phone) & (Lead.status == LeadStatus.READY.value)
    if code is None:
        result = session.execute(update(Lead).where(ready, Lead.skip_code.in_(DNC_SKIP_CODES))
                                 .values(skip_code=None, skip_detail=None))
    else:
        # other gate codes (window, cap...) are replaced too: DNC outranks them
        result = session.execute(update(Lead).where(ready).values(skip_code=code, skip_detail="on a do-not-call list"))
    return result.rowcount or 0


def _add(session: Session, phone: str, source: str, reason: str | None, now: datetime, region: str) -> DncEntry:
    number = _normalise(phone, region)
    entry = session.scalar(select(DncEntry).where(DncEntry.phone == number, DncEntry.source == source))
    if entry is None:
        entry = DncEntry(phone=number, source=source, reason=(reason or None) and reason[:200], added_at=now)
        session.add(entry)
    elif reason:
        entry.reason = reason[:200]
    session.flush()
    marked = _remark_leads(session, number)
    customer = find_by_number(session, number)
    if customer is not None:
        what = "Opted out of calls" if source == DncSource.INTERNAL.value else "Complaint: do not call"
        add_entry(session, customer.id, "dnc", f"{what}{': ' + reason if reason else ''}", now,
                  details={"source": source, "phone": number})
    log.info("do-not-call %s added for %s; %d ready leads marked", source, masked(number), marked)
    return entry


def add_opt_out(session: Session, phone: str, reason: str | None, now: datetime, region: str = "US") -> DncEntry:
    """Put a number on the internal list; its ready leads in every campaign are marked at once."""
    return _add(session, phone, DncSource.INTERNAL.value, reason, now, region)


def add_complaint(session: Session, phone: str, reason: str | None, now: datetime, region: str = "US") -> DncEntry:
    """Record a complaint against calling a number; it suppresses the number like an opt-out."""
    return _add(session, phone, DncSource.COMPLAINT.value, reason, now, region)


def remove(session: Session, phone: str, reason: str, now: datetime, region: str = "US") -> None:
    """Take a number off the internal list (never the registry or complaints), recording why.

    Raises:
        FlowError: 400 without a reason, 404 when the number is not on the internal list.
    """
    if not (reason or "").strip():
        raise FlowError("give a reason for removing a number from the do-not-call list", 400)
    number = _normalise(phone, region)
    entry = session.scalar(select(DncEntry).where(DncEntry.phone == number,
                                                  DncEntry.source == DncSource.INTERNAL.value))
    if entry is None:
        others = dnc_sources_for(session, [number])[number]
        hint = f" (it is on: {', '.join(sorted(others))}, which cannot be removed here)" if others else ""
        raise FlowError(f"{number} is not on the internal do-not-call list{hint}", 404)
    session.delete(entry)
    session.flush()
    _remark_leads(session, number)
    customer = find_by_number(session, number)
    if customer is not None:
        add_entry(session, customer.id, "dnc", f"Removed from the do-not-call list: {reason.strip()}", now,
                  details={"source": DncSource.INTERNAL.value, "phone": number, "removed": True})
    log.info("do-not-call internal entry removed for %s", masked(number))


def list_entries(session: Session, *, phone: str | None = None, source: str | None = None,
                 limit: int = 50, offset: int = 0) -> tuple[int, list[DncEntry]]:
    """Return (total, page) of DNC entries, optionally for one E.164 number or one source."""
    query = select(DncEntry)
    if phone:
        query = query.where(DncEntry.phone == phone)
    if source:
        query = query.where(DncEntry.source == source)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = list(session.scalars(query.order_by(DncEntry.id).limit(limit).offset(offset)))
    return total, rows


def entry_dict(entry: DncEntry) -> dict[str, Any]:
    return {"phone": entry.phone, "source": entry.source, "reason": entry.reason,
            "added_at": entry.added_at.isoformat(), "extract_id": entry.extract_id}


# ---------------------------------------------------------------- registry extracts


@dataclass
class RegistryImportReport:
    extract_id: int
    extract_date: date
    rows: int = 0  # distinct numbers now on the registry list
    duplicates: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)

    def as_dict(self) -> dict[str, Any]:
        return {"extract_id": self.extract_id, "extract_date": self.extract_date.isoformat(), "rows": self.rows,
                "duplicates": self.duplicates,
                "rejected": [{"line": line, "reason": reason} for line, reason in self.rejected]}


def _registry_number(cells: list[str], column: int, region: str) -> str:
    cells = [c.strip() for c in cells]
    if column == 0 and len(cells) >= 2 and len(cells[0]) == 3 and len(cells[1]) == 7:
        raw = cells[0] + cells[1]  # the US registry's "area code, number" layout
    elif column < len(cells) and cells[column]:
        raw = cells[column]
    else:
        raise ValueError("phone is empty")
    try:
        return to_e164(raw, region)
    except InvalidNumber as exc:
        raise ValueError(f"phone {exc}") from None


def _insert_registry(session: Session, rows: list[dict[str, Any]]) -> None:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    session.execute(insert(DncEntry.__table__).on_conflict_do_nothing(), rows)


def import_registry_extract(session: Session, stream: TextIO, extract_date: date, region: str = "US",
                            now: datetime | None = None) -> RegistryImportReport:
    """Replace the registry list with a new extract streamed from CSV, and record the extract.

    The file has a `phone` column, or no header and the number in its first column (or the US registry's
    two columns: area code, number). An extract older than the one in effect is refused, so the last
    imported is always the newest. The old entries are deleted and the new ones inserted in one
    transaction, so the dialer never sees an empty registry; it is committed here.
    """
    from hub.columns import utcnow

    now = now or utcnow()
    current = latest_extract(session)
    if current is not None and extract_date < current.extract_date:
        # the list in effect would silently go back in time
        raise FlowError(f"the registry extract in effect is of {current.extract_date}; "
                        f"an older one ({extract_date}) is refused", 409)
    extract = RegistryExtract(extract_date=extract_date, imported_at=now, rows=0)
    session.add(extract)
    session.flush()
    report = RegistryImportReport(extract_id=extract.id, extract_date=extract_date)
    session.execute(delete(DncEntry).where(DncEntry.source == DncSource.REGISTRY.value))
    reader = csv.reader(stream)
    column, header_done, previous_end = 0, False, 0
    batch: dict[str, dict[str, Any]] = {}
    inserted = 0
    for cells in reader:
        line, previous_end = previous_end + 1, reader.line_num
        if not cells:
            continue
        if not header_done:
            header_done = True
            names = [c.strip().lower() for c in cells]
            if "phone" in names:
                column = names.index("phone")
                continue
        try:
            number = _registry_number(cells, column, region)
        except ValueError as exc:
            report.rejected.append((line, str(exc)))
            continue
        if number in batch:
            report.duplicates += 1
            continue
        batch[number] = {"phone": number, "source": DncSource.REGISTRY.value, "reason": None,
                         "extract_id": extract.id, "added_at": now}
        if len(batch) >= REGISTRY_BATCH:
            _insert_registry(session, list(batch.values()))
            inserted += len(batch)
            batch = {}
    if batch:
        _insert_registry(session, list(batch.values()))
        inserted += len(batch)
    report.rows = session.scalar(select(func.count()).select_from(DncEntry)
                                 .where(DncEntry.extract_id == extract.id)) or 0
    report.duplicates += inserted - report.rows  # repeated across batches: the unique key kept one
    extract.rows = report.rows
    _remark_registry_leads(session)
    session.commit()
    log.info("registry extract of %s imported: %d numbers, %d rejected", extract_date, report.rows,
             len(report.rejected))
    return report


def _remark_registry_leads(session: Session) -> None:
    registry = select(DncEntry.phone).where(DncEntry.source == DncSource.REGISTRY.value)
    ready = Lead.status == LeadStatus.READY.value
    session.execute(update(Lead).where(ready, Lead.skip_code == "dnc_registry", Lead.phone.not_in(registry))
                    .values(skip_code=None, skip_detail=None))
    session.execute(update(Lead).where(ready, Lead.skip_code.is_(None), Lead.phone.in_(registry))
                    .values(skip_code="dnc_registry", skip_detail="on a do-not-call list"))


def latest_extract(session: Session) -> RegistryExtract | None:
    """Return the registry extract in effect (the last one imported), or None if none was ever imported."""
    return session.scalar(select(RegistryExtract).order_by(RegistryExtract.imported_at.desc(),
                                                           RegistryExtract.id.desc()).limit(1))


def is_stale(extract_date: date | None, today: date, max_age_days: int = 31) -> bool:
    """Return True when the registry extract is missing or older than `max_age_days` on `today`."""
    return extract_date is None or (today - extract_date).days > max_age_days
