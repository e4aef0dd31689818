"""The CRM's REST API through the real app, on SQLite and PostgreSQL: every route's login and role, CSRF on
writes made with a session cookie, clear refusals that store nothing, idempotent orders, purchase history
imported with bad rows reported by line, segments (count, CSV export, seeding a campaign) and settings."""
from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from campaigns.models import Lead
from crm.models import CrmSettings, ModelRun, Order, Segment
from crm.recompute import recompute_all
from hub.admin import add_agent
from hub.app import create_app
from hub.db import transaction
from hub.models import Customer, CustomerPhone, TimelineEntry
from tests.conftest import make_settings
from tests.offers import offer_call

SUPERVISOR = "supervisor"
AGENT = "agent"
# every route of crm/views.py: (method, path, the least role allowed); {cid} is a customer, {seg} a segment
ROUTES = [
    ("POST", "/api/v1/customers/{cid}/orders", AGENT),
    ("GET", "/api/v1/customers/{cid}/orders", AGENT),
    ("GET", "/api/v1/customers/{cid}/value", AGENT),
    ("POST", "/api/v1/customers/{cid}/advocate", SUPERVISOR),
    ("POST", "/api/v1/crm/orders", SUPERVISOR),
    ("POST", "/api/v1/crm/recompute", SUPERVISOR),
    ("GET", "/api/v1/crm/runs", SUPERVISOR),
    ("GET", "/api/v1/crm/settings", SUPERVISOR),
    ("PATCH", "/api/v1/crm/settings", SUPERVISOR),
    ("GET", "/api/v1/crm/segments", SUPERVISOR),
    ("POST", "/api/v1/crm/segments", SUPERVISOR),
    ("POST", "/api/v1/crm/segments/count", SUPERVISOR),
    ("GET", "/api/v1/crm/segments/{seg}", SUPERVISOR),
    ("PATCH", "/api/v1/crm/segments/{seg}", SUPERVISOR),
    ("DELETE", "/api/v1/crm/segments/{seg}", SUPERVISOR),
    ("GET", "/api/v1/crm/segments/{seg}/customers.csv", SUPERVISOR),
    ("POST", "/api/v1/crm/segments/{seg}/seed", SUPERVISOR),
]
WRITES = [r for r in ROUTES if r[0] != "GET"]
# a body each write would accept from someone allowed to make it
BODIES = {
    "/api/v1/customers/{cid}/orders": {"json": {"amount": "10.00", "order_id": "W-1"}},
    "/api/v1/customers/{cid}/advocate": {"json": {"advocate": True}},
    "/api/v1/crm/orders": {"data": "customer_id,ordered_at,amount\n{cid},2025-01-01,5\n", "content_type": "text/csv"},
    "/api/v1/crm/recompute": {},
    "/api/v1/crm/settings": {"json": {"cost_per_minute": 0.5}},
    "/api/v1/crm/segments": {"json": {"name": "Another", "criteria": {"tiers": ["gold"]}}},
    "/api/v1/crm/segments/count": {"json": {"criteria": {"tiers": ["gold"]}}},
    "/api/v1/crm/segments/{seg}": {"json": {"description": "changed"}},
    "/api/v1/crm/segments/{seg}/seed": {"json": {"campaign_id": 1}},
}


@pytest.fixture
def app(database_url, redis_client):
    app = create_app(make_settings(database_url))
    with transaction(app.extensions["switchboard"].sessions) as session:
        add_agent(session, "ana", "Ana Agent", "password1", "agent")
        add_agent(session, "sue", "Sue Supervisor", "password2", "supervisor")
    yield app
    app.extensions["switchboard"].close()


def bearer(client, login: str, password: str) -> dict[str, str]:
    response = client.post("/api/v1/auth/token", json={"login": login, "password": password})
    assert response.status_code == 200
    return {"Authorization": "Bearer " + response.get_json()["token"]}


def cookie_login(client, login: str, password: str) -> str:
    """Log in through the login form, as a browser does; return the session's CSRF token."""
    csrf = re.search(rb'name="csrf_token" value="([^"]+)"', client.get("/login").data).group(1).decode()
    assert client.post("/login", data={"login": login, "password": password, "csrf_token": csrf}).status_code == 302
    return csrf


def add_customer(app, name: str, phone: str, **fields) -> int:
    with transaction(app.extensions["switchboard"].sessions) as s:
        customer = Customer(name=name, phones=[CustomerPhone(number=phone)], **fields)
        s.add(customer)
        s.flush()
        return customer.id


def stored(app) -> dict[str, object]:
    """What the CRM has written: orders, order timeline lines, segments, runs, settings, leads, queued jobs."""
    services = app.extensions["switchboard"]
    with transaction(services.sessions) as s:
        settings = s.get(CrmSettings, 1)
        return {
            "orders": s.scalar(select(func.count()).select_from(Order)),
            "order_lines": s.scalar(select(func.count()).select_from(TimelineEntry)
                                    .where(TimelineEntry.kind == "order")),
            "segments": sorted(s.scalars(select(Segment.name))),
            "descriptions": sorted(d or "" for d in s.scalars(select(Segment.description))),
            "runs": s.scalar(select(func.count()).select_from(ModelRun)),
            "settings": ("USD", 0.0, 0.0, {}) if settings is None  # the defaults, not stored until first read
            else (settings.currency, settings.cost_per_minute, settings.cost_per_order, settings.rules),
            "leads": s.scalar(select(func.count()).select_from(Lead)),
            "jobs": sorted(services.jobs.queue.get_job_ids()),
        }


def queued(app) -> list[tuple[str, list]]:
    queue = app.extensions["switchboard"].jobs.queue
    return [(job.func_name, job.args) for job in (queue.fetch_job(i) for i in queue.get_job_ids())]


def call(client, method: str, path: str, headers: dict | None = None, **kwargs):
    return client.open(path, method=method, headers=headers or {}, **kwargs)


def _fill(path: str, cid: int, seg: int) -> str:
    return path.format(cid=cid, seg=seg)


def _body(path: str, cid: int) -> dict:
    body = dict(BODIES.get(path, {}))
    if "data" in body:
        body["data"] = body["data"].format(cid=cid)
    return body


# ---------------------------------------------------------------- login, roles, CSRF


def test_the_route_table_of_these_tests_covers_every_crm_route(app):
    served = {(method, re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule))
              for rule in app.url_map.iter_rules() if rule.endpoint.startswith("crm_api.")
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    named = {(m, p.replace("{cid}", "{customer_id}").replace("{seg}", "{key}")) for m, p, _ in ROUTES}
    assert served == named


def test_every_crm_route_refuses_anonymous_callers_and_the_wrong_role_and_writes_nothing(app):
    client = app.test_client()
    cid = add_customer(app, "Ada Lovelace", "+12125550101")
    sue = bearer(client, "sue", "password2")
    seg = client.post("/api/v1/crm/segments", json={"name": "Gold", "criteria": {"tiers": ["gold"]}},
                      headers=sue).get_json()["id"]
    before = stored(app)
    ana = bearer(client, "ana", "password1")
    for method, path, role in ROUTES:
        url = _fill(path, cid, seg)
        anonymous = call(client, method, url, **_body(path, cid))
        assert anonymous.status_code == 401, (method, path)
        assert anonymous.get_json()["error"] == "Unauthorized", (method, path)
        if role == SUPERVISOR:
            refused = call(client, method, url, ana, **_body(path, cid))
            assert refused.status_code == 403 and refused.get_json()["error"] == "Forbidden", (method, path)
    assert stored(app) == before  # no order, segment change, run, setting, lead or job from any refusal
    reads = [(method, path) for method, path, role in ROUTES if role == AGENT and method == "GET"]
    for method, path in reads:  # an agent reads a customer's orders and value only for the work in hand...
        assert call(client, method, _fill(path, cid, seg), ana).status_code == 403, (method, path)
    assert client.post(f"/api/v1/customers/{cid}/orders", json={"amount": "3"}, headers=ana).status_code == 403
    assert stored(app) == before  # ...and records an order only for it
    offer_call(app, "ana", "+12125550101")  # ...such as Ada's call (tests/test_customer_access.py: the rule)
    for method, path in reads:
        assert call(client, method, _fill(path, cid, seg), ana).status_code == 200, (method, path)
    assert client.post(f"/api/v1/customers/{cid}/orders", json={"amount": "3"}, headers=ana).status_code == 201


def test_every_crm_write_with_a_session_cookie_needs_the_csrf_token(app):
    client = app.test_client()
    cid = add_customer(app, "Ada Lovelace", "+12125550101")
    seg = client.post("/api/v1/crm/segments", json={"name": "Gold", "criteria": {}},
                      headers=bearer(client, "sue", "password2")).get_json()["id"]
    csrf = cookie_login(client, "sue", "password2")
    before = stored(app)
    for method, path, _ in WRITES:
        for headers in ({}, {"X-CSRF-Token": "forged"}):
            refused = call(client, method, _fill(path, cid, seg), headers, **_body(path, cid))
            assert refused.status_code == 400, (method, path, headers)
            assert "reload the page" in refused.get_json()["message"], (method, path)
    assert stored(app) == before
    assert client.get("/api/v1/crm/settings").status_code == 200  # reads need no token
    token = {"X-CSRF-Token": csrf}
    assert client.post(f"/api/v1/customers/{cid}/orders", json={"amount": "10"}, headers=token).status_code == 201
    assert client.patch("/api/v1/crm/settings", json={"cost_per_order": 1.5}, headers=token).status_code == 200
    assert client.delete(f"/api/v1/crm/segments/{seg}", headers=token).get_json() == {"deleted": "Gold"}
    after = stored(app)
    assert after["orders"] == 1 and after["settings"][2] == 1.5 and after["segments"] == []


# ---------------------------------------------------------------- orders


def test_an_order_sent_twice_is_stored_once_and_another_order_under_its_id_is_a_conflict(app):
    client = app.test_client()
    cid = add_customer(app, "Ada Lovelace", "+12125550101")
    ana, sue = bearer(client, "ana", "password1"), bearer(client, "sue", "password2")
    body = {"amount": "19.99", "order_id": "W-7", "ordered_at": "2025-05-01T10:00:00+02:00", "product": "Panel",
            "category": "Solar"}
    first = client.post(f"/api/v1/customers/{cid}/orders", json=body, headers=sue)
    assert first.status_code == 201
    order = first.get_json()
    assert (order["amount"], order["amount_cents"], order["currency"], order["order_id"], order["source"]) == \
        ("19.99", 1999, "USD", "W-7", "api")
    assert order["ordered_at"] == "2025-05-01T08:00:00+00:00"  # kept in UTC
    assert queued(app) == [("crm.tasks.recompute_customer", [cid, f"order {order['id']} of 19.99 USD"])]
    retried = client.post(f"/api/v1/customers/{cid}/orders", json={**body, "amount": 19.99}, headers=sue)
    assert retried.status_code == 200 and retried.get_json() == order  # the stored order, unchanged
    conflict = client.post(f"/api/v1/customers/{cid}/orders", json={**body, "amount": "25.00"}, headers=sue)
    assert conflict.status_code == 409 and "'W-7' is already used by another order" in conflict.get_json()["message"]
    other = add_customer(app, "Bo Diddley", "+12125550102")
    elsewhere = client.post(f"/api/v1/customers/{other}/orders", json=body, headers=sue)
    assert elsewhere.status_code == 409  # the same order id cannot belong to two customers
    offer_call(app, "ana", "+12125550101")  # an agent lists the orders of the customer on their call
    listed = client.get(f"/api/v1/customers/{cid}/orders", headers=ana).get_json()
    assert listed["total"] == 1 and listed["orders"] == [order]
    assert len(queued(app)) == 1  # only the new order asked for a recompute
    assert stored(app)["order_lines"] == 1


@pytest.mark.parametrize("body,words", [
    ({"amount": "12.345"}, "amount has more than two decimals"),
    ({"amount": "-3"}, "amount must be at least 0"),
    ({"amount": "ten"}, "amount must be a number such as 12.50"),
    ({"amount": True}, "amount must be a number"),
    ({"amount": 1e400}, "amount must be a finite number"),
    ({"product": "Panel"}, "amount is empty"),
    ({"amount": "5", "currency": "EUR"}, "currency must be USD"),
    ({"amount": "5", "ordered_at": "yesterday"}, "ordered_at must be an ISO 8601 date"),
    ({"amount": "5", "ordered_at": "2999-01-01"}, "ordered_at is in the future"),
    ({"amount": "5", "colour": "red"}, "unknown order fields: colour"),
    ({"amount": "5", "product": "x" * 101}, "product is longer than 100 characters"),
    ({"amount": "5", "product": {"name": "Panel"}}, "product must be text"),
    ({"amount": "5", "order_id": ["W-1"]}, "order_id must be text"),
    ({"amount": "5", "product": "Pa\x00nel"}, "product contains a NUL character"),
    ([{"amount": "5"}], "send a JSON object"),
    ("amount=5", "send a JSON object"),
])
def test_a_bad_order_is_refused_with_a_clear_message_and_nothing_is_stored(app, body, words):
    client = app.test_client()
    cid = add_customer(app, "Ada Lovelace", "+12125550101")
    sue = bearer(client, "sue", "password2")
    before = stored(app)
    if isinstance(body, str):
        response = client.post(f"/api/v1/customers/{cid}/orders", data=body, headers=sue,
                               content_type="application/x-www-form-urlencoded")
    else:
        response = client.post(f"/api/v1/customers/{cid}/orders", json=body, headers=sue)
    assert response.status_code == 400 and words in response.get_json()["message"]
    assert stored(app) == before


def test_orders_of_a_customer_who_does_not_exist_are_a_404(app):
    client = app.test_client()
    ana, sue = bearer(client, "ana", "password1"), bearer(client, "sue", "password2")
    for response in (client.post("/api/v1/customers/999/orders", json={"amount": "5"}, headers=sue),
                     client.get("/api/v1/customers/999/orders", headers=sue),
                     client.get("/api/v1/customers/999/value", headers=sue)):
        assert response.status_code == 404 and response.get_json()["message"] == "no customer 999"
    for path in ("/api/v1/customers/999/orders", "/api/v1/customers/999/value"):  # an agent learns nothing
        assert client.get(path, headers=ana).status_code == 403  # of which customers exist
    assert client.post("/api/v1/customers/999/orders", json={"amount": "5"}, headers=ana).status_code == 403
    assert stored(app)["orders"] == 0 and queued(app) == []


def test_purchase_history_posted_as_csv_keeps_good_rows_reports_bad_ones_by_line_and_enqueues_a_recompute(app):
    client = app.test_client()
    ada = add_customer(app, "Ada Lovelace", "+12125550101", external_ref="CRM-1")
    bo = add_customer(app, "Bo Diddley", "+12125550102")
    sue = bearer(client, "sue", "password2")
    text = ("order_id,customer_id,customer_ref,phone,ordered_at,amount,product\n"
            f"A1,{ada},,,2025-01-10,120.00,Panel\n"        # 2
            "A2,,CRM-1,,2025-02-10,80.5,\n"                # 3
            "B1,,,(212) 555-0102,2025-03-01 09:30,45,\n"   # 4
            "B2,,,+12125550199,2025-03-02,10,\n"           # 5: nobody has this number
            "B3,,,+12125550102,2025-03-02,12.345,\n"       # 6: three decimals
            "B4,,,,2025-03-03,10,\n")                      # 7: no customer
    response = client.post("/api/v1/crm/orders", data=text, content_type="text/csv", headers=sue)
    assert response.status_code == 200
    report = response.get_json()
    assert (report["imported"], report["duplicates"], report["customers"]) == (3, 0, 2)
    assert [(r["line"], r["reason"]) for r in report["rejected"]] == [
        (5, "no customer has this phone number"), (6, "amount has more than two decimals"),
        (7, "the row names no customer (customer_id, customer_ref or phone)")]
    assert queued(app) == [("crm.tasks.recompute_all", [False])]
    assert report["recompute_job"] == app.extensions["switchboard"].jobs.queue.get_job_ids()[0]
    with transaction(app.extensions["switchboard"].sessions) as s:
        assert sorted(s.execute(select(Order.customer_id, Order.amount_cents)).all()) == \
            sorted([(ada, 12000), (ada, 8050), (bo, 4500)])
    again = client.post("/api/v1/crm/orders", data=text, content_type="text/csv", headers=sue).get_json()
    assert again["imported"] == 0 and again["duplicates"] == 3 and "recompute_job" not in again
    assert len(queued(app)) == 1  # nothing new: no second recompute


def test_purchase_history_that_is_not_csv_or_not_readable_is_refused_and_nothing_is_stored(app):
    client = app.test_client()
    ada = add_customer(app, "Ada Lovelace", "+12125550101")
    sue = bearer(client, "sue", "password2")
    before = stored(app)
    as_json = client.post("/api/v1/crm/orders", json={"customer_id": ada, "amount": 5}, headers=sue)
    assert as_json.status_code == 415 and "text/csv" in as_json.get_json()["message"]
    header = client.post("/api/v1/crm/orders", data="customer_id,amount\n1,5\n", content_type="text/csv",
                         headers=sue).get_json()
    assert header["imported"] == 0 and header["rejected"] == [
        {"line": 1, "reason": "the header must name the columns ordered_at"}]
    empty = client.post("/api/v1/crm/orders", data="", content_type="text/csv", headers=sue).get_json()
    assert empty["rejected"] == [{"line": 1, "reason": "the file is empty"}]
    latin1 = f"customer_id,ordered_at,amount,product\n{ada},2025-01-01,5,Cr\xe8me\n".encode("latin-1")
    garbled = client.post("/api/v1/crm/orders", data=latin1, content_type="text/csv", headers=sue)
    assert garbled.status_code == 200
    assert garbled.get_json()["imported"] == 0
    assert garbled.get_json()["rejected"][0]["line"] == 2 and "UTF-8" in garbled.get_json()["rejected"][0]["reason"]
    assert stored(app) == before


# ---------------------------------------------------------------- a customer's value, recompute, runs


def _history(app, now) -> list[int]:
    """Four customers: three bought three times (the third in the last months), one never bought."""
    ids = [add_customer(app, f"Customer {i}", f"+1312555011{i}", custom_fields={"region": "Midwest"})
           for i in range(4)]
    with transaction(app.extensions["switchboard"].sessions) as s:
        for rank, cid in enumerate(ids[:3]):
            for k in range(3):
                s.add(Order(customer_id=cid, ordered_at=now - timedelta(days=300 - 100 * k + rank),
                            amount_cents=(3 - rank) * 20_000, currency="USD", source="import", product="Panel"))
    return ids


def test_a_customers_value_shows_tier_stage_and_history_and_an_advocate_mark_moves_the_stage(app):
    client = app.test_client()
    services = app.extensions["switchboard"]
    now = services.clock()
    ids = _history(app, now)
    sue = bearer(client, "sue", "password2")
    enqueued = client.post("/api/v1/crm/recompute", headers=sue)
    assert enqueued.status_code == 202
    assert queued(app) == [("crm.tasks.recompute_all", [False])] and enqueued.get_json()["job"]
    recompute_all(services.sessions, now)  # what the worker runs (tests/crm/test_crm_worker.py runs it there)
    runs = client.get("/api/v1/crm/runs", headers=sue).get_json()["runs"]
    assert [(r["status"], r["customers"], r["buyers"], r["orders"]) for r in runs] == [("done", 4, 3, 9)]
    value = client.get(f"/api/v1/customers/{ids[0]}/value", headers=sue).get_json()
    assert value["tier"] in ("gold", "silver") and value["stage"] == "repeat_buyer"
    assert value["orders"] == 3 and value["revenue"] == 1800.0 and value["currency"] == "USD"
    assert value["rfm"]["monetary"] == 5
    assert [h["to"] for h in value["stage_history"]] == ["repeat_buyer"]
    assert value["tier_history"][0]["reason"].endswith("over the last 12 months (daily recompute)")
    prospect = client.get(f"/api/v1/customers/{ids[3]}/value", headers=sue).get_json()
    assert (prospect["tier"], prospect["stage"], prospect["orders"], prospect["lifetime_value"]) == \
        ("standard", "prospect", 0, None)
    for bad in ({}, {"advocate": "yes"}, {"advocate": 1}):
        refused = client.post(f"/api/v1/customers/{ids[0]}/advocate", json=bad, headers=sue)
        assert refused.status_code == 400 and '{"advocate": true}' in refused.get_json()["message"]
    assert client.post("/api/v1/customers/999/advocate", json={"advocate": True}, headers=sue).status_code == 404
    marked = client.post(f"/api/v1/customers/{ids[0]}/advocate", json={"advocate": True}, headers=sue).get_json()
    assert marked["advocate"] is True and marked["stage"] == "advocate"
    history = client.get(f"/api/v1/customers/{ids[0]}/value", headers=sue).get_json()["stage_history"]
    assert history[0]["to"] == "advocate" and history[0]["reason"].endswith("(marked as an advocate)")
    recompute_all(services.sessions, now)
    assert client.get(f"/api/v1/customers/{ids[0]}/value", headers=sue).get_json()["stage"] == "advocate"  # kept


# ---------------------------------------------------------------- segments


def test_segments_are_created_counted_changed_exported_and_seed_a_campaign_once(app):
    client = app.test_client()
    services = app.extensions["switchboard"]
    now = services.clock()
    ids = _history(app, now)
    recompute_all(services.sessions, now)
    sue = bearer(client, "sue", "password2")
    created = client.post("/api/v1/crm/segments", json={"name": "Panel buyers", "description": "bought a panel",
                                                        "criteria": {"products": ["Panel"], "regions": ["midwest"]}},
                          headers=sue)
    assert created.status_code == 201
    segment = created.get_json()
    assert segment["count"] == 3 and segment["criteria"] == {"products": ["Panel"], "regions": ["midwest"]}
    assert client.post("/api/v1/crm/segments", json={"name": "Panel buyers"}, headers=sue).status_code == 409
    counted = client.post("/api/v1/crm/segments/count", json={"criteria": {"stages": ["prospect"]}}, headers=sue)
    assert counted.get_json() == {"criteria": {"stages": ["prospect"]}, "count": 1}
    listed = client.get("/api/v1/crm/segments", headers=sue).get_json()["segments"]
    assert [(s["name"], s["count"]) for s in listed] == [("Panel buyers", 3)]
    by_name = client.get("/api/v1/crm/segments/Panel buyers", headers=sue).get_json()
    assert by_name == client.get(f"/api/v1/crm/segments/{segment['id']}", headers=sue).get_json()
    changed = client.patch(f"/api/v1/crm/segments/{segment['id']}",
                           json={"criteria": {"products": ["Panel"], "last_purchase_days_max": 150}}, headers=sue)
    assert changed.status_code == 200 and changed.get_json()["count"] == 3
    assert changed.get_json()["description"] == "bought a panel"  # what was not sent is kept
    exported = client.get(f"/api/v1/crm/segments/{segment['id']}/customers.csv", headers=sue)
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    assert exported.headers["Content-Disposition"] == 'attachment; filename="Panel_buyers.csv"'
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert [int(r["customer_id"]) for r in rows] == ids[:3]
    assert rows[0]["phone"] == "+13125550110" and rows[0]["orders"] == "3" and rows[0]["revenue"] == "1800.00"
    campaign = client.post("/api/v1/campaigns", json={"name": "Win-back", "caller_id": "+14155550100"},
                           headers=sue).get_json()["id"]
    for bad, status in (({"campaign_id": "one"}, 400), ({"campaign_id": True}, 400), ({}, 400),
                        ({"campaign_id": 999}, 404)):
        assert client.post(f"/api/v1/crm/segments/{segment['id']}/seed", json=bad, headers=sue).status_code == status
    assert stored(app)["leads"] == 0
    seeded = client.post(f"/api/v1/crm/segments/{segment['id']}/seed", json={"campaign_id": campaign}, headers=sue)
    assert seeded.status_code == 200
    assert (seeded.get_json()["imported"], seeded.get_json()["linked_to_customers"]) == (3, 3)
    again = client.post(f"/api/v1/crm/segments/Panel buyers/seed", json={"campaign_id": campaign}, headers=sue)
    assert (again.get_json()["imported"], again.get_json()["duplicates"]) == (0, 3)
    leads = client.get(f"/api/v1/campaigns/{campaign}/leads", headers=sue).get_json()["leads"]
    assert sorted(lead["phone"] for lead in leads) == ["+13125550110", "+13125550111", "+13125550112"]
    assert client.delete("/api/v1/crm/segments/Panel buyers", headers=sue).get_json() == {"deleted": "Panel buyers"}
    for method, url in (("GET", f"/api/v1/crm/segments/{segment['id']}"),
                        ("GET", f"/api/v1/crm/segments/{segment['id']}/customers.csv"),
                        ("DELETE", f"/api/v1/crm/segments/{segment['id']}")):
        missing = call(client, method, url, sue)
        assert missing.status_code == 404 and "no segment" in missing.get_json()["message"]


def test_bad_segments_are_refused_naming_each_criterion_and_nothing_is_saved(app):
    client = app.test_client()
    sue = bearer(client, "sue", "password2")
    seg = client.post("/api/v1/crm/segments", json={"name": "Gold", "criteria": {"tiers": ["gold"]}},
                      headers=sue).get_json()["id"]
    before = stored(app)
    refused = client.post("/api/v1/crm/segments", json={
        "name": "Bad", "criteria": {"tiers": ["platinum"], "clv_min": -1, "colour": "red", "churn_risk": "yes"}},
        headers=sue)
    assert refused.status_code == 400
    assert sorted(p["criterion"] for p in refused.get_json()["problems"]) == ["churn_risk", "clv_min", "colour",
                                                                             "tiers"]
    assert "platinum not known" in refused.get_json()["message"]
    for body, criterion in (({"name": ""}, "name"), ({"name": "x" * 101}, "name"), ({"name": "42"}, "name"),
                            ({"name": "Ok", "criteria": []}, "criteria"), ({"name": "Ok", "owner": "me"}, "owner"),
                            ({"name": "Ok", "description": 7}, "description")):
        response = client.post("/api/v1/crm/segments", json=body, headers=sue)
        assert response.status_code == 400 and response.get_json()["problems"][0]["criterion"] == criterion, body
    bad_change = client.patch(f"/api/v1/crm/segments/{seg}", json={"criteria": {"stages": ["sleeping"]}}, headers=sue)
    assert bad_change.status_code == 400 and bad_change.get_json()["problems"][0]["criterion"] == "stages"
    bad_count = client.post("/api/v1/crm/segments/count", json={"criteria": {"p_alive_max": 2}}, headers=sue)
    assert bad_count.status_code == 400 and bad_count.get_json()["problems"][0]["criterion"] == "p_alive_max"
    assert client.post("/api/v1/crm/segments", data="name=x", headers=sue).status_code == 400
    assert stored(app) == before
    assert client.get(f"/api/v1/crm/segments/{seg}", headers=sue).get_json()["criteria"] == {"tiers": ["gold"]}


# ---------------------------------------------------------------- settings


@pytest.mark.parametrize("change,words", [
    ({"currency": "usd"}, "currency must be a three-letter ISO 4217 code"),
    ({"currency": 840}, "currency must be a three-letter ISO 4217 code"),
    ({"cost_per_minute": -0.1}, "cost_per_minute must be a number of at least 0"),
    ({"cost_per_order": "1.5"}, "cost_per_order must be a number of at least 0"),
    ({"cost_per_order": True}, "cost_per_order must be a number of at least 0"),
    ({"colour": "red"}, "unknown CRM settings: colour"),
    ({"rules": []}, "rules must be an object"),
    ({"rules": {"pricing": {}}}, "unknown rule sections: pricing"),
    ({"rules": {"tiers": {"gold_share": 1.5}}}, "rules.tiers:"),
    ({"rules": {"tiers": {"platinum_share": 0.5}}}, "rules.tiers.platinum_share is not a rule"),
    ({"rules": {"lifecycle": {"loyal_purchases": 2.5}}}, "rules.lifecycle.loyal_purchases must be a whole number"),
    ({"rules": {"lifecycle": {"churn_p_alive": "low"}}}, "rules.lifecycle.churn_p_alive must be a number"),
    ({"rules": {"model": {"horizon_months": 0}}}, "horizon_months must be a whole number from 1 to 120"),
    ({"rules": {"model": []}}, "rules.model must be an object"),
    ({"cost_per_minute": 0.5, "currency": "euro"}, "currency must be"),  # one bad value: none is applied
])
def test_a_bad_setting_is_refused_by_name_and_nothing_changes(app, change, words):
    client = app.test_client()
    sue = bearer(client, "sue", "password2")
    before = client.get("/api/v1/crm/settings", headers=sue).get_json()
    response = client.patch("/api/v1/crm/settings", json=change, headers=sue)
    assert response.status_code == 400 and words in response.get_json()["message"]
    assert client.get("/api/v1/crm/settings", headers=sue).get_json() == before


def test_settings_are_stored_and_the_currency_cannot_change_once_orders_are_kept_in_another(app):
    client = app.test_client()
    sue = bearer(client, "sue", "password2")
    defaults = client.get("/api/v1/crm/settings", headers=sue).get_json()
    assert (defaults["currency"], defaults["cost_per_minute"], defaults["cost_per_order"], defaults["rules"]) == \
        ("USD", 0.0, 0.0, {})
    rules = {"tiers": {"gold_share": 0.7}, "lifecycle": {"loyal_purchases": 5}, "model": {"horizon_months": 24}}
    changed = client.patch("/api/v1/crm/settings", json={"currency": "EUR", "cost_per_minute": 0.25, "rules": rules},
                           headers=sue)
    assert changed.status_code == 200
    assert (changed.get_json()["currency"], changed.get_json()["cost_per_minute"], changed.get_json()["rules"]) == \
        ("EUR", 0.25, rules)
    cid = add_customer(app, "Ada Lovelace", "+12125550101")
    assert client.post(f"/api/v1/customers/{cid}/orders", json={"amount": "5"}, headers=sue).get_json()["currency"] \
        == "EUR"
    refused = client.patch("/api/v1/crm/settings", json={"currency": "USD"}, headers=sue)
    assert refused.status_code == 409 and "1 order is kept in EUR" in refused.get_json()["message"]
    assert client.get("/api/v1/crm/settings", headers=sue).get_json()["currency"] == "EUR"
    assert client.patch("/api/v1/crm/settings", json={"currency": "EUR"}, headers=sue).status_code == 200  # same
