"""Segments: saved, named filters over customers; their live counts, their CSV export, and seeding a campaign.

Criteria are a JSON object; every key is optional and they all must hold (AND):

    tiers, stages                 lists of tier / stage names
    clv_min, clv_max              expected lifetime value, in the CRM's currency
    churn_risk                    true: only flagged customers; false: only customers not flagged
    p_alive_max                   P(alive) at most this (0..1)
    last_contact_days_min/max     days since the customer's last call (never called: counts as "long ago")
    last_purchase_days_min/max    days since the last purchase (never bought: counts as "long ago")
    products, categories          bought at least one of these (exact names)
    regions                       the custom field "region" (case-insensitive), or for a two-letter country
                                  code such as "GB" a phone number of that country (+1 covers all of NANP)
    campaigns                     were a lead of one of these campaigns (names)
    dispositions                  with one of these dispositions (in those campaigns, or in any)
    not_in_campaigns              were never a lead of these campaigns (e.g. the one being seeded)

Seeding a campaign adds each customer's first number as a lead, through the campaign lead import: numbers
already in the campaign are skipped, numbers on a do-not-call list are imported but marked, and every lead
is dialed only when the compliance gate (calling window, DNC, per-person caps) allows it, like any other.
"""
from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import phonenumbers
from sqlalchemy import and_, exists, func, not_, or_, select
from sqlalchemy.orm import Session, sessionmaker

from campaigns.export import neutralise, phone_cell
from campaigns.leads import LeadImportReport, import_leads
from campaigns.models import Campaign, Lead
from crm.models import CustomerValue, Order, Segment
from hub.errors import FlowError
from hub.models import Call, Customer, CustomerPhone, Stage, Tier

CHUNK = 1000
LIST_KEYS = ("tiers", "stages", "products", "categories", "regions", "campaigns", "dispositions",
             "not_in_campaigns")
NUMBER_KEYS = ("clv_min", "clv_max", "p_alive_max", "last_contact_days_min", "last_contact_days_max",
               "last_purchase_days_min", "last_purchase_days_max")
CRITERIA_KEYS = (*LIST_KEYS, *NUMBER_KEYS, "churn_risk")


class SegmentError(FlowError):
    """Criteria that cannot be used; `problems` lists (criterion, what is wrong)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{name}: {message}" for name, message in problems), 400)
        self.problems = problems


def validate_criteria(criteria: Any) -> dict[str, Any]:
    """Return the criteria checked and normalised (empty lists dropped).

    Raises:
        SegmentError: every problem found, each naming its criterion.
    """
    if not isinstance(criteria, dict):
        raise SegmentError([("criteria", "must be an object")])
    problems: list[tuple[str, str]] = []
    clean: dict[str, Any] = {}
    for key, value in criteria.items():
        if key not in CRITERIA_KEYS:
            problems.append((key, f"is not a criterion (known: {', '.join(CRITERIA_KEYS)})"))
        elif key in LIST_KEYS:
            if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
                problems.append((key, "must be a list of names"))
            elif value:
                clean[key] = [v.strip() for v in value]
        elif key == "churn_risk":
            if not isinstance(value, bool):
                problems.append((key, "must be true or false"))
            else:
                clean[key] = value
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            problems.append((key, "must be a number of at least 0"))
        else:
            clean[key] = value
    allowed = {"tiers": {t.value for t in Tier}, "stages": {s.value for s in Stage}}
    for key, names in allowed.items():
        wrong = [v for v in clean.get(key, []) if v not in names]
        if wrong:
            problems.append((key, f"{', '.join(wrong)} not known (one of {', '.join(sorted(names))})"))
    if clean.get("p_alive_max", 0) > 1:
        problems.append(("p_alive_max", "is a probability, at most 1"))
    for low, high in (("clv_min", "clv_max"), ("last_contact_days_min", "last_contact_days_max"),
                      ("last_purchase_days_min", "last_purchase_days_max")):
        if low in clean and high in clean and clean[low] > clean[high]:
            problems.append((low, f"is above {high}"))
    if problems:
        raise SegmentError(problems)
    return clean


def _region_filter(regions: list[str]):
    region_field = func.lower(Customer.custom_fields["region"].as_string())
    conditions = [region_field.in_([r.lower() for r in regions])]
    for region in regions:
        code = phonenumbers.country_code_for_region(region.upper()) if len(region) == 2 else 0
        if code:
            conditions.append(exists().where(CustomerPhone.customer_id == Customer.id,
                                             CustomerPhone.number.like(f"+{code}%")))
    return or_(*conditions)


def customer_query(criteria: dict[str, Any], now: datetime):
    """Return a SELECT of the matching customers' ids (criteria already validated)."""
    query = select(Customer.id).outerjoin(CustomerValue, CustomerValue.customer_id == Customer.id)
    c = criteria
    if "tiers" in c:
        query = query.where(Customer.value_tier.in_(c["tiers"]))
    if "stages" in c:
        query = query.where(Customer.lifecycle_stage.in_(c["stages"]))
    if "clv_min" in c:
        query = query.where(CustomerValue.clv_cents >= round(c["clv_min"] * 100))
    if "clv_max" in c:
        query = query.where(CustomerValue.clv_cents <= round(c["clv_max"] * 100))
    if "churn_risk" in c:
        flagged = CustomerValue.churn_risk.is_(True)
        query = query.where(flagged if c["churn_risk"] else or_(CustomerValue.churn_risk.is_(None), not_(flagged)))
    if "p_alive_max" in c:
        query = query.where(CustomerValue.p_alive <= c["p_alive_max"])
    if "last_purchase_days_min" in c:
        query = query.where(or_(CustomerValue.last_purchase_at.is_(None),
                                CustomerValue.last_purchase_at <= now - timedelta(days=c["last_purchase_days_min"])))
    if "last_purchase_days_max" in c:
        query = query.where(CustomerValue.last_purchase_at >= now - timedelta(days=c["last_purchase_days_max"]))
    if "last_contact_days_min" in c:
        recent = now - timedelta(days=c["last_contact_days_min"])
        query = query.where(~exists().where(Call.customer_id == Customer.id, Call.created_at > recent))
    if "last_contact_days_max" in c:
        since = now - timedelta(days=c["last_contact_days_max"])
        query = query.where(exists().where(Call.customer_id == Customer.id, Call.created_at >= since))
    if "products" in c or "categories" in c:
        bought = []
        if "products" in c:
            bought.append(Order.product.in_(c["products"]))
        if "categories" in c:
            bought.append(Order.category.in_(c["categories"]))
        query = query.where(exists().where(Order.customer_id == Customer.id, or_(*bought)))
    if "regions" in c:
        query = query.where(_region_filter(c["regions"]))
    if "campaigns" in c or "dispositions" in c:
        lead = [Lead.customer_id == Customer.id]
        if "campaigns" in c:
            lead.append(Lead.campaign_id.in_(select(Campaign.id).where(Campaign.name.in_(c["campaigns"]))))
        if "dispositions" in c:
            lead.append(Lead.disposition.in_(c["dispositions"]))
        query = query.where(exists().where(and_(*lead)))
    if "not_in_campaigns" in c:
        query = query.where(~exists().where(
            Lead.customer_id == Customer.id,
            Lead.campaign_id.in_(select(Campaign.id).where(Campaign.name.in_(c["not_in_campaigns"])))))
    return query


# ---------------------------------------------------------------- saved segments


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 100:
        raise SegmentError([("name", "must be text of 1 to 100 characters")])
    if name.strip().isdigit():  # the API and CLI find a segment by id or name: a number would be ambiguous
        raise SegmentError([("name", "must not be only digits (a segment is also found by its id)")])
    return name.strip()


def save_segment(session: Session, values: dict[str, Any], now: datetime, agent_id: int | None = None,
                 segment: Segment | None = None) -> Segment:
    """Create a segment, or change `segment`: name, criteria, description.

    Raises:
        SegmentError: bad name or criteria; FlowError 409 when the name is taken.
    """
    unknown = set(values) - {"name", "criteria", "description"}
    if unknown:
        raise SegmentError([(k, "is not a segment field (name, criteria, description)") for k in sorted(unknown)])
    name = _check_name(values["name"]) if "name" in values or segment is None else segment.name
    criteria = validate_criteria(values.get("criteria", {} if segment is None else segment.criteria))
    description = values.get("description", None if segment is None else segment.description)
    if description is not None and (not isinstance(description, str) or len(description) > 300):
        raise SegmentError([("description", "must be text of at most 300 characters")])
    clash = session.scalar(select(Segment.id).where(Segment.name == name))
    if clash is not None and (segment is None or clash != segment.id):
        raise FlowError(f"a segment named {name!r} exists already", 409)
    if segment is None:
        segment = Segment(name=name, created_by=agent_id, created_at=now)
        session.add(segment)
    segment.name, segment.criteria, segment.description, segment.updated_at = name, criteria, description, now
    session.flush()
    return segment


def find_segment(session: Session, key: str | int) -> Segment:
    """Return the segment with this id or name.

    Raises:
        FlowError: 404.
    """
    segment = None
    if isinstance(key, int) or str(key).isdigit():
        segment = session.get(Segment, int(key))
    if segment is None:
        segment = session.scalar(select(Segment).where(Segment.name == str(key)))
    if segment is None:
        raise FlowError(f"no segment {key!r}", 404)
    return segment


def count_segment(session: Session, criteria: dict[str, Any], now: datetime) -> int:
    """How many customers match now."""
    return session.scalar(select(func.count()).select_from(customer_query(criteria, now).subquery())) or 0


def segment_dict(segment: Segment, count: int | None = None) -> dict[str, Any]:
    data = {"id": segment.id, "name": segment.name, "description": segment.description,
            "criteria": segment.criteria, "created_at": segment.created_at.isoformat(),
            "updated_at": segment.updated_at.isoformat()}
    if count is not None:
        data["count"] = count
    return data


# ---------------------------------------------------------------- export and campaign seeding


EXPORT_COLUMNS = ("customer_id", "name", "phone", "email", "tier", "stage", "clv", "p_alive", "churn_risk",
                  "churn_reason", "orders", "revenue", "revenue_12m", "last_purchase_at", "value_to_date")


def _first_phone():
    return (select(CustomerPhone.number).where(CustomerPhone.customer_id == Customer.id)
            .order_by(CustomerPhone.id).limit(1).scalar_subquery())


def _line(cells: list[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(cells)
    return buffer.getvalue()


def _amount(cents: int | None) -> str | None:
    return None if cents is None else f"{cents / 100:.2f}"


def export_segment(session: Session, criteria: dict[str, Any], now: datetime) -> Iterator[str]:
    """Yield the segment's customers as CSV lines (header first), formula-safe like the leads export."""
    ids = customer_query(criteria, now).subquery()
    query = (select(Customer, CustomerValue, _first_phone())
             .join(ids, ids.c.id == Customer.id)
             .outerjoin(CustomerValue, CustomerValue.customer_id == Customer.id)
             .order_by(Customer.id).execution_options(yield_per=CHUNK))
    yield _line(list(EXPORT_COLUMNS))
    for customer, values, phone in session.execute(query):
        v = values
        cells = [customer.id, customer.name, None, customer.email, customer.value_tier, customer.lifecycle_stage,
                 _amount(v.clv_cents) if v else None, round(v.p_alive, 4) if v and v.p_alive is not None else None,
                 v.churn_risk if v else False, v.churn_reason if v else None, v.orders if v else 0,
                 _amount(v.revenue_cents) if v else "0.00", _amount(v.revenue_12m_cents) if v else "0.00",
                 v.last_purchase_at if v else None, _amount(v.value_to_date_cents) if v else "0.00"]
        row = [neutralise(cell) for cell in cells]
        row[2] = phone_cell(phone or "")
        yield _line(row)


def _lead_lines(sessions: sessionmaker[Session], criteria: dict[str, Any], segment_name: str,
                now: datetime) -> Iterator[str]:
    """The segment's customers as a leads CSV (phone, first_name, last_name, customer_id, segment)."""
    yield _line(["phone", "first_name", "last_name", "customer_id", "segment"])
    ids = customer_query(criteria, now).subquery()
    query = (select(Customer.id, Customer.name, _first_phone()).join(ids, ids.c.id == Customer.id)
             .order_by(Customer.id).execution_options(yield_per=CHUNK))
    with sessions() as reader:
        for customer_id, name, phone in reader.execute(query):
            if not phone:
                continue
            first, _, last = (name or "").partition(" ")
            yield _line([phone, first[:100], last[:100], customer_id, segment_name])


def seed_campaign(sessions: sessionmaker[Session], segment_id: int, campaign_id: int, region: str,
                  now: datetime) -> LeadImportReport:
    """Add the segment's customers (their first number) as leads of the campaign, linked to the customer.

    Goes through the campaign lead import, so a number already in the campaign is a duplicate, a number on a
    do-not-call list is marked, and the dialer's compliance gate and per-person caps apply when dialing.

    Raises:
        FlowError: 404 for no segment or campaign.
    """
    with sessions() as session:
        segment = find_segment(session, segment_id)
        criteria, name = segment.criteria, segment.name
        if session.get(Campaign, campaign_id) is None:
            raise FlowError(f"no campaign {campaign_id}", 404)
    with sessions() as writer:
        try:
            return import_leads(writer, campaign_id, _lead_lines(sessions, criteria, name, now), region, now,
                                list_name=f"segment: {name}"[:100])
        finally:
            writer.rollback()
