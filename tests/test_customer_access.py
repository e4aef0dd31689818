"""An agent reads a customer's card, timeline, orders and value over the REST API only for the work they hold
(the call they are offered, talking on or wrapping up; the lead they preview), and records an order only for
that customer; supervisors and admins read everyone and record anyone's. Through the Flask app on SQLite and
PostgreSQL, and on the real stack (web and worker processes, the carrier simulator, a Socket.IO console)."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
import requests
from sqlalchemy import select

from campaigns import preview
from campaigns.models import Campaign, CampaignAgent, Lead
from crm.models import Order
from hub.admin import add_agent
from hub.agent_flows import change_presence
from hub.app import create_app
from hub.customers import add_entry
from hub.db import transaction
from hub.models import Agent, Customer, CustomerPhone
from tests.campaigns.helpers import ALL_WEEK
from tests.conftest import make_settings
from tests.offers import offer_call
from tests.stack import PASSWORD, QUEUE_NUMBER

GRACE, ADA = "+12125550001", "+12125550002"
READS = ("/api/v1/customers/{id}", "/api/v1/customers/{id}/timeline", "/api/v1/customers/{id}/orders",
         "/api/v1/customers/{id}/value")
REFUSAL = "you can see a customer's data only while you handle their call or preview their lead"
ORDER_REFUSAL = "you can record a customer's order only while you handle their call or preview their lead"


def _customer(session, name: str, number: str, now: datetime) -> int:
    customer = Customer(name=name, phones=[CustomerPhone(number=number)])
    session.add(customer)
    session.flush()
    add_entry(session, customer.id, "note", f"A note about {name}", now)
    session.add(Order(customer_id=customer.id, ordered_at=now, amount_cents=1999, currency="USD", source="import"))
    return customer.id


@pytest.fixture
def app(database_url, redis_client):
    app = create_app(make_settings(database_url))
    services = app.extensions["switchboard"]
    with transaction(services.sessions) as session:
        for login, role in (("ana", "agent"), ("ben", "agent"), ("sue", "supervisor"), ("al", "admin")):
            add_agent(session, login, login.title(), PASSWORD, role)
        now = services.clock()
        app.customers = {"grace": _customer(session, "Grace Hopper", GRACE, now),
                         "ada": _customer(session, "Ada Lovelace", ADA, now)}
    yield app
    services.close()


def bearer(client, login: str) -> dict[str, str]:
    token = client.post("/api/v1/auth/token", json={"login": login, "password": PASSWORD}).get_json()["token"]
    return {"Authorization": "Bearer " + token}


def statuses(client, headers, customer_id: int) -> list[int]:
    return [client.get(path.format(id=customer_id), headers=headers).status_code for path in READS]


def assert_refused(client, headers, customer_id: int) -> None:
    for path in READS:
        response = client.get(path.format(id=customer_id), headers=headers)
        assert response.status_code == 403, path
        assert response.get_json() == {"error": "Forbidden", "message": REFUSAL}, path


def _agent_id(app, login: str) -> int:
    with transaction(app.extensions["switchboard"].sessions) as session:
        return session.scalar(select(Agent.id).where(Agent.login == login))


def test_an_agent_offered_a_customers_call_reads_that_customer_and_is_refused_every_other(app):
    client = app.test_client()
    grace, ada = app.customers["grace"], app.customers["ada"]
    ana, ben = bearer(client, "ana"), bearer(client, "ben")
    assert_refused(client, ana, grace)  # no work in hand: nobody's data
    looked_up = client.get("/api/v1/customers", query_string={"phone": GRACE}, headers=ana)
    assert looked_up.status_code == 403 and "current call" in looked_up.get_json()["message"]

    offer_call(app, "ana", GRACE)
    assert statuses(client, ana, grace) == [200, 200, 200, 200]
    assert client.get(f"/api/v1/customers/{grace}", headers=ana).get_json()["name"] == "Grace Hopper"
    assert [e["summary"] for e in client.get(f"/api/v1/customers/{grace}/timeline", headers=ana)
            .get_json()["entries"]] == ["A note about Grace Hopper"]
    orders = client.get(f"/api/v1/customers/{grace}/orders", headers=ana).get_json()
    assert orders["total"] == 1 and orders["orders"][0]["customer_id"] == grace
    assert client.get(f"/api/v1/customers/{grace}/value", headers=ana).get_json()["customer_id"] == grace
    assert [c["name"] for c in client.get("/api/v1/customers", query_string={"phone": GRACE}, headers=ana)
            .get_json()["customers"]] == ["Grace Hopper"]  # looking the caller up is searching, allowed now
    assert_refused(client, ana, ada)
    assert_refused(client, ana, 999)  # an id that does not exist is refused alike: ids are not confirmed
    assert_refused(client, ben, grace)  # another agent, with nothing in hand

    change_presence(app.extensions["switchboard"], _agent_id(app, "ana"), "offline")  # the offer is withdrawn
    assert_refused(client, ana, grace)


def test_supervisors_and_admins_read_every_customer_and_a_missing_one_is_a_404(app):
    client = app.test_client()
    for login in ("sue", "al"):
        headers = bearer(client, login)
        for customer_id in app.customers.values():
            assert statuses(client, headers, customer_id) == [200, 200, 200, 200], login
        for path in READS:
            missing = client.get(path.format(id=999), headers=headers)
            assert missing.status_code == 404 and missing.get_json()["message"] == "no customer 999", path
        assert client.get("/api/v1/customers", query_string={"phone": ADA}, headers=headers).status_code == 200


def test_a_session_cookie_follows_the_same_rule_as_a_bearer_token(app):
    client = app.test_client()
    page = client.get("/login").data.decode()
    csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    assert client.post("/login", data={"login": "ana", "password": PASSWORD, "csrf_token": csrf}).status_code == 302
    assert statuses(client, {}, app.customers["grace"]) == [403, 403, 403, 403]
    offer_call(app, "ana", GRACE)
    assert statuses(client, {}, app.customers["grace"]) == [200, 200, 200, 200]
    assert statuses(client, {}, app.customers["ada"]) == [403, 403, 403, 403]


def test_an_agent_previewing_a_campaign_lead_reads_that_leads_customer_only(app):
    services = app.extensions["switchboard"]
    services.clock = lambda: datetime(2026, 3, 3, 16, 0, tzinfo=UTC)  # a Tuesday, 11:00 in New York
    ana_id = _agent_id(app, "ana")
    with transaction(services.sessions) as session:
        campaign = Campaign(name="Solar", caller_id="+14155550199", mode="preview", status="running",
                            requires_registry=False, schedule=ALL_WEEK, abandon_message="Solar")
        session.add(campaign)
        session.flush()
        session.add(CampaignAgent(campaign_id=campaign.id, agent_id=ana_id))
        session.add(Lead(campaign_id=campaign.id, phone=ADA, customer_id=app.customers["ada"], first_name="Ada"))
        campaign_id = campaign.id
    client = app.test_client()
    ana = bearer(client, "ana")
    assert_refused(client, ana, app.customers["ada"])
    change_presence(services, ana_id, "available")
    assert preview.step(services, campaign_id) == {ana_id}  # the dialer hands ana the lead to preview
    with transaction(services.sessions) as session:
        lead = session.scalar(select(Lead))
        assert (lead.status, lead.preview_agent_id) == ("preview", ana_id)
    assert statuses(client, ana, app.customers["ada"]) == [200, 200, 200, 200]
    assert_refused(client, ana, app.customers["grace"])
    preview.skip(services, ana_id, lead.id)  # skipped: the lead, and its customer, are no longer hers
    assert_refused(client, ana, app.customers["ada"])


def test_an_agent_records_an_order_only_for_the_customer_of_the_work_in_hand_and_a_refusal_stores_nothing(app):
    services = app.extensions["switchboard"]
    client = app.test_client()
    grace, ada = app.customers["grace"], app.customers["ada"]
    ana, ben = bearer(client, "ana"), bearer(client, "ben")

    def post(customer_id: int, headers, order_id: str):
        return client.post(f"/api/v1/customers/{customer_id}/orders", json={"amount": "5.00", "order_id": order_id},
                           headers=headers)

    def stored() -> tuple[list[tuple[int, str | None]], int]:
        with transaction(services.sessions) as session:
            orders = session.execute(select(Order.customer_id, Order.external_id).where(Order.source == "api")
                                     .order_by(Order.id)).all()
        return [tuple(o) for o in orders], len(services.jobs.queue.get_job_ids())

    for customer_id in (grace, ada, 999):  # no work in hand: nobody's order, and no id is confirmed
        refused = post(customer_id, ana, "W-0")
        assert refused.status_code == 403 and refused.get_json() == {"error": "Forbidden", "message": ORDER_REFUSAL}
    assert stored() == ([], 0)  # no order, and no recompute asked for

    offer_call(app, "ana", GRACE)
    assert post(grace, ana, "W-1").status_code == 201
    assert post(ada, ana, "W-2").status_code == 403
    assert post(grace, ben, "W-3").status_code == 403  # another agent, with nothing in hand
    for login, order_id in (("sue", "W-4"), ("al", "W-5")):  # supervisors and admins: anyone's
        assert post(ada, bearer(client, login), order_id).status_code == 201, login
    assert post(999, bearer(client, "sue"), "W-6").get_json() == {"error": "Refused", "message": "no customer 999"}
    assert stored() == ([(grace, "W-1"), (ada, "W-4"), (ada, "W-5")], 3)

    change_presence(services, _agent_id(app, "ana"), "offline")  # the offer is withdrawn: so is the right
    assert post(grace, ana, "W-7").status_code == 403
    assert stored()[0] == [(grace, "W-1"), (ada, "W-4"), (ada, "W-5")]


# ---------------------------------------------------------------- the real stack


@pytest.fixture
def stack(stack):
    """The running hub of tests/conftest.py, with Ada on file too."""
    with transaction(stack.sessions) as session:
        session.add(Customer(name="Ada Lovelace", phones=[CustomerPhone(number=ADA)]))
    return stack


def test_on_the_real_stack_an_agent_reads_their_callers_data_through_wrap_up_and_not_after(stack):
    base = stack.url()

    def token(login: str) -> dict[str, str]:
        response = requests.post(f"{base}/api/v1/auth/token", json={"login": login, "password": PASSWORD}, timeout=10)
        return {"Authorization": "Bearer " + response.json()["token"]}

    def codes(headers, customer_id: int) -> list[int]:
        return [requests.get(base + path.format(id=customer_id), headers=headers, timeout=10).status_code
                for path in READS]

    with transaction(stack.sessions) as session:
        ids = dict(session.execute(select(Customer.name, Customer.id)).all())
    grace, ada = ids["Grace Hopper"], ids["Ada Lovelace"]
    console = stack.agent("ana")
    ana, sue = token("ana"), token("sue")  # after the console's login: an agent holds one token at a time
    assert console.call("set_presence", {"presence": "available"}) == {"ok": True}
    sid = stack.sim.place_inbound_call(GRACE, QUEUE_NUMBER, talk_seconds=3, patience_seconds=60)
    offered = console.wait_for(lambda s: s["offer"] and s["offer"]["call_sid"] == sid, what="the offer")
    assert offered["offer"]["customer"]["id"] == grace  # the console's screen pop is unchanged
    assert codes(ana, grace) == [200, 200, 200, 200] and codes(ana, ada) == [403, 403, 403, 403]

    assert console.call("accept", {"call_sid": sid}) == {"ok": True}
    talking = console.wait_for(lambda s: s["call"] and s["call"]["connected_at"], what="the connected call")
    assert talking["call"]["customer"]["name"] == "Grace Hopper"
    assert codes(ana, grace) == [200, 200, 200, 200] and codes(ana, ada) == [403, 403, 403, 403]

    console.wait_for(lambda s: s["agent"]["work"] == "wrap_up", what="wrap-up")
    assert codes(ana, grace) == [200, 200, 200, 200] and codes(ana, ada) == [403, 403, 403, 403]
    assert console.call("wrap_up", {"call_sid": sid, "disposition": "resolved", "note": "Sorted"}) == {"ok": True}
    console.wait_for(lambda s: s["agent"]["work"] == "idle" and s["call"] is None, what="idle after wrap-up")
    assert codes(ana, grace) == [403, 403, 403, 403]  # the work is done: so is the access
    assert codes(sue, grace) == [200, 200, 200, 200] and codes(sue, ada) == [200, 200, 200, 200]
    timeline = requests.get(f"{base}/api/v1/customers/{grace}/timeline", headers=sue, timeout=10).json()["entries"]
    assert "disposition" in {e["kind"] for e in timeline if e["call_sid"] == sid}
