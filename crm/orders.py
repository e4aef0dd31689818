"""Orders: CSV import of purchase history (streamed, batched), single orders from the API and from field
sales, a customer's order list, and the order's line on the customer's timeline.

A bad row never costs a good one: each is reported with the line where its record starts (the header is
line 1) and the reason. The customer is found by `customer_id`, by `customer_ref` (the customer's
`external_ref`) or by `phone` (read as E.164 in the import's region); when a row names more than one they
must agree. `order_id` is the seller's id of the order: (source, order_id) is unique in the database, so
importing the same file twice, or an API client retrying, adds nothing the second time. Rows without an
`order_id` cannot be recognised again and are always added.
"""
from __future__ import annotations

import codecs
import csv
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, TextIO

from sqlalchemy import func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from campaigns.dnc import one_of_numbers
from campaigns.leads import normalise_number
from crm.config import current_settings
from crm.models import Order, OrderSource
from hub.errors import FlowError
from hub.models import Customer, CustomerPhone, TimelineEntry
from hub.phone import InvalidNumber

BATCH_SIZE = 5000  # rows per transaction, as for leads
MAX_CENTS = 10 ** 13  # a hundred billion: anything larger is a typing error
FUTURE_SLACK = timedelta(days=1)  # clocks and time zones differ; an order dated later than this is refused
CUSTOMER_COLUMNS = ("customer_id", "customer_ref", "phone")
KNOWN_COLUMNS = (*CUSTOMER_COLUMNS, "ordered_at", "amount", "currency", "product", "category", "order_id")


@dataclass
class OrderImportReport:
    imported: int = 0
    duplicates: int = 0  # an order_id already imported (or twice in the file)
    customers: int = 0  # distinct customers with a new order, counted per batch
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)

    def as_dict(self) -> dict[str, Any]:
        return {"imported": self.imported, "duplicates": self.duplicates, "customers": self.customers,
                "rejected": [{"line": line, "reason": reason} for line, reason in sorted(self.rejected)]}


# ---------------------------------------------------------------- one order's fields


def parse_amount(raw: Any) -> int:
    """Return an amount as integer cents.

    Raises:
        ValueError: not a number, negative, more than two decimals, or absurdly large.
    """
    if isinstance(raw, bool) or raw is None:
        raise ValueError("amount must be a number such as 12.50")
    text = str(raw).strip() if not isinstance(raw, float) else repr(raw)
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"amount must be a number such as 12.50, not {text[:20]!r}") from None
    if not value.is_finite():
        raise ValueError("amount must be a finite number")
    if value < 0:
        raise ValueError("amount must be at least 0 (record a refund as its own adjustment, not a negative order)")
    cents = value * 100
    if cents != cents.to_integral_value():
        raise ValueError("amount has more than two decimals")
    if cents >= MAX_CENTS:
        raise ValueError("amount is too large")
    return int(cents)


def parse_time(raw: Any, now: datetime) -> datetime:
    """Return an ISO 8601 date or date-time as UTC (a time without offset is read as UTC).

    Raises:
        ValueError: not ISO 8601, or later than now (plus a day of slack).
    """
    text = "" if raw is None else str(raw).strip()
    if not text:
        raise ValueError("ordered_at is empty")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"ordered_at must be an ISO 8601 date or time such as 2024-05-31 or "
                         f"2024-05-31T14:05:00Z, not {text[:40]!r}") from None
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    if when > now + FUTURE_SLACK:
        raise ValueError("ordered_at is in the future")
    if when.year < 1970:
        raise ValueError("ordered_at is before 1970")
    return when


def _text(raw: Any, name: str, limit: int) -> str | None:
    if raw is not None and (isinstance(raw, bool) or not isinstance(raw, (str, int))):
        raise ValueError(f"{name} must be text")  # a JSON object or list is not a name, even stringified
    text = "" if raw is None else str(raw).strip()
    if "\x00" in text:  # PostgreSQL cannot store it, and would refuse the whole batch
        raise ValueError(f"{name} contains a NUL character")
    if len(text) > limit:
        raise ValueError(f"{name} is longer than {limit} characters")
    return text or None


def parse_order(values: dict[str, Any], currency: str, now: datetime) -> dict[str, Any]:
    """Validate an order's own fields (not its customer); return the columns to store.

    Raises:
        ValueError: with a reason a person can act on.
    """
    if values.get("amount") in (None, ""):
        raise ValueError("amount is empty")
    given = (_text(values.get("currency"), "currency", 3) or currency).upper()
    if given != currency:
        raise ValueError(f"currency must be {currency}, the CRM's currency, not {given!r} (amounts in other "
                         "currencies cannot be added up)")
    return {"ordered_at": parse_time(values.get("ordered_at"), now), "amount_cents": parse_amount(values["amount"]),
            "currency": currency, "product": _text(values.get("product"), "product", 100),
            "category": _text(values.get("category"), "category", 100),
            "external_id": _text(values.get("order_id"), "order_id", 100)}


def money(cents: int, currency: str) -> str:
    """Return cents as a person reads them: '1,234.50 USD'."""
    return f"{cents / 100:,.2f} {currency}"


def order_summary(amount_cents: int, currency: str, product: str | None, category: str | None) -> str:
    what = product or category
    return f"Order {money(amount_cents, currency)}" + (f": {what}" if what else "")


def _timeline_row(order: dict[str, Any]) -> dict[str, Any]:
    return {"customer_id": order["customer_id"], "kind": "order", "occurred_at": order["ordered_at"],
            "call_id": None, "agent_id": None,
            "summary": order_summary(order["amount_cents"], order["currency"], order["product"],
                                     order["category"])[:300],
            "details": {"order_id": order["id"], "source": order["source"], "amount_cents": order["amount_cents"]}}


# ---------------------------------------------------------------- CSV import

NOT_TEXT = "the file cannot be read from this line on: it is not UTF-8 text (save it as CSV UTF-8)"


def text_lines(binary: Iterable[bytes], encoding: str = "utf-8-sig") -> Iterator[str]:
    """Decode a byte stream line by line, so that a byte that is not text is reported at its own line.

    (A TextIOWrapper decodes 8 KiB at a time: it fails before the rows ahead of the bad byte are read.)
    Only for encodings where a newline is the byte 0x0A, i.e. UTF-8 and the single-byte ones.

    Raises:
        UnicodeDecodeError: at the first line that does not decode.
    """
    decoder = codecs.getincrementaldecoder(encoding)()
    for raw in binary:
        yield decoder.decode(raw)
    tail = decoder.decode(b"", final=True)
    if tail:
        yield tail


def _header_map(header: list[str]) -> tuple[dict[str, int], str | None]:
    known: dict[str, int] = {}
    for index, name in enumerate(header):
        key = name.strip().lstrip("\ufeff").lower()
        if not key:
            continue
        if key in known:
            return {}, f"the header names column {key!r} twice"
        if key in KNOWN_COLUMNS:
            known[key] = index
    missing = [c for c in ("ordered_at", "amount") if c not in known]
    if missing:
        return {}, f"the header must name the columns {', '.join(missing)}"
    if not any(c in known for c in CUSTOMER_COLUMNS):
        return {}, "the header must name the customer: customer_id, customer_ref or phone"
    return known, None


def import_orders(session: Session, stream: Iterable[str] | TextIO, region: str, now: datetime,
                  batch_size: int = BATCH_SIZE) -> OrderImportReport:
    """Import purchase history from CSV, streamed and stored in batches (each batch committed).

    Columns: ordered_at, amount (required), and customer_id, customer_ref or phone (at least one);
    currency (the CRM's, if given), product, category, order_id. Other columns are ignored.
    """
    currency = current_settings(session).currency
    session.commit()  # each batch below is its own transaction
    report = OrderImportReport()
    reader = csv.reader(stream)
    try:
        header = next(reader)
    except StopIteration:
        report.rejected.append((1, "the file is empty"))
        return report
    except UnicodeDecodeError:
        report.rejected.append((1, NOT_TEXT))
        return report
    known, problem = _header_map(header)
    if problem:
        report.rejected.append((1, problem))
        return report
    width, items = len(header), list(known.items())
    pending: list[dict[str, Any]] = []
    previous_end = reader.line_num
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            report.rejected.append((previous_end + 1, f"the file cannot be read from this line on: {exc}"))
            break
        except UnicodeDecodeError:
            report.rejected.append((previous_end + 1, NOT_TEXT))
            break
        line, previous_end = previous_end + 1, reader.line_num
        if not cells:
            continue
        if len(cells) > width and any(c.strip() for c in cells[width:]):
            report.rejected.append((line, f"the row has {len(cells)} values but the header names {width} columns"))
            continue
        values = {k: (cells[i] if i < len(cells) else "") for k, i in items}
        try:
            row = parse_order(values, currency, now)
            row["who"] = _customer_keys(values, region)
        except ValueError as exc:
            report.rejected.append((line, str(exc)))
            continue
        row["line"] = line
        pending.append(row)
        if len(pending) >= batch_size:
            _store_batch(session, pending, now, report)
            pending = []
    if pending:
        _store_batch(session, pending, now, report)
    return report


def _customer_keys(values: dict[str, Any], region: str) -> tuple[int | None, str | None, str | None]:
    raw_id = (values.get("customer_id") or "").strip()
    customer_id = None
    if raw_id:
        if not raw_id.isdigit() or len(raw_id) > 18:
            raise ValueError(f"customer_id must be a whole number, not {raw_id[:20]!r}")
        customer_id = int(raw_id)
    ref = _text(values.get("customer_ref"), "customer_ref", 64)
    raw_phone = (values.get("phone") or "").strip()
    phone = None
    if raw_phone:
        try:
            phone = normalise_number(raw_phone, region)
        except InvalidNumber as exc:
            raise ValueError(f"phone {exc}") from None
    if customer_id is None and ref is None and phone is None:
        raise ValueError("the row names no customer (customer_id, customer_ref or phone)")
    return customer_id, ref, phone


def _resolve(session: Session, rows: list[dict[str, Any]], report: OrderImportReport) -> list[dict[str, Any]]:
    """Set each row's customer_id from its keys (one query per kind of key); reject rows that match nobody."""
    ids = {r["who"][0] for r in rows if r["who"][0] is not None}
    refs = list({r["who"][1] for r in rows if r["who"][1] is not None})
    phones = list({r["who"][2] for r in rows if r["who"][2] is not None})
    known_ids = set(session.scalars(select(Customer.id).where(Customer.id.in_(ids)))) if ids else set()
    by_ref = dict(session.execute(select(Customer.external_ref, Customer.id)
                                  .where(Customer.external_ref.in_(refs))).all()) if refs else {}
    by_phone = dict(session.execute(select(CustomerPhone.number, CustomerPhone.customer_id)
                                    .where(one_of_numbers(session, CustomerPhone.number, phones))).all()) \
        if phones else {}
    kept = []
    for row in rows:
        customer_id, ref, phone = row.pop("who")
        found: dict[str, int] = {}
        problem = None
        if customer_id is not None:
            if customer_id in known_ids:
                found["customer_id"] = customer_id
            else:
                problem = f"no customer {customer_id}"
        if problem is None and ref is not None:
            if ref in by_ref:
                found["customer_ref"] = by_ref[ref]
            else:
                problem = f"no customer with customer_ref {ref!r}"
        if problem is None and phone is not None:
            if phone in by_phone:
                found["phone"] = by_phone[phone]
            else:
                problem = "no customer has this phone number"
        if problem is None and len(set(found.values())) > 1:
            problem = f"{' and '.join(found)} name different customers"
        if problem is not None:
            report.rejected.append((row["line"], problem))
            continue
        row["customer_id"] = next(iter(found.values()))
        kept.append(row)
    return kept


_ORDER_COLUMNS = ("customer_id", "ordered_at", "amount_cents", "currency", "product", "category", "source",
                  "external_id", "created_at")
_RETURNED = (Order.id, Order.customer_id, Order.ordered_at, Order.amount_cents, Order.currency, Order.product,
             Order.category, Order.source)


def _store_batch(session: Session, rows: list[dict[str, Any]], now: datetime, report: OrderImportReport) -> None:
    rows = _resolve(session, rows, report)
    fresh, seen = [], set()
    for row in rows:
        key = row["external_id"]
        if key is not None and key in seen:
            report.duplicates += 1  # twice in this batch: the database would refuse the second anyway
            continue
        seen.add(key)
        fresh.append({**{c: row.get(c) for c in _ORDER_COLUMNS}, "source": OrderSource.IMPORT.value,
                      "created_at": now})
    if fresh:
        inserted = insert_orders(session, fresh)
        report.imported += len(inserted)
        report.duplicates += len(fresh) - len(inserted)
        report.customers += len({o["customer_id"] for o in inserted})
    session.commit()


def insert_orders(session: Session, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Insert orders, skipping any whose (source, external_id) is stored already, and put each new one on
    its customer's timeline; return the new orders as dicts.

    One multi-row INSERT ... ON CONFLICT DO NOTHING RETURNING per batch on both databases (the unique key
    decides, so two imports racing cannot store an order twice), then one executemany for the timeline.
    """
    dialect = session.get_bind().dialect.name
    make_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (make_insert(Order.__table__).on_conflict_do_nothing(index_elements=["source", "external_id"])
                 .returning(*_RETURNED))
    inserted = [dict(r._mapping) for r in session.execute(statement, rows)]
    if inserted:
        session.execute(insert(TimelineEntry), [_timeline_row(o) for o in inserted])
    return inserted


# ---------------------------------------------------------------- one order (API, field sales)


API_FIELDS = ("ordered_at", "amount", "currency", "product", "category", "order_id")


def add_order(session: Session, customer_id: int, values: dict[str, Any], source: str, now: datetime) -> tuple[Order, bool]:
    """Store one order for a customer; return (order, created). The same order_id again returns the stored
    order unchanged (created False) when it says the same; a different order under that id is refused.

    Raises:
        FlowError: 400 for a bad field, 404 for no customer, 409 for an order_id already used otherwise.
    """
    if session.get(Customer, customer_id) is None:
        raise FlowError(f"no customer {customer_id}", 404)
    unknown = set(values) - set(API_FIELDS)
    if unknown:
        raise FlowError(f"unknown order fields: {', '.join(sorted(unknown))}", 400)
    values = {**values}
    values.setdefault("ordered_at", now.isoformat())
    if isinstance(values.get("amount"), float) and not math.isfinite(values["amount"]):
        raise FlowError("amount must be a finite number", 400)
    try:
        fields = parse_order(values, current_settings(session).currency, now)
    except ValueError as exc:
        raise FlowError(str(exc), 400) from None
    row = {**fields, "customer_id": customer_id, "source": source, "created_at": now}
    inserted = insert_orders(session, [row])
    if inserted:
        return session.get(Order, inserted[0]["id"]), True
    existing = session.scalar(select(Order).where(Order.source == source, Order.external_id == fields["external_id"]))
    same = (existing.customer_id, existing.ordered_at, existing.amount_cents, existing.product, existing.category) == \
        (customer_id, fields["ordered_at"], fields["amount_cents"], fields["product"], fields["category"])
    if not same:
        raise FlowError(f"order_id {fields['external_id']!r} is already used by another order", 409)
    return existing, False


def order_from_handoff(session: Session, customer_id: int, handoff_id: int, amount: float, campaign: str | None,
                       now: datetime) -> tuple[Order, bool]:
    """Record the order a won handoff stands for (once: its external id is the handoff's id)."""
    values = {"ordered_at": now.isoformat(), "amount": f"{Decimal(repr(float(amount))):.2f}",
              "order_id": f"handoff-{handoff_id}", "category": "field sales",
              "product": (f"won in {campaign}"[:100] if campaign else None)}
    return add_order(session, customer_id, values, OrderSource.HANDOFF.value, now)


def list_orders(session: Session, customer_id: int, limit: int = 50, offset: int = 0) -> tuple[int, list[Order]]:
    """Return (total, page) of a customer's orders, newest first.

    Raises:
        FlowError: 404 for no customer.
    """
    if session.get(Customer, customer_id) is None:
        raise FlowError(f"no customer {customer_id}", 404)
    total = session.scalar(select(func.count()).select_from(Order).where(Order.customer_id == customer_id)) or 0
    page = session.scalars(select(Order).where(Order.customer_id == customer_id)
                           .order_by(Order.ordered_at.desc(), Order.id.desc()).limit(limit).offset(offset))
    return total, list(page)


def order_dict(order: Order) -> dict[str, Any]:
    return {"id": order.id, "customer_id": order.customer_id, "ordered_at": order.ordered_at.isoformat(),
            "amount": f"{Decimal(order.amount_cents) / 100:.2f}", "amount_cents": order.amount_cents,
            "currency": order.currency, "product": order.product, "category": order.category,
            "source": order.source, "order_id": order.external_id, "created_at": order.created_at.isoformat()}
