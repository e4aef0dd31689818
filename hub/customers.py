"""Customers: identify by number, their timeline, their card, and CSV import."""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.models import Agent, Call, Customer, CustomerPhone, Stage, Tier, TimelineEntry
from hub.phone import InvalidNumber, to_e164


def find_by_number(session: Session, e164: str) -> Customer | None:
    """Return the customer who owns the E.164 number, if any."""
    return session.scalar(
        select(Customer).join(CustomerPhone).where(CustomerPhone.number == e164)
    )


def identify_caller(session: Session, e164: str | None) -> Customer | None:
    """Return the caller's customer, creating a prospect for a valid number never seen before."""
    if e164 is None:
        return None  # withheld or malformed: nothing to identify by
    customer = find_by_number(session, e164)
    if customer is None:
        customer = Customer(name="Unknown caller", phones=[CustomerPhone(number=e164, label="caller")])
        session.add(customer)
        session.flush()
    return customer


def add_entry(
    session: Session,
    customer_id: int,
    kind: str,
    summary: str,
    occurred_at: datetime,
    *,
    call: Call | None = None,
    agent_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> TimelineEntry:
    """Put one touch point on a customer's timeline."""
    entry = TimelineEntry(
        customer_id=customer_id,
        kind=kind,
        summary=summary[:300],
        occurred_at=occurred_at,
        call_id=call.id if call is not None else None,
        agent_id=agent_id,
        details=details or {},
    )
    session.add(entry)
    return entry


def timeline(session: Session, customer_id: int, limit: int = 50) -> list[TimelineEntry]:
    """Return a customer's timeline, newest first."""
    return list(
        session.scalars(
            select(TimelineEntry)
            .where(TimelineEntry.customer_id == customer_id)
            .order_by(TimelineEntry.occurred_at.desc(), TimelineEntry.id.desc())
            .limit(limit)
        )
    )


def entry_dict(entry: TimelineEntry) -> dict[str, Any]:
    call = entry.call
    return {
        "id": entry.id,
        "kind": entry.kind,
        "at": entry.occurred_at.isoformat(),
        "summary": entry.summary,
        "agent": entry.agent.name if entry.agent else None,
        "call_sid": call.sid if call else None,
        "duration": call.duration_s if call and entry.kind == "call" else None,
        "disposition": entry.details.get("disposition") or (call.disposition if call and entry.kind == "call" else None),
        "note": entry.details.get("note"),
    }


def customer_dict(customer: Customer) -> dict[str, Any]:
    return {
        "id": customer.id,
        "name": customer.name,
        "email": customer.email,
        "tier": customer.value_tier,
        "stage": customer.lifecycle_stage,
        "phones": [p.number for p in customer.phones],
        "owner": customer.owner.name if customer.owner else None,
        "custom_fields": customer.custom_fields or {},
    }


def customer_card(session: Session, customer: Customer | None, caller_number: str | None = None) -> dict[str, Any]:
    """Return the screen pop: who the customer is and their recent history."""
    if customer is None:
        return {
            "id": None, "name": "Withheld number", "email": None, "tier": Tier.STANDARD.value,
            "stage": Stage.PROSPECT.value, "phones": [caller_number] if caller_number else [], "owner": None,
            "custom_fields": {}, "known": False, "timeline": [],
        }
    card = customer_dict(customer)
    card["known"] = customer.name != "Unknown caller"
    card["timeline"] = [entry_dict(e) for e in timeline(session, customer.id, limit=10)]
    return card


# ---------------------------------------------------------------- CSV import


@dataclass
class ImportReport:
    imported: int = 0
    updated: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)

    def as_dict(self) -> dict[str, Any]:
        return {
            "imported": self.imported,
            "updated": self.updated,
            "rejected": [{"line": line, "reason": reason} for line, reason in self.rejected],
        }


IMPORT_COLUMNS = ("name", "phone", "phone2", "email", "tier", "stage", "owner")


def import_customers(session: Session, stream: TextIO, region: str = "US", batch: int = 500) -> ImportReport:
    """Import customers from CSV (header: name, phone, [phone2, email, tier, stage, owner], extras).

    Good rows are kept whatever the bad ones hold; each bad row is reported with its line and reason.
    A row whose number belongs to an existing customer updates that customer. Extra columns become
    custom fields.
    """
    report = ImportReport()
    reader = csv.DictReader(stream)
    if not reader.fieldnames or "name" not in reader.fieldnames or "phone" not in reader.fieldnames:
        report.rejected.append((1, "the header must name at least the columns 'name' and 'phone'"))
        return report
    owners = {a.login: a.id for a in session.scalars(select(Agent))}
    pending = 0
    for row in reader:
        line = reader.line_num
        try:
            fields = _parse_row(row, region, owners)
        except ValueError as exc:
            report.rejected.append((line, str(exc)))
            continue
        try:
            with session.begin_nested():
                created = _upsert_customer(session, fields)
        except ValueError as exc:
            report.rejected.append((line, str(exc)))
            continue
        if created:
            report.imported += 1
        else:
            report.updated += 1
        pending += 1
        if pending >= batch:
            session.commit()
            pending = 0
    session.commit()
    return report


def _parse_row(row: dict[str, str | None], region: str, owners: dict[str, int]) -> dict[str, Any]:
    name = (row.get("name") or "").strip()
    if not name:
        raise ValueError("name is empty")
    numbers: list[str] = []
    for column in ("phone", "phone2"):
        raw = (row.get(column) or "").strip()
        if not raw:
            if column == "phone":
                raise ValueError("phone is empty")
            continue
        try:
            numbers.append(to_e164(raw, region))
        except InvalidNumber as exc:
            raise ValueError(f"{column} {exc}") from None
    tier = (row.get("tier") or Tier.STANDARD.value).strip().lower()
    if tier not in {t.value for t in Tier}:
        raise ValueError(f"tier must be one of gold, silver, standard, not {tier!r}")
    stage = (row.get("stage") or Stage.PROSPECT.value).strip().lower()
    if stage not in {s.value for s in Stage}:
        raise ValueError(f"stage {stage!r} is not a lifecycle stage")
    owner_login = (row.get("owner") or "").strip()
    if owner_login and owner_login not in owners:
        raise ValueError(f"owner {owner_login!r} is not an agent")
    extras = {k: v for k, v in row.items() if k and k not in IMPORT_COLUMNS and v not in (None, "")}
    return {
        "name": name, "numbers": list(dict.fromkeys(numbers)), "email": (row.get("email") or "").strip() or None,
        "tier": tier, "stage": stage, "owner_id": owners.get(owner_login), "extras": extras,
    }


def _upsert_customer(session: Session, fields: dict[str, Any]) -> bool:
    existing = [find_by_number(session, n) for n in fields["numbers"]]
    owners = {c.id for c in existing if c is not None}
    if len(owners) > 1:
        raise ValueError("the row's numbers belong to two different customers")
    customer = next((c for c in existing if c is not None), None)
    created = customer is None
    if customer is None:
        customer = Customer(name=fields["name"])
        session.add(customer)
    customer.name = fields["name"]
    customer.email = fields["email"] or customer.email
    customer.value_tier = fields["tier"]
    customer.lifecycle_stage = fields["stage"]
    customer.owner_agent_id = fields["owner_id"] or customer.owner_agent_id
    customer.custom_fields = {**(customer.custom_fields or {}), **fields["extras"]}
    known = {p.number for p in customer.phones}
    for number in fields["numbers"]:
        if number not in known:
            customer.phones.append(CustomerPhone(number=number))
    session.flush()
    return created

