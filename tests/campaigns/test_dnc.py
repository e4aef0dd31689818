"""Do-not-call: opt-outs take effect at once in every campaign, removal, registry extracts, staleness."""
from __future__ import annotations

import io
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from campaigns.admin import create_campaign
from campaigns.dnc import (add_complaint, add_opt_out, dnc_sources_for, import_registry_extract, is_stale,
                           latest_extract, remove)
from campaigns.leads import import_leads
from campaigns.models import DncEntry, Lead, RegistryExtract
from hub.errors import FlowError
from hub.models import Customer, CustomerPhone, TimelineEntry

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def two_campaigns_with(db, csv_text: str) -> list[int]:
    ids = []
    for name in ("Solar", "Windows"):
        campaign = create_campaign(db, {"name": name, "caller_id": "+14155550100"})
        db.commit()
        import_leads(db, campaign.id, io.StringIO(csv_text), "US", NOW)
        ids.append(campaign.id)
    return ids


def codes(db, phone):
    return sorted((lead.campaign_id, lead.status, lead.skip_code)
                  for lead in db.scalars(select(Lead).where(Lead.phone == phone)))


def test_an_opt_out_marks_the_ready_leads_of_every_campaign_at_once(db):
    first, second = two_campaigns_with(db, "phone\n2125550101\n2125550102\n")
    db.execute(Lead.__table__.update().where(Lead.campaign_id == second, Lead.phone == "+12125550101")
               .values(status="done", skip_code=None))
    db.commit()
    add_opt_out(db, "(212) 555-0101", "said stop", NOW)
    db.commit()
    assert codes(db, "+12125550101") == [(first, "ready", "dnc_internal"), (second, "done", None)]
    assert codes(db, "+12125550102") == [(first, "ready", None), (second, "ready", None)]
    assert dnc_sources_for(db, ["+12125550101", "+12125550102"]) == {"+12125550101": {"internal"},
                                                                      "+12125550102": set()}


def test_an_opt_out_lands_on_the_customers_timeline(db):
    customer = Customer(name="Grace", phones=[CustomerPhone(number="+12125550101")])
    db.add(customer)
    db.commit()
    add_opt_out(db, "+12125550101", "said stop", NOW)
    db.commit()
    entry = db.scalar(select(TimelineEntry).where(TimelineEntry.customer_id == customer.id))
    assert entry.kind == "dnc" and "said stop" in entry.summary


def test_removing_an_opt_out_needs_a_reason_and_clears_the_marks_but_not_a_complaint(db):
    first, second = two_campaigns_with(db, "phone\n2125550101\n2125550102\n")
    add_opt_out(db, "+12125550101", None, NOW)
    add_opt_out(db, "+12125550102", None, NOW)
    add_complaint(db, "+12125550102", "abusive", NOW)
    db.commit()
    with pytest.raises(FlowError) as info:
        remove(db, "+12125550101", " ", NOW)
    assert info.value.status == 400
    remove(db, "+12125550101", "consent given on the phone, recorded", NOW)
    remove(db, "+12125550102", "opt-in", NOW)
    db.commit()
    assert codes(db, "+12125550101") == [(first, "ready", None), (second, "ready", None)]
    assert codes(db, "+12125550102") == [(first, "ready", "dnc_complaint"), (second, "ready", "dnc_complaint")]
    with pytest.raises(FlowError) as info:
        remove(db, "+12125550102", "again", NOW)  # only a complaint is left: not removable here
    assert info.value.status == 404 and "complaint" in info.value.message


def test_a_registry_extract_replaces_the_previous_one_and_records_its_date(db):
    (first, _) = two_campaigns_with(db, "phone\n2125550101\n2125550102\n2125550103\n")
    report = import_registry_extract(db, io.StringIO("phone\n2125550101\n2125550102\nbad\n2125550101\n"),
                                     date(2026, 11, 1), "US", NOW)
    assert report.rows == 2 and report.duplicates == 1 and report.rejected[0][0] == 4
    assert codes(db, "+12125550101")[0] == (first, "ready", "dnc_registry")
    # the US registry's layout: area code, number; no header
    second = import_registry_extract(db, io.StringIO("212,5550102\n212,5550103\n"), date(2026, 11, 20), "US", NOW)
    assert second.rows == 2 and second.rejected == []
    registry = sorted(db.scalars(select(DncEntry.phone).where(DncEntry.source == "registry")))
    assert registry == ["+12125550102", "+12125550103"]
    assert codes(db, "+12125550101")[0] == (first, "ready", None)  # no longer on the registry
    assert codes(db, "+12125550103")[0] == (first, "ready", "dnc_registry")
    extract = latest_extract(db)
    assert extract.extract_date == date(2026, 11, 20) and extract.rows == 2
    assert len(db.scalars(select(RegistryExtract)).all()) == 2
    with pytest.raises(FlowError) as info:
        import_registry_extract(db, io.StringIO("phone\n2125550101\n"), date(2026, 11, 19), "US", NOW)
    assert info.value.status == 409


def test_a_registry_extract_does_not_touch_the_internal_list(db):
    add_opt_out(db, "+12125550101", None, NOW)
    db.commit()
    import_registry_extract(db, io.StringIO("phone\n2125550101\n"), date(2026, 11, 1), "US", NOW)
    import_registry_extract(db, io.StringIO("phone\n2125550199\n"), date(2026, 11, 2), "US", NOW)
    assert dnc_sources_for(db, ["+12125550101"]) == {"+12125550101": {"internal"}}


def test_staleness_of_the_registry():
    assert is_stale(None, date(2026, 11, 23))
    assert not is_stale(date(2026, 10, 23), date(2026, 11, 23))  # 31 days
    assert is_stale(date(2026, 10, 22), date(2026, 11, 23))  # 32 days
    assert not is_stale(date(2026, 11, 1), date(2026, 11, 23), max_age_days=30)


def test_no_extract_means_none(db):
    assert latest_extract(db) is None


def test_sources_lookup_batches_over_many_numbers(db):
    numbers = [f"+1212555{i:04d}" for i in range(2500)]
    db.execute(DncEntry.__table__.insert(), [{"phone": n, "source": "registry", "added_at": NOW}
                                             for n in numbers[::2]])
    db.commit()
    found = dnc_sources_for(db, numbers)
    assert len(found) == 2500 and sum(1 for s in found.values() if s == {"registry"}) == 1250
