"""Simulated agents against a fake Socket.IO hub, and the CLI entry point."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests
import socketio
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

from simulator.bots import BotAccount, BotSwarm
from tests.simulator.conftest import ACCOUNT_SID, AUTH_TOKEN

ROOT = Path(__file__).resolve().parents[2]


class FakeAgentHub:
    """Just enough of the hub's agent protocol: token endpoint and /agent namespace."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict]] = []
        self.sio = socketio.Server(async_mode="threading")
        flask_app = Flask("fake_agent_hub")

        @flask_app.post("/api/v1/auth/token")
        def token():
            body = request.get_json()
            if body.get("password") != "pw":
                return jsonify({"error": "bad credentials"}), 401
            return jsonify({"token": "tok-" + body["login"]})

        @self.sio.on("connect", namespace="/agent")
        def connect(sid, environ, auth):
            if not (auth or {}).get("token", "").startswith("tok-"):
                return False
            return True

        def handler(name):
            def on_event(sid, data):
                self.received.append((name, data))
                if name == "set_presence":
                    self.sio.emit("state", self._state(offer={"call_sid": "CA1", "queue": "support",
                                                              "expires_at": None, "customer": {}}),
                                  to=sid, namespace="/agent")
                    # the same offer again: the bot must not act twice
                    self.sio.emit("state", self._state(offer={"call_sid": "CA1", "queue": "support",
                                                              "expires_at": None, "customer": {}}),
                                  to=sid, namespace="/agent")
                if name == "accept":
                    self.sio.emit("state", self._state(work="wrap_up", call={"call_sid": data["call_sid"]}),
                                  to=sid, namespace="/agent")
                return {"ok": True}
            return on_event

        for name in ("set_presence", "accept", "decline", "hang_up", "wrap_up", "refresh", "heartbeat"):
            self.sio.on(name, handler(name), namespace="/agent")
        self.app = socketio.WSGIApp(self.sio, flask_app)
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.1,), daemon=True)

    @staticmethod
    def _state(offer=None, work="idle", call=None) -> dict:
        return {"agent": {"id": 1, "login": "ann", "name": "Ann", "presence": "available", "break_reason": None,
                          "work": work, "since": None},
                "offer": offer, "call": call, "dispositions": [{"code": "resolved"}, {"code": "callback"}],
                "break_reasons": [], "server_time": time.time()}


def test_bot_goes_available_accepts_once_and_wraps_up():
    hub = FakeAgentHub()
    swarm = BotSwarm(hub.url, [BotAccount("ann", "pw")], seed=3, accept_delay=(0.05, 0.1), wrap_delay=(0.05, 0.1))
    swarm.start()  # the hub is not up yet: the bot retries
    time.sleep(0.3)
    hub.thread.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(n == "wrap_up" for n, _ in hub.received):
            time.sleep(0.05)
        names = [n for n, _ in hub.received]
        assert names[0] == "set_presence" and hub.received[0][1] == {"presence": "available"}
        assert names.count("accept") == 1 and hub.received[names.index("accept")][1] == {"call_sid": "CA1"}
        wrap = hub.received[names.index("wrap_up")][1]
        assert wrap["call_sid"] == "CA1" and wrap["disposition"] in ("resolved", "callback") and wrap["note"]
        time.sleep(0.2)
        assert [n for n, _ in hub.received].count("wrap_up") == 1
        assert all(ack == {"ok": True} for _, ack in swarm.bots[0].acks)
    finally:
        swarm.stop()
        hub.server.shutdown()
        hub.server.server_close()


def test_a_bot_keeps_beating_while_connected_so_the_hub_never_logs_it_off(monkeypatch):
    import simulator.bots

    monkeypatch.setattr(simulator.bots, "HEARTBEAT_S", 0.2)
    hub = FakeAgentHub()
    hub.thread.start()
    swarm = BotSwarm(hub.url, [BotAccount("ann", "pw")], seed=3)
    swarm.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and [n for n, _ in hub.received].count("heartbeat") < 3:
            time.sleep(0.05)
        assert [n for n, _ in hub.received].count("heartbeat") >= 3
    finally:
        swarm.stop()
        hub.server.shutdown()
        hub.server.server_close()


def test_cli_prints_url_serves_and_stops_on_sigterm(tmp_path):
    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps({"queue_numbers": ["+15005550100"], "caller_numbers": ["+15005550123"],
                                    "agents": []}))
    code = (
        "import sys; from config.settings import Settings; from simulator.cli import main; "
        f"s = Settings(twilio_account_sid='{ACCOUNT_SID}', twilio_auth_token='{AUTH_TOKEN}', "
        "twilio_api_url='http://127.0.0.1:1', public_url='http://127.0.0.1:9'); "
        "sys.exit(main(sys.argv[1:], s))"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, "--port", "0", "--scenario", str(scenario), "--rate", "0"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        line = proc.stdout.readline()
        assert "http://127.0.0.1:" in line, line + proc.stderr.read()
        url = line.split()[4]
        resp = requests.get(url + f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/CA{'0' * 32}.json",
                            auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5)
        assert resp.status_code == 404 and resp.json()["code"] == 20404
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
