"""The console's last pieces on the real stack (web and worker processes, Redis, the carrier simulator):
demotion and deactivation close open sockets, and every socket event re-checks the role."""
from __future__ import annotations

import subprocess
import sys

import pytest
import requests
import socketio
from sqlalchemy import select

from hub.admin import add_agent
from hub.db import transaction
from hub.models import Agent
from tests.conftest import ROOT, settings_env, wait_until
from tests.stack import PASSWORD, Stack


@pytest.fixture
def stack(processes, sqlite_url, redis_client):
    stack = Stack(processes, sqlite_url, console_grace_s=1)
    yield stack
    stack.stop()


def _token(stack, login: str) -> str:
    return requests.post(f"{stack.url()}/api/v1/auth/token", json={"login": login, "password": PASSWORD},
                         timeout=10).json()["token"]


def _socket(stack, namespace: str, login: str) -> socketio.Client:
    client = socketio.Client(reconnection=False)
    client.connect(stack.url(), namespaces=[namespace], auth={"token": _token(stack, login)},
                   transports=["websocket"], wait_timeout=10)
    return client


def _hub(stack, *args: str) -> str:
    """Run `python -m hub ARGS` as an admin would, against the stack's database and Redis."""
    done = subprocess.run([sys.executable, "-m", "hub", *args], env=settings_env(stack.settings), cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _role(stack, login: str) -> str:
    with transaction(stack.sessions) as session:
        return session.scalar(select(Agent.role).where(Agent.login == login))


def _presence(stack, login: str) -> str:
    with transaction(stack.sessions) as session:
        return session.scalar(select(Agent.presence).where(Agent.login == login))


def _seed_people(stack) -> None:
    stack.seed([("ana", {"support": 1})])
    with transaction(stack.sessions) as session:
        add_agent(session, "sue", "Sue", PASSWORD, "supervisor")
    stack.start()


def test_demoting_a_supervisor_closes_their_wallboard_but_keeps_their_console(stack):
    _seed_people(stack)
    wallboard = _socket(stack, "/supervisor", "sue")
    console = stack.agent("sue")
    assert wallboard.call("refresh", {}, namespace="/supervisor", timeout=10) == {"ok": True}

    out = _hub(stack, "agents", "set-role", "sue", "agent")

    assert "1 open socket(s) closed" in out
    wait_until(lambda: not wallboard.connected, seconds=10, message="the wallboard socket to close")
    assert console.sio.connected and console.call("refresh") == {"ok": True}
    assert _role(stack, "sue") == "agent"
    with pytest.raises(socketio.exceptions.ConnectionError):  # and the wallboard cannot come back
        _socket(stack, "/supervisor", "sue")


def test_deactivating_an_agent_closes_their_console_and_their_token_stops_working(stack):
    _seed_people(stack)
    console = stack.agent("ana")
    assert console.call("set_presence", {"presence": "available"}) == {"ok": True}
    token = _token(stack, "ana")

    out = _hub(stack, "agents", "deactivate", "ana")

    assert "1 open socket(s) closed" in out
    wait_until(lambda: not console.sio.connected, seconds=10, message="the console socket to close")
    login = requests.post(f"{stack.url()}/api/v1/auth/token", json={"login": "ana", "password": PASSWORD},
                          timeout=10)
    assert login.status_code == 401
    with pytest.raises(socketio.exceptions.ConnectionError):
        socketio.Client(reconnection=False).connect(stack.url(), namespaces=["/agent"], auth={"token": token},
                                                    transports=["websocket"], wait_timeout=10)
    wait_until(lambda: _presence(stack, "ana") == "offline", seconds=20, message="ana logged off")


def test_a_socket_event_after_a_role_change_is_refused_even_if_the_cut_was_lost(stack):
    _seed_people(stack)
    wallboard = _socket(stack, "/supervisor", "sue")
    assert wallboard.call("refresh", {}, namespace="/supervisor", timeout=10) == {"ok": True}
    with transaction(stack.sessions) as session:  # the role changes behind the hub's back: no cut is sent
        session.scalar(select(Agent).where(Agent.login == "sue")).role = "agent"

    answer = wallboard.call("refresh", {}, namespace="/supervisor", timeout=10)

    assert answer == {"ok": False, "error": "your access has changed: log in again"}
    wait_until(lambda: not wallboard.connected, seconds=10, message="the wallboard socket to close")


def test_an_unknown_login_or_role_is_refused_by_the_cli(stack):
    _seed_people(stack)
    done = subprocess.run([sys.executable, "-m", "hub", "agents", "set-role", "nobody", "agent"],
                          env=settings_env(stack.settings), cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "no agent has the login 'nobody'" in done.stderr
    assert _role(stack, "sue") == "supervisor"
