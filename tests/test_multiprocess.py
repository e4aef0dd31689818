"""The production shape: PostgreSQL, two web processes (one under gunicorn, as in the README) sharing pushes
through Redis, and an RQ worker."""
from __future__ import annotations

import pytest
from sqlalchemy import select, text

from hub.db import transaction
from hub.models import Call
from tests.conftest import _truncate_postgres
from tests.stack import QUEUE_NUMBER, Stack


@pytest.fixture
def stack(processes, postgres_database, redis_client):
    _truncate_postgres(postgres_database)
    stack = Stack(processes, postgres_database, web_count=2)
    yield stack
    stack.stop()


def test_pushes_cross_web_processes_and_worker_timers_reach_consoles_on_postgres(stack):
    stack.seed([("ana", {"support": 1}), ("ben", {"support": 1})], offer_timeout_s=2)
    stack.start(workers=1, gunicorn=True)
    ana = stack.agent("ana", index=1)  # connected to the second web process (gunicorn)
    ben = stack.agent("ben", index=0)  # connected to the first, which also receives the webhooks
    assert ana.call("set_presence", {"presence": "available"})["ok"]

    sid = stack.sim.place_inbound_call("+12125550001", QUEUE_NUMBER, talk_seconds=1, patience_seconds=60)
    # the webhook hit web 0; the offer reaches ana's socket on web 1 through the Redis message queue
    ana.wait_for(lambda s: s["offer"] and s["offer"]["call_sid"] == sid, what="the offer on the other process")
    assert ben.call("set_presence", {"presence": "available"})["ok"]
    # nobody answers ana's offer: the worker's timer moves it to ben, on web 0
    ben.wait_for(lambda s: s["offer"] and s["offer"]["call_sid"] == sid, seconds=20, what="the re-offer")
    assert ben.call("accept", {"call_sid": sid}) == {"ok": True}
    call = stack.wait_for_call(sid, lambda c: c.status == "completed", "the call to complete")
    assert call.agent.login == "ben"
    with transaction(stack.sessions) as session:
        legs = session.scalars(select(Call).where(Call.parent_sid == sid)).all()
        assert len(legs) == 1
        index = session.execute(text(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'uq_agents_call_sid'")).scalar_one()
        assert "UNIQUE" in index and "WHERE (call_sid IS NOT NULL)" in index
