"""The routing state kept between rounds (hub.routing_cache): reused only while the database's triggers say
nothing it holds has changed, on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest
from sqlalchemy import insert, select, text, update

from hub.admin import add_agent, add_queue
from hub.agent_flows import change_presence
from hub.app import create_app
from hub.db import transaction
from hub.models import Agent, AgentSkill, Call, Queue, RoutingLock
from hub.routing_cache import CACHE, RoutingCacheMismatch, routing_version
from hub.routing_store import decide_and_store_many
from routing import engine
from routing.states import Presence
from tests.conftest import make_settings, new_sid
from tests.test_webhooks import QUEUE_NUMBER, post, voice_params


@pytest.fixture
def hub(database_url, redis_client):
    app = create_app(make_settings(database_url))
    services = app.extensions["switchboard"]
    with transaction(services.sessions) as session:
        add_queue(session, "Support", QUEUE_NUMBER, {"support": 1})
        ids = [add_agent(session, login, login.title(), "password1", skills={"support": 1}).id
               for login in ("ana", "sue")]
    for agent_id in ids:
        change_presence(services, agent_id, "available")
    yield app
    services.close()


def _cache(app):
    return app.extensions["switchboard"].sessions.kw["info"][CACHE]


def _round(app) -> None:
    """A routing round with nothing to decide: it starts from the kept state or loads it."""
    services = app.extensions["switchboard"]
    with transaction(services.sessions) as session:
        decide_and_store_many(session, [], services.clock(), services.routing_config)


def _waiting(app) -> list[str]:
    with transaction(app.extensions["switchboard"].sessions) as session:
        return sorted(session.scalars(select(Call.sid).where(Call.routing_state == "waiting")))


def test_the_next_round_starts_from_the_state_the_last_one_wrote(hub):
    cache = _cache(hub)
    calls = [new_sid() for _ in range(3)]
    for sid in calls:  # each is routed by the deferred router: offered to ana, to sue, then waits
        post(hub, "/webhooks/voice/incoming", voice_params(sid))
    hits, misses = cache.hits, cache.misses
    _round(hub)
    _round(hub)
    assert (cache.hits - hits, cache.misses - misses) == (2, 0)
    assert _waiting(hub) == [calls[2]]
    post(hub, "/webhooks/voice/status", voice_params(calls[2], status="completed"))
    assert _waiting(hub) == [], "the hang-up was routed from the kept state and stored"
    assert cache.misses == misses, "nothing but routing wrote: no load was needed"


@pytest.mark.parametrize("change", [
    "presence", "skill", "queue rules", "call connected", "round robin",
])
def test_any_change_routing_reads_makes_the_next_round_load(hub, change):
    cache = _cache(hub)
    post(hub, "/webhooks/voice/incoming", voice_params(new_sid()))
    _round(hub)
    services = hub.extensions["switchboard"]
    with transaction(services.sessions) as session:  # another process, an admin or a repair writes
        before = routing_version(session)
        agent_id = session.scalar(select(Agent.id).where(Agent.login == "sue"))
        if change == "presence":
            session.execute(update(Agent).where(Agent.id == agent_id).values(presence="offline"))
        elif change == "skill":
            session.execute(insert(AgentSkill).values(agent_id=agent_id, skill="billing", level=2))
        elif change == "queue rules":
            session.execute(update(Queue).values(wrap_up_s=5))
        elif change == "call connected":
            session.execute(update(Call).values(connected_at=services.clock(), agent_id=agent_id))
        else:
            session.execute(update(Queue).values(last_agent_id=agent_id))
    with transaction(services.sessions) as session:
        assert routing_version(session) > before
    misses = cache.misses
    _round(hub)  # with check_routing_cache on, a stale reuse would raise here
    assert cache.misses == misses + 1


def test_writes_routing_does_not_read_leave_the_kept_state_in_use(hub):
    cache = _cache(hub)
    sid = new_sid()
    post(hub, "/webhooks/voice/incoming", voice_params(sid))
    _round(hub)
    services = hub.extensions["switchboard"]
    with transaction(services.sessions) as session:
        before = routing_version(session)
        session.execute(update(Call).where(Call.sid == sid).values(status="in-progress", conference_sid="CF" + "0" * 32))
        session.execute(update(Agent).values(name="Renamed"))
        session.add(Call(sid=new_sid(), direction="inbound", from_number="+12125550009", to_number=QUEUE_NUMBER,
                         status="ringing", routing_state="arriving"))  # an incoming call not yet routed
    with transaction(services.sessions) as session:
        assert routing_version(session) == before
    hits = cache.hits
    _round(hub)
    assert cache.hits == hits + 1


def test_a_rolled_back_round_is_not_kept(hub):
    cache = _cache(hub)
    post(hub, "/webhooks/voice/incoming", voice_params(new_sid()))
    _round(hub)
    services = hub.extensions["switchboard"]
    with pytest.raises(RuntimeError):
        with transaction(services.sessions) as session:
            decide_and_store_many(session, [engine.PresenceChanged(
                session.scalar(select(Agent.id).where(Agent.login == "sue")), Presence.OFFLINE)],
                services.clock(), services.routing_config)
            raise RuntimeError("the flow failed after its decision")
    misses = cache.misses
    _round(hub)  # the kept state is the one before the rolled-back round; the database agrees
    assert cache.misses == misses
    with transaction(services.sessions) as session:
        assert session.scalar(select(Agent.presence).where(Agent.login == "sue")) == "available"


def test_the_check_catches_a_write_the_triggers_missed(hub):
    services = hub.extensions["switchboard"]
    post(hub, "/webhooks/voice/incoming", voice_params(new_sid()))
    _round(hub)
    with transaction(services.sessions) as session:  # a change made behind the triggers' back
        version = routing_version(session)
        session.execute(update(Agent).where(Agent.login == "sue").values(presence="offline"))
        session.execute(update(RoutingLock).values(version=version))
    with pytest.raises(RoutingCacheMismatch, match="agents"):
        _round(hub)


def test_truncating_a_table_routing_reads_counts_as_a_change(postgres_database, redis_client):
    """PostgreSQL only: SQLite has no TRUNCATE, and PostgreSQL's fires no row triggers."""
    app = create_app(make_settings(postgres_database))
    services = app.extensions["switchboard"]
    try:
        with transaction(services.sessions) as session:
            before = routing_version(session)
            session.execute(text("TRUNCATE agent_skills"))
        with transaction(services.sessions) as session:
            assert routing_version(session) > before
    finally:
        services.close()
