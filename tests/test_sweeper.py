"""The sweeper repairs stuck states against the database and the carrier (the simulator, over REST)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from hub.admin import add_agent, add_queue
from hub.columns import utcnow
from hub.db import transaction
from hub.models import Agent, Call
from hub.services import build_services
from hub.sweeper import sweep
from simulator.carrier import CarrierConfig
from simulator.server import SimulatorServer
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, make_settings, new_sid


@pytest.fixture
def services(database_url, redis_client):
    sim = SimulatorServer(CarrierConfig(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN,
                                        public_url="http://127.0.0.1:9")).start()
    services = build_services(make_settings(database_url, twilio_api_url=sim.url))
    yield services
    services.close()
    sim.stop()


def call_row(sid: str, state: str, agent_id=None, minutes_ago=0, **extra) -> Call:
    return Call(sid=sid, direction="inbound", from_number="+12125550001", to_number="+14155550100", queue_id=1,
                status="in-progress", routing_state=state, agent_id=agent_id, tried_agent_ids=[],
                created_at=utcnow() - timedelta(minutes=minutes_ago), **extra)


def test_the_sweeper_repairs_stuck_offers_agents_wrap_ups_and_calls_the_carrier_forgot(services):
    now = utcnow()
    with transaction(services.sessions) as s:
        add_queue(s, "Support", "+14155550100", {"support": 1})
        stuck_offer, ghost, wrapping, fine = (
            add_agent(s, login, login, "password1", skills={"support": 1})
            for login in ("offered", "ghost", "wrapping", "fine"))
        for a in (stuck_offer, ghost, wrapping, fine):
            a.presence = "available"
        offer_sid, gone_sid, ended_sid, wrap_sid, live_sid = (new_sid() for _ in range(5))
        s.add(call_row(offer_sid, "offered", stuck_offer.id, offer_expires_at=now - timedelta(seconds=30)))
        stuck_offer.work, stuck_offer.call_sid = "offered", offer_sid
        s.add(call_row(ended_sid, "ended", None))
        ghost.work, ghost.call_sid = "on_call", ended_sid
        s.add(call_row(wrap_sid, "ended", wrapping.id, wrap_up_until=now - timedelta(seconds=30)))
        wrapping.work, wrapping.call_sid = "wrap_up", wrap_sid
        s.add(call_row(gone_sid, "waiting", None, minutes_ago=5))  # the carrier has never heard of it
        s.add(call_row(live_sid, "waiting", None, minutes_ago=0))  # too recent to ask about
    repairs = sweep(services)
    assert len(repairs) == 4, repairs
    with transaction(services.sessions) as s:
        agents = {a.login: a for a in s.scalars(select(Agent))}
        calls = {c.sid: c for c in s.scalars(select(Call))}
    # the stuck agents let go of their old calls (and, free again, may already be offered a waiting one)
    assert agents["ghost"].call_sid != ended_sid and agents["ghost"].work in ("idle", "offered")
    assert agents["wrapping"].call_sid != wrap_sid and agents["wrapping"].work in ("idle", "offered")
    assert calls[gone_sid].routing_state == "ended" and calls[gone_sid].routing_outcome == "repaired"
    # the stuck offer timed out (a missed offer for its agent) and the call was offered anew
    assert calls[offer_sid].routing_state == "offered" and calls[offer_sid].offer_expires_at > now
    assert agents["offered"].missed_offers == 1
    assert calls[live_sid].routing_state in ("offered", "waiting")
    holders = [a.call_sid for a in agents.values() if a.call_sid]
    assert len(holders) == len(set(holders))
    assert sweep(services) == []  # nothing left to repair


def test_the_sweeper_logs_off_agents_whose_consoles_died_without_closing(services):
    from hub.consoles import console_seen

    with transaction(services.sessions) as s:
        add_queue(s, "Support", "+14155550100", {"support": 1})
        dead, alive, api_only = (add_agent(s, login, login, "password1", skills={"support": 1})
                                 for login in ("dead", "alive", "api_only"))
        for a in (dead, alive, api_only):
            a.presence = "available"
        ids = {a.login: a.id for a in (dead, alive, api_only)}
    real_clock = services.clock
    services.clock = lambda: real_clock() - timedelta(minutes=5)  # a heartbeat five minutes ago
    console_seen(services, ids["dead"], "sid-of-a-process-that-died")
    services.clock = real_clock
    console_seen(services, ids["alive"], "sid-alive")
    repairs = sweep(services)
    assert repairs == [f"agent {ids['dead']}'s consoles stopped answering: logged off"]
    with transaction(services.sessions) as s:
        presence = {a.login: a.presence for a in s.scalars(select(Agent))}
    # an agent set available through the API, who never had a console, is left alone
    assert presence == {"dead": "offline", "alive": "available", "api_only": "available"}
