"""Customers: identify by number, their timeline, their card, and CSV import."""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from hub.models import Agent, Call, Customer, CustomerPhone, Stage, Tier, TimelineEntry
from hub.phone import InvalidNumber, to_e164


def find_by_number(session: Session, e164: str) -> Customer | None:
    """Return the customer who owns the E.164 number, if any."""
    return session.scalar(
        select(Customer).join(CustomerPhone).where(CustomerPhone.number == e164)
    )


@dataclass(frozen=True)
class Caller:
    """Who is calling, as routing needs it (no ORM object: the incoming webhook reads only these)."""

    id: int
    value_tier: str
    owner_agent_id: int | None


def identify_caller_briefly(session: Session, e164: str | None) -> Caller | None:
    """`identify_caller` for the incoming-call webhook: the same customer, read with one plain select."""
    if e164 is None:
        return None
    row = session.execute(
        select(Customer.id, Customer.value_tier, Customer.owner_agent_id)
        .join(CustomerPhone).where(CustomerPhone.number == e164).limit(1)
    ).first()
    if row is not None:
        return Caller(*row)
    customer = identify_caller(session, e164)
    return Caller(customer.id, customer.value_tier, customer.owner_agent_id)


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


def customer_card(session: Session, customer: Customer | None, caller_number: str | None = None,
                  now: datetime | None = None) -> dict[str, Any]:
    """Return the screen pop: who the customer is, their recent history and, given `now`, what is still open
    for them (complaints, callbacks)."""
    if customer is None:
        return {
            "id": None, "name": "Withheld number", "email": None, "tier": Tier.STANDARD.value,
            "stage": Stage.PROSPECT.value, "phones": [caller_number] if caller_number else [], "owner": None,
            "custom_fields": {}, "known": False, "timeline": [], "value": None, "complaints": [], "callbacks": [],
        }
    card = customer_dict(customer)
    card["known"] = customer.name != "Unknown caller"
    card["value"] = value_summary(session, customer.id)
    card["timeline"] = [entry_dict(e) for e in timeline(session, customer.id, limit=10)]
    if now is not None:
        from hub.complaints import open_complaints  # hub.complaints reaches the DNC list, which imports this module

        card["complaints"] = open_complaints(session, customer.id, now)
        card["callbacks"] = open_callbacks(session, customer, now)
    return card


def open_callbacks(session: Session, customer: Customer, now: datetime) -> list[dict[str, Any]]:
    """The callbacks the customer is waiting for: routing callbacks still keeping their place in a queue, then
    soonest first campaign leads booked for a later time (by the lead's customer or one of their numbers) and
    callbacks booked at an inbound wrap-up (hub.scheduled_callbacks) not yet due."""
    from campaigns.models import Campaign, Lead, LeadStatus  # the campaigns' tables import only hub.models

    numbers = [p.number for p in customer.phones]
    mine = Lead.customer_id == customer.id
    if numbers:
        mine = or_(mine, Lead.phone.in_(numbers))
    booked = session.execute(
        select(Lead, Campaign.name, Agent.name).join(Campaign, Campaign.id == Lead.campaign_id)
        .outerjoin(Agent, Agent.id == Lead.callback_agent_id)
        .where(mine, Lead.callback_at > now, Lead.status != LeadStatus.DONE.value))
    items = [{
        "kind": "campaign", "at": lead.callback_at.isoformat(), "where": campaign, "phone": lead.phone,
        "owner": owner or "the campaign's team",
    } for lead, campaign, owner in booked]
    waiting = session.scalars(
        select(Call).where(Call.customer_id == customer.id, Call.callback.is_(True),
                           Call.routing_state.in_(("waiting", "offered"))).order_by(Call.created_at))
    items += [{
        "kind": "queue", "at": None, "since": call.created_at.isoformat(), "where": call.queue.name if call.queue else None,
        "phone": call.from_number, "owner": "the next agent free in the queue",
    } for call in waiting]
    from hub.scheduled_callbacks import waiting_callbacks  # it reaches routing, which imports this module

    items += [{
        "kind": "scheduled", "at": booked.due_at.isoformat(), "where": booked.queue.name if booked.queue else None,
        "phone": booked.phone, "owner": booked.owner.name if booked.owner else "anyone in the queue",
        "zone": booked.zone,
    } for booked in waiting_callbacks(session, customer.id)]
    return sorted(items, key=lambda item: (item["at"] is not None, item["at"] or ""))


def money(cents: int | None) -> float | None:
    """An amount kept in integer cents as the JSON number a person reads (19.99); None stays None."""
    return None if cents is None else round(cents / 100, 2)


def value_summary(session: Session, customer_id: int) -> dict[str, Any]:
    """What the CRM's last recompute says of the customer: lifetime value, P(alive), churn, value to date."""
    from crm.models import CrmSettings, CustomerValue  # the CRM's tables; crm.models imports only hub.models

    value = session.get(CustomerValue, customer_id)
    settings = session.get(CrmSettings, 1)
    return {
        "currency": settings.currency if settings else "USD",
        "lifetime_value": money(value.clv_cents) if value else None,
        "p_alive": round(value.p_alive, 3) if value and value.p_alive is not None else None,
        "churn_risk": bool(value.churn_risk) if value else False,
        "churn_reason": value.churn_reason if value else None,
        "value_to_date": money(value.value_to_date_cents) if value else None,
        "revenue_12m": money(value.revenue_12m_cents) if value else None,
        "orders": value.orders if value else 0,
        "last_purchase_at": value.last_purchase_at.isoformat() if value and value.last_purchase_at else None,
    }


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


IMPORT_COLUMNS = ("name", "phone", "phone2", "email", "tier", "stage", "owner", "external_ref")


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
        "external_ref": _external_ref(row.get("external_ref")),
        "name": name, "numbers": list(dict.fromkeys(numbers)), "email": (row.get("email") or "").strip() or None,
        "tier": tier, "stage": stage, "owner_id": owners.get(owner_login), "extras": extras,
    }


def _external_ref(raw: str | None) -> str | None:
    ref = (raw or "").strip()
    if len(ref) > 64:
        raise ValueError("external_ref is longer than 64 characters")
    return ref or None


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
    if fields["external_ref"] and fields["external_ref"] != customer.external_ref:
        taken = session.scalar(select(Customer.id).where(Customer.external_ref == fields["external_ref"]))
        if taken is not None:
            raise ValueError(f"external_ref {fields['external_ref']!r} belongs to another customer")
        customer.external_ref = fields["external_ref"]
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



# ---------------------------------------------------------------- unknown callers (screen pop)

UNKNOWN_NAME = "Unknown caller"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def is_unknown(customer: Customer) -> bool:
    """A prospect the hub created for a number it had never seen (identify_caller)."""
    return customer.name == UNKNOWN_NAME


def search_customers(session: Session, query: str, region: str = "US", limit: int = 20) -> list[Customer]:
    """Known customers whose name, email or one of whose numbers matches `query` (at least 2 characters)."""
    query = (query or "").strip()
    if len(query) < 2:
        return []
    conditions = [Customer.name.ilike(f"%{query}%"), Customer.email.ilike(f"%{query}%")]
    digits = re.sub(r"\D", "", query)
    if len(digits) >= 4:
        conditions.append(Customer.id.in_(select(CustomerPhone.customer_id).where(CustomerPhone.number.like(f"%{digits}%"))))
    try:
        conditions.append(Customer.id.in_(select(CustomerPhone.customer_id).where(
            CustomerPhone.number == to_e164(query, region))))
    except InvalidNumber:
        pass
    return list(session.scalars(select(Customer).where(or_(*conditions), Customer.name != UNKNOWN_NAME)
                                .order_by(Customer.name, Customer.id).limit(limit)))


def clean_contact(name: str | None, email: str | None) -> tuple[str, str | None]:
    """Validate a name (required) and an email (optional) typed by an agent; ValueError says what is wrong."""
    name = (name or "").strip()
    email = (email or "").strip() or None
    if not name:
        raise ValueError("give the caller's name")
    if len(name) > 200:
        raise ValueError("a name holds at most 200 characters")
    if name == UNKNOWN_NAME:
        raise ValueError("give the caller's real name")
    if email is not None and (len(email) > 200 or not _EMAIL.match(email)):
        raise ValueError("that email address does not look right")
    return name, email


def name_unknown_caller(session: Session, customer: Customer, name: str, email: str | None) -> Customer:
    """Turn the unknown caller's prospect into a named customer (their number stays theirs)."""
    if not is_unknown(customer):
        raise ValueError("this caller is already a known customer")
    customer.name, customer.email = clean_contact(name, email)
    session.flush()
    return customer


def merge_unknown_caller(session: Session, unknown: Customer, target: Customer, now: datetime,
                         agent_id: int | None = None) -> Customer:
    """Fold the unknown caller into an existing customer: numbers, timeline and calls move; the prospect goes.

    Every column that points at customers.id is moved (calls, timeline, campaign leads...), so nothing that
    belonged to the prospect is lost when its row is deleted.
    """
    if not is_unknown(unknown):
        raise ValueError("only an unknown caller can be merged into a customer")
    if unknown.id == target.id:
        raise ValueError("choose another customer to merge into")
    numbers = [p.number for p in unknown.phones]
    session.flush()
    for table in Customer.metadata.sorted_tables:
        for fk in table.foreign_keys:
            if fk.column.table.name == Customer.__tablename__ and table.name != Customer.__tablename__:
                session.execute(update(table).where(fk.parent == unknown.id).values({fk.parent.name: target.id}))
    session.expire_all()
    session.delete(session.get(Customer, unknown.id))
    session.flush()
    target = session.get(Customer, target.id)
    add_entry(session, target.id, "note", f"Merged an unknown caller's history ({len(numbers)} number(s))", now,
              agent_id=agent_id, details={"merged_numbers": numbers})
    return target
