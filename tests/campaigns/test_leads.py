"""Lead import: bad rows reported by line, good rows kept, dedupe, customer links, custom fields, DNC marks,
the NANP fast path, and the formula-safe export."""
from __future__ import annotations

import csv
import io
import json
import random
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from campaigns.admin import create_campaign
from campaigns.dnc import add_complaint, add_opt_out
from campaigns.export import export_leads, neutralise
from campaigns.leads import _custom_fields_json, add_lead, import_leads, list_leads, normalise_number
from campaigns.models import DncEntry, Lead
from hub.errors import FlowError
from hub.models import Customer, CustomerPhone
from hub.phone import InvalidNumber, to_e164

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


@pytest.fixture
def campaign_id(db) -> int:
    campaign = create_campaign(db, {"name": "Solar", "caller_id": "+14155550100"})
    db.commit()
    return campaign.id


def leads_by_phone(db, campaign_id):
    return {lead.phone: lead for lead in db.scalars(select(Lead).where(Lead.campaign_id == campaign_id))}


def test_bad_rows_are_reported_by_the_line_the_user_sees_and_good_rows_are_kept(db, campaign_id):
    text = (
        "phone,first_name,state,notes\n"          # line 1
        "212-555-0101,Ada,NY,fine\n"               # 2
        "not a number,Bob,NY,\n"                   # 3: invalid
        ",Cy,NY,\n"                                # 4: missing phone
        "\"+1 212 555 0102\",Dee,NY,\"two\nlines\"\n"  # 5-6: quoted newline, good
        "2125550103,Eve,XX,\n"                     # 7: bad state
        "\n"                                       # 8: blank line
        "+12125550104,Fay,ca,\n"                   # 9: good, state lowercased
        "+12125550105,Gus,NY,\"a\nb\nc\"\n"        # 10-12 good
        "12,Hal,NY,\n"                             # 13: invalid
    )
    report = import_leads(db, campaign_id, io.StringIO(text), "US", NOW)
    assert [line for line, _ in report.rejected] == [3, 4, 7, 13]
    reasons = dict(report.rejected)
    assert reasons[3].startswith("phone") and reasons[4] == "phone is empty" and "state" in reasons[7]
    assert report.imported == 4
    leads = leads_by_phone(db, campaign_id)
    assert set(leads) == {"+12125550101", "+12125550102", "+12125550104", "+12125550105"}
    assert leads["+12125550102"].custom_fields == {"notes": "two\nlines"}
    assert leads["+12125550102"].source_line == 5 and leads["+12125550105"].source_line == 10
    assert leads["+12125550104"].state == "CA"


def test_an_unclosed_quote_is_reported_where_it_starts_and_earlier_rows_are_kept(db, campaign_id):
    text = 'phone,note\n2125550101,ok\n2125550102,"never closed\n2125550103,lost\n'
    report = import_leads(db, campaign_id, io.StringIO(text), "US", NOW)
    assert report.imported == 2 and [line for line, _ in report.rejected] == []
    assert leads_by_phone(db, campaign_id)["+12125550102"].custom_fields == {"note": "never closed\n2125550103,lost\n"}
    oversized = "phone,note\n2125550101,ok\n2125550102," + "x" * 200_000 + "\n2125550103,after\n"
    other = create_campaign(db, {"name": "Other", "caller_id": "+14155550100"})
    db.commit()
    report = import_leads(db, other.id, io.StringIO(oversized), "US", NOW)
    assert report.imported == 1 and report.rejected[0][0] == 3 and "cannot be read" in report.rejected[0][1]


def test_bytes_that_are_not_utf8_stop_the_import_there_and_keep_the_rows_read_before(db, campaign_id):
    good = "".join(f"212555{n:04d},Name{n}\n" for n in range(1000, 4000)).encode()  # lines 2-3001, ~60 KB
    data = b"phone,first_name\n" + good + b"2125559999,Bad\xff\n2125559998,After\n"
    stream = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", newline="")
    report = import_leads(db, campaign_id, stream, "US", NOW, batch_size=500)
    [(line, reason)] = report.rejected
    assert 1 < line <= 3002 and "cannot be read from this line on" in reason and "utf-8" in reason
    assert report.imported == line - 2 > 2000  # every row before that line, none after
    assert "+12125559998" not in leads_by_phone(db, campaign_id)
    stream = io.TextIOWrapper(io.BytesIO(b"phone\n2125550101,\xff\n"), encoding="utf-8", newline="")
    report = import_leads(db, campaign_id, stream, "US", NOW)
    assert report.imported == 0 and report.rejected[0][0] == 1 and "cannot be read" in report.rejected[0][1]


def test_a_header_without_phone_rejects_the_file_at_line_one(db, campaign_id):
    report = import_leads(db, campaign_id, io.StringIO("name,number\nA,2125550101\n"), "US", NOW)
    assert report.imported == 0 and report.rejected == [(1, "the header must name a 'phone' column")]


def test_duplicates_in_the_file_and_in_the_campaign_are_counted_not_rejected(db, campaign_id):
    import_leads(db, campaign_id, io.StringIO("phone\n2125550101\n"), "US", NOW)
    text = "phone\n(212) 555-0101\n2125550102\n+1 212-555-0102\n2125550103\n"
    report = import_leads(db, campaign_id, io.StringIO(text), "US", NOW, batch_size=2)
    assert (report.imported, report.duplicates, report.rejected) == (2, 2, [])
    assert len(leads_by_phone(db, campaign_id)) == 3


def test_duplicates_across_batches_are_caught(db, campaign_id):
    text = "phone\n" + "".join(f"21255501{i:02d}\n" for i in range(10)) + "2125550100\n2125550105\n"
    report = import_leads(db, campaign_id, io.StringIO(text), "US", NOW, batch_size=3, list_name="spring fair")
    assert (report.imported, report.duplicates) == (10, 2)
    assert {lead.list_name for lead in leads_by_phone(db, campaign_id).values()} == {"spring fair"}


def test_leads_link_to_the_customer_who_owns_the_number_and_keep_custom_fields(db, campaign_id):
    db.add(Customer(name="Grace", phones=[CustomerPhone(number="+12125550101")]))
    db.commit()
    text = "Phone,First_Name,zip,priority,Plan,Empty\n2125550101,Grace,10001,5,gold,\n2125550102,Alan,,,,\n"
    report = import_leads(db, campaign_id, io.StringIO(text), "US", NOW)
    assert report.imported == 2 and report.linked_to_customers == 1
    leads = leads_by_phone(db, campaign_id)
    grace = leads["+12125550101"]
    assert grace.customer_id is not None and grace.first_name == "Grace" and grace.postal_code == "10001"
    assert grace.priority == 5 and grace.custom_fields == {"Plan": "gold"} and grace.status == "ready"
    assert leads["+12125550102"].customer_id is None and leads["+12125550102"].custom_fields == {}


def test_a_bad_priority_and_extra_values_are_rejected(db, campaign_id):
    text = "phone,priority\n2125550101,high\n2125550102,1,surplus\n2125550103,2\n"
    report = import_leads(db, campaign_id, io.StringIO(text), "US", NOW)
    assert [line for line, _ in report.rejected] == [2, 3] and report.imported == 1


def test_numbers_on_dnc_lists_are_imported_but_marked_with_the_strongest_source(db, campaign_id):
    add_opt_out(db, "+12125550101", "asked", NOW)
    add_complaint(db, "+12125550102", "angry", NOW)
    add_opt_out(db, "+12125550102", None, NOW)
    db.add(DncEntry(phone="+12125550103", source="registry", added_at=NOW))
    db.commit()
    text = "phone\n2125550101\n2125550102\n2125550103\n2125550104\n"
    report = import_leads(db, campaign_id, io.StringIO(text), "US", NOW)
    assert report.imported == 4 and report.dnc_flagged == 3
    codes = {p: lead.skip_code for p, lead in leads_by_phone(db, campaign_id).items()}
    assert codes == {"+12125550101": "dnc_internal", "+12125550102": "dnc_complaint",
                     "+12125550103": "dnc_registry", "+12125550104": None}


def test_a_number_already_in_the_campaign_is_not_counted_as_linked_or_marked_again(db, campaign_id):
    db.add(Customer(name="Grace", phones=[CustomerPhone(number="+12125550101")]))
    add_opt_out(db, "+12125550101", None, NOW)
    add_opt_out(db, "+12125550103", None, NOW)
    db.commit()
    first = import_leads(db, campaign_id, io.StringIO("phone\n2125550101\n"), "US", NOW)
    assert (first.imported, first.linked_to_customers, first.dnc_flagged) == (1, 1, 1)
    again = import_leads(db, campaign_id, io.StringIO("phone\n2125550101\n2125550102\n2125550103\n"), "US", NOW)
    assert (again.imported, again.duplicates, again.linked_to_customers, again.dnc_flagged) == (2, 1, 0, 1)


def test_leads_keep_the_file_order_within_and_across_batches(db, campaign_id):
    numbers = [f"+1212555{n:04d}" for n in random.Random(7).sample(range(100, 10000), 11)]
    report = import_leads(db, campaign_id, io.StringIO("phone\n" + "\n".join(numbers) + "\n"), "US", NOW,
                          batch_size=4)
    total, page = list_leads(db, campaign_id, limit=20)
    assert report.imported == total == 11
    assert [lead.phone for lead in page] == numbers
    assert [lead.source_line for lead in page] == list(range(2, 13))


AWKWARD = ['say "hi"', "back\\slash", "tab\tand\x01control", "Zoë 😀 中文", "n\x00ul", "{\"not\": json}", "  padded  "]


def test_awkward_text_in_names_and_custom_fields_is_stored_as_written(db, campaign_id):
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["phone", "first_name", "Ünïcode key", 'quote"key', "short"])
    for n, value in enumerate(AWKWARD):
        name = value if "\x00" not in value else "Nul"
        writer.writerow([f"21255501{n:02d}", name, value, value[::-1], value])
    out.write("2125550199,Short\n")  # fewer values than the header names
    report = import_leads(db, campaign_id, io.StringIO(out.getvalue()), "US", NOW)
    assert report.rejected == [] and report.imported == len(AWKWARD) + 1
    leads = leads_by_phone(db, campaign_id)
    for n, value in enumerate(AWKWARD):
        lead = leads[f"+121255501{n:02d}"]
        assert lead.custom_fields == {"Ünïcode key": value, 'quote"key': value[::-1], "short": value}
        assert lead.first_name == (value.strip() if "\x00" not in value else "Nul")
    assert leads["+12125550199"].first_name == "Short" and leads["+12125550199"].custom_fields == {}


def test_a_nul_character_in_a_stored_field_rejects_that_row_only(db, campaign_id):
    text = "phone,first_name,last_name,note\n2125550101,Ada,Lovelace,\x00ok\n2125550102,B\x00b,X,\n" \
           "2125550103,Cy,Y\x00,\n2125550104,Dee,Z,\n"
    report = import_leads(db, campaign_id, io.StringIO(text), "US", NOW)
    assert report.rejected == [(3, "first_name contains a NUL character"), (4, "last_name contains a NUL character")]
    assert set(leads_by_phone(db, campaign_id)) == {"+12125550101", "+12125550104"}
    assert leads_by_phone(db, campaign_id)["+12125550101"].custom_fields == {"note": "\x00ok"}
    with pytest.raises(FlowError) as info:
        import_leads(db, campaign_id, io.StringIO("phone\n2125550105\n"), "US", NOW, list_name="a\x00b")
    assert info.value.status == 400
    with pytest.raises(FlowError) as info:
        add_lead(db, campaign_id, {"phone": "2125550106", "first_name": "\x00"}, "US", NOW)
    assert info.value.status == 400 and "NUL" in info.value.message


def test_the_import_refuses_an_unknown_campaign(db):
    with pytest.raises(FlowError) as info:
        import_leads(db, 999, io.StringIO("phone\n2125550101\n"), "US", NOW)
    assert info.value.status == 404


def test_add_lead_checks_like_an_import_row_and_refuses_a_duplicate(db, campaign_id):
    lead = add_lead(db, campaign_id, {"phone": "(212) 555-0101", "state": "ny", "custom_fields": {"x": 1},
                                      "list_name": "web form"}, "US", NOW)
    db.commit()
    assert lead.phone == "+12125550101" and lead.state == "NY" and lead.custom_fields == {"x": 1}
    assert lead.list_name == "web form"
    with pytest.raises(FlowError) as info:
        add_lead(db, campaign_id, {"phone": "+12125550101"}, "US", NOW)
    assert info.value.status == 409
    with pytest.raises(FlowError) as info:
        add_lead(db, campaign_id, {"phone": "2125550102", "state": "Narnia"}, "US", NOW)
    assert info.value.status == 400 and "state" in info.value.message


def test_export_neutralises_formulas_but_keeps_e164_numbers_usable(db, campaign_id):
    text = ('phone,first_name,last_name,note\n'
            '+12125550101,=HYPERLINK("http://x"),@SUM(A1),-2+3\n'
            '2125550102,Bo,+cmd,"\tTab"\n')
    import_leads(db, campaign_id, io.StringIO(text), "US", NOW)
    rows = list(csv.DictReader(io.StringIO("".join(export_leads(db, campaign_id)))))
    assert [r["phone"] for r in rows] == ["+12125550101", "+12125550102"]
    assert rows[0]["first_name"] == "'=HYPERLINK(\"http://x\")" and rows[0]["last_name"] == "'@SUM(A1)"
    assert rows[0]["note"] == "'-2+3" and rows[1]["first_name"] == "Bo"
    assert rows[1]["note"] == "'\tTab" and rows[1]["last_name"] == "'+cmd"
    assert neutralise("\rx") == "'\rx" and neutralise(None) == ""


def test_an_exported_file_imports_again_into_another_campaign(db, campaign_id):
    import_leads(db, campaign_id, io.StringIO("phone,first_name\n2125550101,Ada\n"), "US", NOW)
    other = create_campaign(db, {"name": "Again", "caller_id": "+14155550100"})
    db.commit()
    report = import_leads(db, other.id, io.StringIO("".join(export_leads(db, campaign_id))), "US", NOW)
    assert report.imported == 1 and report.rejected == []


# ---------------------------------------------------------------- the NANP fast path


def _reference(raw: str, region: str) -> str | None:
    try:
        return to_e164(raw, region)
    except InvalidNumber:
        return None


def _fast(raw: str, region: str) -> str | None:
    try:
        return normalise_number(raw, region)
    except InvalidNumber:
        return None


nanp_like = st.builds(lambda prefix, digits, pad: f"{pad}{prefix}{digits}{pad}",
                      st.sampled_from(["+1", "", "1", "+", "+11", "0", "+1 ", "+1(", "(", "1-"]),
                      st.text(alphabet="0123456789", min_size=8, max_size=12)
                      | st.text(alphabet="0123456789 -().", min_size=10, max_size=18),
                      st.sampled_from(["", " ", "\t", "\u00a0", "\x1c", "."]))
valid_us = st.builds(lambda a, b, c, form: form.format(a, b, c), st.integers(200, 999).map(str),
                     st.integers(200, 999).map(str), st.integers(0, 9999).map(lambda n: f"{n:04d}"),
                     st.sampled_from(["{}{}{}", "+1{}{}{}", "({}) {}-{}", "+1 {}.{}.{}", "{}-{}-{}", "+1({}){}{}"]))


@settings(max_examples=4000, deadline=None)
@given(raw=st.one_of(nanp_like, valid_us, st.text(alphabet="+0123456789 -().", max_size=18)),
       region=st.sampled_from(["US", "CA", "GB"]))
def test_the_fast_path_gives_exactly_what_phonenumbers_gives(raw, region):
    assert _fast(raw, region) == _reference(raw, region)


def test_the_fast_path_handles_canadian_and_caribbean_numbers_through_phonenumbers():
    assert normalise_number("+14165550123", "US") == to_e164("+14165550123", "US")  # Toronto
    assert normalise_number("8765550123", "US") == to_e164("8765550123", "US")  # Jamaica
    with pytest.raises(InvalidNumber):
        normalise_number("+11234567890", "US")


def test_the_fast_path_agrees_with_phonenumbers_on_the_benchmark_s_numbers():
    rng = random.Random(11)
    forms = ["+1{}", "{}", "({}) {}-{}", "+1 {}.{}.{}", "1{}", "+1{}0", "{}1", "+{}"]
    for _ in range(3000):
        digits = f"{rng.randint(100, 999)}{rng.randint(0, 9)}{rng.randint(0, 999999):06d}"  # 0 and 1 too
        form = rng.choice(forms)
        raw = form.format(digits[:3], digits[3:6], digits[6:]) if form.count("{}") == 3 else form.format(digits)
        for region in ("US", "CA", "GB"):
            assert _fast(raw, region) == _reference(raw, region), (raw, region)


@settings(max_examples=500, deadline=None)
@given(values=st.lists(st.text(), min_size=1, max_size=6), names=st.lists(st.text(min_size=1), min_size=6,
                                                                          max_size=6, unique=True))
def test_custom_fields_are_written_as_json_dumps_writes_them(values, names):
    columns = list(zip(names, range(len(values))))
    expected = json.dumps({name: values[i] for name, i in columns if values[i] != ""})
    assert _custom_fields_json(columns)(values) == expected
