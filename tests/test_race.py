"""Races across processes: bursts of calls and status callbacks (20% duplicates, shuffled within each call)
through the real webhooks of several web processes, with agents accepting offers over Socket.IO at the same
time. Then the database must show no double assignment, no agent over capacity, no call lost or left
non-final, and no final state overwritten by an earlier event."""
from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from email.utils import format_datetime

import pytest
import requests
from sqlalchemy import func, select, text

from hub.columns import utcnow
from hub.db import transaction
from hub.models import Agent, Call, CallEvent
from tests.conftest import ACCOUNT_SID, _truncate_postgres, new_sid, sign, wait_until
from tests.stack import QUEUE_NUMBER, Stack

AGENTS = [f"agent{n}" for n in range(6)]


class AutoAgent:
    """An agent who accepts every offer and wraps up at once, from a thread of its own."""

    def __init__(self, client) -> None:
        self.client = client
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        import queue

        while not self.stop.is_set():
            try:
                state = self.client.states.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                if state["offer"]:
                    self.client.call("accept", {"call_sid": state["offer"]["call_sid"]})
                elif state["agent"]["work"] == "wrap_up" and state["call"]:
                    self.client.call("wrap_up", {"call_sid": state["call"]["call_sid"], "disposition": "resolved"})
            except Exception:  # noqa: BLE001 - a refused or timed-out action is part of the race
                pass


def burst(stack: Stack, calls: int, seed: int) -> list[str]:
    """Post every call's webhooks, spread over the web processes, many calls at once."""
    rng = random.Random(seed)
    sids = [new_sid() for _ in range(calls)]
    public = stack.settings.public_url
    failures: list[str] = []

    def post(path: str, params: dict[str, str]) -> None:
        target = rng.choice(range(len(stack.ports)))
        response = requests.post(stack.url(target) + path, data=params,
                                 headers={"X-Twilio-Signature": sign(public + path, params)}, timeout=30)
        if response.status_code != 200:
            failures.append(f"{path} {response.status_code}")

    def one_call(sid: str) -> None:
        base = {"CallSid": sid, "AccountSid": ACCOUNT_SID, "From": "+12125550001", "To": QUEUE_NUMBER,
                "Direction": "inbound", "ApiVersion": "2010-04-01"}
        post("/webhooks/voice/incoming", dict(base, CallStatus="ringing"))
        callbacks = []
        for seq, status in enumerate(["ringing", "in-progress", "completed"]):
            params = dict(base, CallStatus=status, SequenceNumber=str(seq), CallbackSource="call-progress-events",
                          Timestamp=format_datetime(utcnow(), usegmt=True))
            if status == "completed":
                params.update(CallDuration=str(rng.randint(1, 30)))
            callbacks.append(params)
            if rng.random() < 0.2:
                callbacks.append(dict(params))  # a duplicate delivery
        local = random.Random(sid)
        local.shuffle(callbacks)
        for params in callbacks:
            threading.Event().wait(local.uniform(0, 2.5))  # long enough for some offers to time out
            post("/webhooks/voice/status", params)

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(one_call, sids))
    assert failures == [], failures[:10]
    return sids


def check_database(stack: Stack, sids: list[str]) -> None:
    with transaction(stack.sessions) as session:
        calls = {c.sid: c for c in session.scalars(select(Call).where(Call.sid.in_(sids)))}
        # no call lost, none left non-final, no final state overwritten by an earlier callback
        assert set(calls) == set(sids)
        assert {c.status for c in calls.values()} == {"completed"}
        assert {c.routing_state for c in calls.values()} == {"ended"}
        per_key = session.execute(
            select(CallEvent.source_sid, CallEvent.sequence_number, func.count())
            .where(CallEvent.source_sid.in_(sids), CallEvent.kind == "status")
            .group_by(CallEvent.source_sid, CallEvent.sequence_number)).all()
        assert len(per_key) == 3 * len(sids) and {n for *_, n in per_key} == {1}
        # no agent over capacity: the calls each agent talked on never overlap in time
        talked: dict[int, list[Call]] = {}
        for call in calls.values():
            if call.connected_at is not None:
                talked.setdefault(call.agent_id, []).append(call)
        for agent_calls in talked.values():
            agent_calls.sort(key=lambda c: c.connected_at)
            for first, second in zip(agent_calls, agent_calls[1:]):
                assert first.ended_at <= second.connected_at, f"agent {first.agent_id} held two calls at once"
        # no double assignment left behind: every agent holds at most one call, and only a live one
        held = [a.call_sid for a in session.scalars(select(Agent)) if a.call_sid and a.work != "wrap_up"]
        assert len(held) == len(set(held)) and not set(held) & set(sids)


def run_race(stack: Stack, calls: int, seed: int) -> None:
    stack.seed([(login, {"support": 1}) for login in AGENTS], offer_timeout_s=3, wrap_up_s=2)
    robots = []
    for n, login in enumerate(AGENTS):
        client = stack.agent(login, index=n % len(stack.ports))
        assert client.call("set_presence", {"presence": "available"})["ok"]
        if n % 3 != 2:  # a third of the agents never answer: their offers time out on the workers
            robots.append(AutoAgent(client))
    sids = burst(stack, calls, seed)
    wait_until(lambda: all(c.routing_state == "ended" for c in map(stack.call_row, sids)), seconds=60,
               message="every call to end")
    for robot in robots:
        robot.stop.set()
    check_database(stack, sids)


@pytest.mark.timeout(600)
def test_no_double_assignment_and_no_lost_call_with_four_web_processes_on_postgres(
        processes, postgres_database, redis_client):
    _truncate_postgres(postgres_database)
    stack = Stack(processes, postgres_database, web_count=4)
    try:
        stack.start(workers=2)
        run_race(stack, calls=60, seed=11)
    finally:
        stack.stop()


@pytest.mark.timeout(600)
def test_no_double_assignment_and_no_lost_call_with_three_web_processes_on_sqlite(
        processes, sqlite_url, redis_client):
    stack = Stack(processes, sqlite_url, web_count=3)
    try:
        stack.start(workers=2)
        run_race(stack, calls=40, seed=12)
    finally:
        stack.stop()


def test_the_routing_lock_is_asked_for_once_per_transaction_and_again_in_the_next(postgres_database):
    from sqlalchemy import event

    from hub.db import lock_routing, make_engine, make_session_factory

    engine = make_engine(postgres_database)
    sessions = make_session_factory(engine, check_routing_cache=True)
    asked = []
    event.listen(engine, "before_cursor_execute",
                 lambda *args: asked.append(1) if "routing_lock" in args[2] else None)
    try:
        session = sessions()
        lock_routing(session)
        lock_routing(session)  # a flow that locks, then decides (which locks too)
        assert len(asked) == 1
        session.commit()
        lock_routing(session)  # a new transaction: the lock went with the commit, so ask again...
        assert len(asked) == 2
        with sessions() as other:  # ...and it is really held: another transaction cannot take it
            other.execute(text("SET LOCAL lock_timeout = '200ms'"))
            with pytest.raises(Exception, match="lock timeout"):
                lock_routing(other)
        session.rollback()
        session.close()
    finally:
        engine.dispose()
