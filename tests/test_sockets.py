"""Socket.IO namespaces refuse anyone without a login and the right role, and answer bad requests clearly."""
from __future__ import annotations

import pytest
import requests
import socketio

from hub.db import transaction
from tests.stack import PASSWORD, Stack


def connect(url: str, namespace: str, auth=None) -> socketio.Client:
    client = socketio.Client(reconnection=False)
    client.connect(url, namespaces=[namespace], auth=auth, transports=["websocket"], wait_timeout=5)
    return client


def token(stack, login: str) -> str:
    return requests.post(f"{stack.url()}/api/v1/auth/token", json={"login": login, "password": PASSWORD},
                         timeout=10).json()["token"]


@pytest.mark.parametrize("namespace", ["/agent", "/supervisor"])
def test_a_socket_without_a_login_is_refused(stack, namespace):
    for auth in (None, {"token": "forged-token"}):
        with pytest.raises(socketio.exceptions.ConnectionError):
            connect(stack.url(), namespace, auth)


def test_an_agent_cannot_open_the_wallboard_but_a_supervisor_can(stack):
    with pytest.raises(socketio.exceptions.ConnectionError):
        connect(stack.url(), "/supervisor", {"token": token(stack, "ana")})
    boards = []
    client = socketio.Client(reconnection=False)
    client.on("board", boards.append, namespace="/supervisor")
    client.connect(stack.url(), namespaces=["/supervisor"], auth={"token": token(stack, "sue")},
                   transports=["websocket"], wait_timeout=5)
    try:
        assert client.call("refresh", {}, namespace="/supervisor", timeout=10) == {"ok": True}
        assert boards and {a["login"] for a in boards[-1]["agents"]} == {"ana", "sue"}
    finally:
        client.disconnect()


def test_bad_console_requests_get_a_message_a_person_can_act_on(stack):
    ana = stack.agent("ana")
    assert "unknown presence" in ana.call("set_presence", {"presence": "asleep"})["error"]
    assert "needs a reason" in ana.call("set_presence", {"presence": "break"})["error"]
    assert "not offered" in ana.call("accept", {"call_sid": "CA" + "0" * 32})["error"]
    assert "not on that call" in ana.call("hang_up", {"call_sid": "CA" + "0" * 32})["error"]
    assert "choose a disposition" in ana.call("wrap_up", {"call_sid": "CA1", "disposition": "meh"})["error"]
    assert ana.call("wrap_up", "not even a dict")["ok"] is False
    assert ana.call("set_presence", {"presence": "break", "reason": "lunch"}) == {"ok": True}
    state = ana.wait_for(lambda s: s["agent"]["presence"] == "break", what="the break")
    assert state["agent"]["break_reason"] == "lunch"


def test_an_agent_whose_console_closes_is_logged_off_after_the_grace_period_and_loses_the_offer(
        processes, sqlite_url, redis_client):
    from tests.stack import QUEUE_NUMBER

    stack = Stack(processes, sqlite_url, console_grace_s=1)
    try:
        stack.seed([("ana", {"support": 1}), ("ben", {"support": 1})])
        stack.start()
        ana, ben = stack.agent("ana"), stack.agent("ben")
        assert ana.call("set_presence", {"presence": "available"})["ok"]
        assert ana.call("heartbeat") == {"ok": True}
        sid = stack.sim.place_inbound_call("+12125550001", QUEUE_NUMBER, talk_seconds=1, patience_seconds=60)
        ana.wait_for(lambda s: s["offer"] and s["offer"]["call_sid"] == sid, what="the offer")
        ana.close()  # the laptop lid shuts
        from tests.conftest import wait_until
        from hub.models import Agent

        def presence_of(login):
            with transaction(stack.sessions) as session:
                return session.query(Agent).filter_by(login=login).one().presence

        wait_until(lambda: presence_of("ana") == "offline", seconds=15, message="ana logged off")
        assert ben.call("set_presence", {"presence": "available"})["ok"]
        ben.wait_for(lambda s: s["offer"] and s["offer"]["call_sid"] == sid, what="the offer moving to ben")
        # a console that reconnects within the grace period keeps its agent
        assert ben.call("set_presence", {"presence": "offline"})["ok"]
        ben.close()
        ben_again = stack.agent("ben")
        assert ben_again.call("set_presence", {"presence": "available"})["ok"]
        import time

        time.sleep(3)
        assert presence_of("ben") == "available"
    finally:
        stack.stop()


def test_an_agent_who_logs_out_goes_offline_and_their_consoles_close_on_every_web_process(
        processes, sqlite_url, redis_client):
    import re

    from hub.models import Agent
    from tests.conftest import wait_until

    stack = Stack(processes, sqlite_url, web_count=2)
    try:
        stack.seed([("ana", {"support": 1})])
        stack.start()
        consoles = [stack.agent("ana", index=0), stack.agent("ana", index=1)]  # two tabs, two web processes
        assert consoles[1].call("set_presence", {"presence": "available"}) == {"ok": True}
        browser = requests.Session()  # the page's session cookie, on the first web process
        login_page = browser.get(f"{stack.url(0)}/login", timeout=10).text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', login_page).group(1)
        browser.post(f"{stack.url(0)}/login", data={"login": "ana", "password": PASSWORD, "csrf_token": csrf},
                     timeout=10)
        page = browser.get(f"{stack.url(0)}/agent", timeout=10).text
        csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)
        assert browser.post(f"{stack.url(0)}/logout", data={"csrf_token": csrf}, timeout=10).url.endswith("/login")
        wait_until(lambda: not any(c.sio.connected for c in consoles), seconds=10, message="both consoles closed")
        with transaction(stack.sessions) as session:
            assert session.query(Agent).filter_by(login="ana").one().presence == "offline"
        assert browser.get(f"{stack.url(0)}/agent", timeout=10, allow_redirects=False).status_code == 302
    finally:
        stack.stop()


def test_the_socketio_browser_client_is_served_by_the_hub(stack):
    response = requests.get(f"{stack.url()}/assets/socket.io.min.js", timeout=10)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/javascript")
    assert "Socket.IO v4" in response.text[:200]
