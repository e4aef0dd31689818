"""The CRM's jobs on a real RQ worker (`python -m hub worker`), on SQLite and PostgreSQL: a full recompute
asked for through the API runs and is recorded, and an order posted through the API moves its customer's tier
and stage with the reason on the timeline."""
from __future__ import annotations

import random
from datetime import timedelta

import pytest
from rq.job import Job
from rq.serializers import JSONSerializer
from sqlalchemy import select

from crm.models import CustomerValue, ModelRun, Order, TierChange
from hub.admin import add_agent
from hub.app import create_app
from hub.customers import customer_card
from hub.db import transaction
from hub.models import Customer, CustomerPhone, TimelineEntry
from tests.conftest import make_settings, settings_env, wait_until


@pytest.fixture
def hub(database_url, redis_client):
    """The app (for API calls) and one worker process on the same database and queue."""
    app = create_app(make_settings(database_url))
    with transaction(app.extensions["switchboard"].sessions) as session:
        add_agent(session, "ana", "Ana Agent", "password1", "agent")
        add_agent(session, "sue", "Sue Supervisor", "password2", "supervisor")
    yield app
    app.extensions["switchboard"].close()


def bearer(client, login: str, password: str) -> dict[str, str]:
    token = client.post("/api/v1/auth/token", json={"login": login, "password": password}).get_json()["token"]
    return {"Authorization": "Bearer " + token}


def seed_buyers(sessions, now, customers: int = 40, seed: int = 7) -> list[int]:
    """Customers with a spread of purchase histories (a few big, recent buyers) and some who never bought."""
    rng = random.Random(seed)
    ids = []
    with transaction(sessions) as s:
        for i in range(customers):
            customer = Customer(name=f"Customer {i}", phones=[CustomerPhone(number=f"+1312555{i:04d}")])
            s.add(customer)
            s.flush()
            ids.append(customer.id)
            visits = 6 + rng.randint(0, 4) if i < 5 else rng.choice([0, 0, 1, 2, 3])
            mean = 300 if i < 5 else rng.gammavariate(3, 10)  # each customer's own usual spend, in dollars
            for _ in range(visits):
                days_ago = rng.randint(1, 150) if i < 5 else rng.randint(1, 600)
                cents = int(100 * max(1.0, rng.gammavariate(4, mean / 4)))
                s.add(Order(customer_id=customer.id, ordered_at=now - timedelta(days=days_ago, hours=rng.random()),
                            amount_cents=cents, currency="USD", source="import"))
    return ids


def test_a_full_recompute_and_an_orders_recompute_run_on_a_worker(hub, processes):
    services = hub.extensions["switchboard"]
    now = services.clock()
    ids = seed_buyers(services.sessions, now)
    buyers = buyers_of(services)
    processes.start("worker", ["worker"], settings_env(services.settings))
    client = hub.test_client()
    sue = bearer(client, "sue", "password2")

    job_id = client.post("/api/v1/crm/recompute", headers=sue).get_json()["job"]

    def finished_run():
        with transaction(services.sessions) as s:
            return s.scalar(select(ModelRun).where(ModelRun.status == "done"))

    run = wait_until(finished_run, seconds=60, message="the full recompute to finish on the worker")
    assert (run.customers, run.buyers) == (40, len(buyers))
    job = Job.fetch(job_id, connection=services.redis, serializer=JSONSerializer)
    # the worker marks the job finished a moment after the run's commit
    wait_until(lambda: job.get_status(refresh=True) == "finished", seconds=30, message="the job to finish")
    assert job.return_value(refresh=True)["run_id"] == run.id
    with transaction(services.sessions) as s:
        tiers = {c.id: c.value_tier for c in s.scalars(select(Customer))}
        assert "gold" in tiers.values() and len(s.scalars(select(CustomerValue)).all()) == 40
        prospect = next(cid for cid in ids if cid not in buyers)
        gold_min = run.parameters["population"]["gold_min_cents"]
    assert tiers[prospect] == "standard"

    amount = f"{(gold_min + 1_000) / 100:.2f}"
    posted = client.post(f"/api/v1/customers/{prospect}/orders", json={"amount": amount, "order_id": "BIG-1"},
                         headers=sue)
    assert posted.status_code == 201
    order_id = posted.get_json()["id"]

    def moved():
        with transaction(services.sessions) as s:
            customer = s.get(Customer, prospect)
            return (customer.value_tier, customer.lifecycle_stage) == ("gold", "first_time_buyer")

    wait_until(moved, seconds=60, message="the order's recompute to move its customer to gold")
    value = client.get(f"/api/v1/customers/{prospect}/value", headers=sue).get_json()
    assert value["orders"] == 1 and value["revenue_12m"] == float(amount) and value["p_alive"] == 1.0
    assert value["lifetime_value"] > 0  # scored with the full run's models
    event = f"(order {order_id} of {amount} USD)"
    assert value["tier_history"][0]["to"] == "gold" and value["tier_history"][0]["reason"].endswith(event)
    assert value["stage_history"][0]["to"] == "first_time_buyer"
    with transaction(services.sessions) as s:
        change = s.scalar(select(TierChange).where(TierChange.customer_id == prospect))
        assert (change.from_tier, change.to_tier) == ("standard", "gold")
        entries = s.scalars(select(TimelineEntry.summary).where(TimelineEntry.customer_id == prospect,
                                                                TimelineEntry.kind == "tier")).all()
        assert entries == [f"Tier standard -> gold: {amount_words(amount)} over the last 12 months {event}"]
        card = customer_card(s, s.get(Customer, prospect))  # the agent's screen pop
        assert (card["tier"], card["stage"], card["value"]["orders"]) == ("gold", "first_time_buyer", 1)
        assert card["value"]["lifetime_value"] == value["lifetime_value"]


def buyers_of(services) -> set[int]:
    with transaction(services.sessions) as s:
        return set(s.scalars(select(Order.customer_id).distinct()))


def amount_words(amount: str) -> str:
    return f"{float(amount):,.2f} USD"
