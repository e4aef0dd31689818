"""The REST API and the pages' login: sessions, bearer tokens, roles, and clear JSON errors."""
from __future__ import annotations

import re

import pytest

from hub.admin import add_agent, add_queue
from hub.app import create_app
from hub.customers import add_entry
from hub.columns import utcnow
from hub.db import transaction
from hub.models import Customer, CustomerPhone
from tests.conftest import make_settings
from tests.offers import offer_call


@pytest.fixture
def app(sqlite_url, redis_client):
    app = create_app(make_settings(sqlite_url))
    with transaction(app.extensions["switchboard"].sessions) as session:
        add_queue(session, "Support", "+14155550100", {"support": 1})
        add_agent(session, "ana", "Ana Agent", "password1", "agent", {"support": 1})
        add_agent(session, "sue", "Sue Supervisor", "password2", "supervisor")
        customer = Customer(name="Grace Hopper", value_tier="gold", phones=[CustomerPhone(number="+12125550001")])
        session.add(customer)
        session.flush()
        add_entry(session, customer.id, "note", "Prefers mornings", utcnow())
    yield app
    app.extensions["switchboard"].close()


def token_for(client, login: str, password: str) -> str:
    response = client.post("/api/v1/auth/token", json={"login": login, "password": password})
    assert response.status_code == 200
    return response.get_json()["token"]


def test_the_api_refuses_anonymous_requests_with_json_401(app):
    response = app.test_client().get("/api/v1/customers?phone=2125550001")
    assert response.status_code == 401 and response.get_json()["error"] == "Unauthorized"


def test_a_wrong_password_gets_no_token(app):
    response = app.test_client().post("/api/v1/auth/token", json={"login": "ana", "password": "nope"})
    assert response.status_code == 401


def test_an_agent_finds_a_customer_by_number_in_any_format_and_reads_the_timeline(app):
    client = app.test_client()
    auth = {"Authorization": "Bearer " + token_for(client, "ana", "password1")}
    offer_call(app, "ana", "+12125550001")  # an agent looks customers up for the call in hand
    found = client.get("/api/v1/customers?phone=(212) 555-0001", headers=auth).get_json()["customers"]
    assert [c["name"] for c in found] == ["Grace Hopper"] and found[0]["tier"] == "gold"
    entries = client.get(f"/api/v1/customers/{found[0]['id']}/timeline", headers=auth).get_json()["entries"]
    assert [e["summary"] for e in entries] == ["Prefers mornings"]
    assert client.get("/api/v1/customers?phone=+19175550000", headers=auth).get_json() == {"customers": []}


def test_a_malformed_number_is_a_clear_400(app):
    client = app.test_client()
    auth = {"Authorization": "Bearer " + token_for(client, "ana", "password1")}
    response = client.get("/api/v1/customers?phone=12", headers=auth)
    assert response.status_code == 400 and "phone" in response.get_json()["message"]


def test_agents_list_is_for_supervisors_only(app):
    client = app.test_client()
    agent = {"Authorization": "Bearer " + token_for(client, "ana", "password1")}
    supervisor = {"Authorization": "Bearer " + token_for(client, "sue", "password2")}
    assert client.get("/api/v1/agents", headers=agent).status_code == 403
    agents = client.get("/api/v1/agents", headers=supervisor).get_json()["agents"]
    assert {a["login"]: a["presence"] for a in agents} == {"ana": "offline", "sue": "offline"}
    queues = client.get("/api/v1/queues", headers=agent).get_json()["queues"]
    assert queues[0]["name"] == "Support" and queues[0]["waiting"] == 0


def test_the_openapi_document_lists_every_route_of_the_api(app):
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    documented = set(doc["paths"])
    routes = {re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", r.rule[len("/api/v1"):])
              for r in app.url_map.iter_rules() if r.rule.startswith("/api/v1/") and r.rule != "/api/v1/openapi.json"}
    assert routes == documented


def test_pages_need_a_login_and_the_right_role(app):
    client = app.test_client()
    assert client.get("/agent").status_code == 302
    page = client.get("/login")
    csrf = re.search(rb'name="csrf_token" value="([^"]+)"', page.data).group(1).decode()
    assert client.post("/login", data={"login": "ana", "password": "password1"}).status_code == 400  # no CSRF
    assert client.post("/login", data={"login": "ana", "password": "bad", "csrf_token": csrf}).status_code == 401
    assert client.post("/login", data={"login": "ana", "password": "password1", "csrf_token": csrf}).status_code == 302
    assert client.get("/agent").status_code == 200
    assert client.get("/supervisor").status_code == 403


def test_the_session_cookie_is_http_only_and_same_site(app):
    client = app.test_client()
    client.get("/login")
    cookie = client.get_cookie("session")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"
