"""Segments on SQLite and PostgreSQL: criteria checked with clear errors, live counts, a formula-safe CSV
export, and seeding a campaign whose leads still go through the compliance gate and the per-person caps."""
from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from campaigns import dialer
from campaigns.models import Campaign, DialAttempt, Lead
from campaigns.pacing import DialMode, PacingPlan
from crm.models import Order
from crm.recompute import recompute_all
from crm.segments import (SegmentError, count_segment, export_segment, save_segment, seed_campaign,
                          validate_criteria)
from hub.db import transaction
from hub.models import Customer, CustomerPhone
from tests.campaigns.conftest import db, sessions  # noqa: F401  (fixtures)
from tests.campaigns.helpers import numbers, seed_campaign as make_campaign


def test_bad_criteria_are_refused_naming_each_criterion():
    with pytest.raises(SegmentError) as refused:
        validate_criteria({"tiers": ["platinum"], "clv_min": -1, "colour": "red", "p_alive_max": 2,
                           "last_purchase_days_min": 90, "last_purchase_days_max": 30, "churn_risk": "yes"})
    names = [name for name, _ in refused.value.problems]
    assert sorted(names) == sorted(["tiers", "clv_min", "colour", "p_alive_max", "last_purchase_days_min",
                                    "churn_risk"])
    assert refused.value.status == 400 and "platinum not known" in refused.value.message
    assert validate_criteria({"stages": ["lapsed"], "tiers": []}) == {"stages": ["lapsed"]}


GONE = ["lapsed", "churned"]  # three buyers gone quiet for 280 days: the model (at its limit) calls them churned


def _base(sessions, now, phones):  # noqa: F811
    """Three buyers gone quiet (one with a formula for a name) and a prospect, all in the Midwest."""
    with transaction(sessions) as s:
        ids = []
        for i, phone in enumerate(phones):
            name = "=HYPERLINK(\"http://x\")" if i == 0 else f"Gold Customer {i}"
            customer = Customer(name=name, phones=[CustomerPhone(number=phone)], custom_fields={"region": "Midwest"})
            s.add(customer)
            s.flush()
            ids.append(customer.id)
            if i < 3:  # three earlier purchases, the last long ago: lapsed, and the top revenue
                for k in range(3):
                    s.add(Order(customer_id=customer.id, ordered_at=now - timedelta(days=400 - 60 * k),
                                amount_cents=50_000, currency="USD", source="import", product="Panel"))
    recompute_all(sessions, now)
    return ids


def test_a_segment_counts_exports_and_seeds_a_campaign_once(sessions):  # noqa: F811
    now = datetime.now(UTC)
    phones = ["+13125550111", "+13125550112", "+13125550113", "+13125550114"]
    ids = _base(sessions, now, phones)
    with transaction(sessions) as s:
        segment = save_segment(s, {"name": "Lapsed gold", "criteria": {"stages": GONE, "products": ["Panel"],
                                                                       "last_purchase_days_min": 200}}, now)
        assert count_segment(s, segment.criteria, now) == 3
        assert count_segment(s, {"tiers": ["silver"]}, now) == 2  # at most half of 4 customers
        assert count_segment(s, {"churn_risk": False}, now) == 1
        assert count_segment(s, {"clv_min": 0}, now) == 3  # the prospect has no lifetime value at all
        assert count_segment(s, {"clv_min": 100}, now) == 0  # churned customers are not expected to spend $100
        assert count_segment(s, {"regions": ["midwest"]}, now) == 4
        assert count_segment(s, {"regions": ["GB"]}, now) == 0 and count_segment(s, {"regions": ["US"]}, now) == 4
        assert count_segment(s, {"last_purchase_days_max": 30}, now) == 0
        rows = list(csv.DictReader(io.StringIO("".join(export_segment(s, segment.criteria, now)))))
        segment_id = segment.id
        s.add(Campaign(name="Win-back", caller_id="+14155550100"))
    assert [int(r["customer_id"]) for r in rows] == ids[:3]
    assert rows[0]["name"].startswith("'=") and rows[0]["phone"] == phones[0]  # formula neutralised
    assert rows[1]["tier"] == "silver" and rows[1]["stage"] in GONE and rows[1]["orders"] == "3"
    with transaction(sessions) as s:
        campaign_id = s.scalar(select(Campaign.id))
        with pytest.raises(Exception) as taken:
            save_segment(s, {"name": "Lapsed gold"}, now)
        assert "exists already" in str(taken.value)
    report = seed_campaign(sessions, segment_id, campaign_id, "US", now)
    assert report.imported == 3 and report.linked_to_customers == 3 and not report.rejected
    again = seed_campaign(sessions, segment_id, campaign_id, "US", now)
    assert again.imported == 0 and again.duplicates == 3  # skipped, not added twice
    with transaction(sessions) as s:
        leads = s.scalars(select(Lead).order_by(Lead.id)).all()
        assert [(lead.phone, lead.customer_id) for lead in leads] == list(zip(phones[:3], ids[:3]))
        assert leads[1].first_name == "Gold" and leads[1].list_name == "segment: Lapsed gold"


def test_seeded_leads_on_the_dnc_list_or_over_the_24_hour_cap_are_not_dialed(sessions):  # noqa: F811
    now = datetime.now(UTC)
    phones = numbers(True, 3, now)  # inside their calling window right now
    dnc, capped, fine = phones
    ids = _base(sessions, now, phones)
    other = make_campaign(sessions, [], [dict(phone=capped)], name="Earlier campaign")
    with transaction(sessions) as s:
        earlier = s.scalar(select(Lead).where(Lead.campaign_id == other))
        for k in range(3):  # three calls to this person in the last 24 hours: the cap
            s.add(DialAttempt(idempotency_key=f"{earlier.id}:{k + 1}", campaign_id=other, lead_id=earlier.id,
                              number=k + 1, status="ended", outcome="no_answer",
                              created_at=now - timedelta(hours=k + 1)))
        segment_id = save_segment(s, {"name": "Lapsed", "criteria": {"stages": GONE}}, now).id
    campaign_id = make_campaign(sessions, [], [], dnc=[dnc], name="Win-back", status="running")
    report = seed_campaign(sessions, segment_id, campaign_id, "US", now)
    assert report.imported == 3 and report.dnc_flagged == 1
    with transaction(sessions) as s:
        campaign = s.get(Campaign, campaign_id)
        plan = PacingPlan(lines_covered=3, lines_ahead=0, effective_mode=DialMode.PROGRESSIVE, reason="test")
        chosen = dialer.take_leads(s, campaign, plan, now, "US")
        assert [lead.phone for lead, _ in chosen] == [fine]
        leads = {lead.phone: lead for lead in s.scalars(select(Lead).where(Lead.campaign_id == campaign_id))}
        assert leads[dnc].skip_code == "dnc_internal" and leads[capped].skip_code == "person_cap"
        assert {lead.customer_id for lead in leads.values()} == set(ids[:3])
