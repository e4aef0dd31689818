"""Orders: the CSV import of purchase history (customers matched by id, ref or phone; bad rows reported by
line, good rows kept; idempotent by order_id), single orders, and a won handoff becoming an order. On SQLite
and PostgreSQL."""
from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from campaigns.handoff import create_handoff, record_outcome
from campaigns.models import Campaign, Lead
from crm.models import Order
from crm.orders import add_order, import_orders, list_orders, parse_amount
from hub.errors import FlowError
from hub.models import Customer, CustomerPhone, TimelineEntry
from tests.campaigns.conftest import db, sessions  # noqa: F401  (fixtures)

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)


def _customers(db):  # noqa: F811
    ada = Customer(name="Ada Lovelace", external_ref="CRM-1", phones=[CustomerPhone(number="+12125550101")])
    bo = Customer(name="Bo Diddley", phones=[CustomerPhone(number="+12125550102")])
    db.add_all([ada, bo])
    db.commit()
    return ada.id, bo.id


def test_amounts_are_exact_cents_and_bad_amounts_say_why():
    assert parse_amount("12.5") == 1250 and parse_amount(19.99) == 1999 and parse_amount("0") == 0
    for bad, words in (("12.345", "two decimals"), ("-3", "at least 0"), ("abc", "a number"), ("nan", "finite")):
        with pytest.raises(ValueError, match=words):
            parse_amount(bad)


def test_import_matches_customers_keeps_good_rows_and_reports_bad_ones_by_line(db):  # noqa: F811
    ada, bo = _customers(db)
    text = (
        "order_id,customer_id,customer_ref,phone,ordered_at,amount,product,category\n"
        f"A1,{ada},,,2025-01-10,120.00,Panel,Solar\n"                      # 2: by id
        "A2,,CRM-1,,2025-02-10T10:00:00Z,80.5,,Solar\n"                  # 3: by ref
        "B1,,,(212) 555-0102,2025-03-01 09:30,45,Cable,\n"                # 4: by phone, read in the US
        "B2,,,+12125550199,2025-03-02,10,,\n"                            # 5: nobody has this number
        f"B3,{bo},CRM-1,,2025-03-03,10,,\n"                              # 6: id and ref disagree
        "B4,,,+12125550102,2031-01-01,10,,\n"                            # 7: in the future
        "B5,,,+12125550102,2025-03-04,ten,,\n"                           # 8: not an amount
        '"B6",,,+12125550102,2025-03-05,"1,000.00",,\n'                   # 9: thousands separator
        "B7,,,,2025-03-06,10,,\n"                                        # 10: no customer at all
        "A1,,,+12125550101,2025-01-11,5,,\n"                             # 11: order_id seen already
        "C1,,,+12125550101,2025-01-12,5,Pa\x00nel,\n"                     # 12: a NUL character
    )
    report = import_orders(db, io.StringIO(text), "US", NOW, batch_size=3)
    assert report.imported == 3 and report.duplicates == 1
    reasons = dict(report.rejected)
    assert sorted(reasons) == [5, 6, 7, 8, 9, 10, 12]
    assert reasons[12] == "product contains a NUL character"
    assert "no customer has this phone number" in reasons[5]
    assert "customer_id and customer_ref name different customers" in reasons[6]
    assert "future" in reasons[7] and "number" in reasons[8] and "number" in reasons[9]
    assert "names no customer" in reasons[10]
    orders = db.scalars(select(Order).order_by(Order.id)).all()
    assert [(o.customer_id, o.amount_cents, o.external_id, o.source) for o in orders] == [
        (ada, 12000, "A1", "import"), (ada, 8050, "A2", "import"), (bo, 4500, "B1", "import")]
    assert orders[2].ordered_at == datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
    entries = db.scalars(select(TimelineEntry).where(TimelineEntry.kind == "order")
                         .order_by(TimelineEntry.occurred_at)).all()
    assert [e.summary for e in entries] == ["Order 120.00 USD: Panel", "Order 80.50 USD: Solar",
                                            "Order 45.00 USD: Cable"]
    again = import_orders(db, io.StringIO(text), "US", NOW)
    assert again.imported == 0 and again.duplicates == 4  # nothing is stored twice
    assert db.scalar(select(Order.id).order_by(Order.id.desc())) == orders[-1].id


def test_a_header_without_the_needed_columns_is_refused_at_line_1(db):  # noqa: F811
    report = import_orders(db, io.StringIO("phone,amount\n+12125550101,3\n"), "US", NOW)
    assert report.imported == 0 and report.rejected == [(1, "the header must name the columns ordered_at")]
    report = import_orders(db, io.StringIO("ordered_at,amount\n2025-01-01,3\n"), "US", NOW)
    assert "customer_id, customer_ref or phone" in report.rejected[0][1]


def test_an_order_in_another_currency_is_refused(db):  # noqa: F811
    ada, _ = _customers(db)
    with pytest.raises(FlowError, match="currency must be USD"):
        add_order(db, ada, {"amount": 5, "currency": "EUR"}, "api", NOW)


def test_the_same_api_order_twice_is_stored_once_and_a_different_one_under_its_id_is_refused(db):  # noqa: F811
    ada, bo = _customers(db)
    first, created = add_order(db, ada, {"amount": "19.99", "order_id": "W-7", "ordered_at": "2025-05-01"}, "api", NOW)
    again, created_again = add_order(db, ada, {"amount": 19.99, "order_id": "W-7", "ordered_at": "2025-05-01"},
                                     "api", NOW)
    assert created and not created_again and again.id == first.id
    with pytest.raises(FlowError) as refused:
        add_order(db, ada, {"amount": 25, "order_id": "W-7", "ordered_at": "2025-05-01"}, "api", NOW)
    assert refused.value.status == 409
    with pytest.raises(FlowError) as missing:
        add_order(db, 9999, {"amount": 1}, "api", NOW)
    assert missing.value.status == 404
    total, page = list_orders(db, ada)
    assert total == 1 and page[0].amount_cents == 1999 and page[0].ordered_at == datetime(2025, 5, 1, tzinfo=UTC)


def test_a_won_handoff_becomes_one_order_and_makes_the_lead_a_first_time_buyer(db):  # noqa: F811
    campaign = Campaign(name="Solar", caller_id="+14155550100", territories={"*": {"rep": "Pat"}})
    db.add(campaign)
    db.flush()
    lead = Lead(campaign_id=campaign.id, phone="+13125550123", first_name="Cleo", last_name="Silva")
    db.add(lead)
    db.flush()
    handoff = create_handoff(db, lead, campaign, None, "", NOW, None)
    record_outcome(db, handoff.id, "won", 1250.5, None, NOW)
    db.commit()
    record_outcome(db, handoff.id, "won", 1250.5, None, NOW)  # field sales repeat themselves
    db.commit()
    customer = db.scalar(select(Customer).join(CustomerPhone).where(CustomerPhone.number == "+13125550123"))
    assert customer.name == "Cleo Silva" and db.get(Lead, lead.id).customer_id == customer.id
    orders = db.scalars(select(Order)).all()
    assert [(o.customer_id, o.amount_cents, o.source, o.external_id) for o in orders] == [
        (customer.id, 125050, "handoff", f"handoff-{handoff.id}")]
    assert customer.lifecycle_stage == "first_time_buyer"
    kinds = {e.kind for e in db.scalars(select(TimelineEntry).where(TimelineEntry.customer_id == customer.id))}
    assert {"handoff", "order", "stage"} <= kinds
