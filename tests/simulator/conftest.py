"""Fixtures: a tiny fake hub that checks every signature, and a simulator pointed at it."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask, Response, request
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.twiml.voice_response import Dial, VoiceResponse
from werkzeug.serving import make_server

from config.settings import Settings
from hub.telephony import LocalPeerHttpClient
from simulator.carrier import CarrierConfig
from simulator.server import SimulatorServer

ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "sim-test-token"
QUEUE_NUMBER = "+15005550100"
CALLER = "+15005550123"


@dataclass
class Hit:
    """One webhook the fake hub received."""

    path: str
    form: dict[str, str]
    signature_ok: bool
    at: float = field(default_factory=time.monotonic)


class FakeHub:
    """Receives the carrier's webhooks, validates X-Twilio-Signature, answers with TwiML."""

    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self.lock = threading.Lock()
        self.validator = RequestValidator(AUTH_TOKEN)
        self.agent_twiml: Callable[[dict[str, str]], str] | None = None
        self.routes: dict[str, Callable[[dict[str, str]], str]] = {}  # kind -> TwiML, overrides defaults
        self.app = self._build()
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.1,), daemon=True)

    def _conference(self, name: str, *, start: bool, wait: bool) -> str:
        r = VoiceResponse()
        d = Dial()
        kwargs: dict[str, Any] = dict(
            start_conference_on_enter=start, end_conference_on_exit=True,
            status_callback=self.url + "/webhooks/voice/conference", status_callback_event="start end join leave",
        )
        if wait:
            kwargs.update(wait_url=self.url + "/webhooks/voice/hold?queue=support", wait_method="POST")
        d.conference(name, **kwargs)
        if not start:
            r.say("Thank you for calling Support. Please hold.")
        r.append(d)
        return str(r)

    def _build(self) -> Flask:
        app = Flask("fake_hub")

        @app.post("/webhooks/voice/<kind>")
        def hook(kind: str):
            url = self.url + request.full_path.rstrip("?")
            ok = self.validator.validate(url, request.form, request.headers.get("X-Twilio-Signature", ""))
            form = request.form.to_dict()
            with self.lock:
                self.hits.append(Hit("/webhooks/voice/" + kind, form, ok))
            if not ok:
                return Response("bad signature", 403)
            if kind in self.routes:
                return Response(self.routes[kind](form), mimetype="text/xml")
            if kind == "incoming":
                return Response(self._conference(form["CallSid"], start=False, wait=True), mimetype="text/xml")
            if kind == "hold":
                r = VoiceResponse()
                r.say("Please hold")
                r.pause(length=1)
                return Response(str(r), mimetype="text/xml")
            if kind == "agent":
                if self.agent_twiml is not None:
                    return Response(self.agent_twiml(form), mimetype="text/xml")
                return Response(self._conference(request.args["call"], start=True, wait=False), mimetype="text/xml")
            return Response("", 204)

        return app

    def start(self) -> "FakeHub":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def of(self, path: str, call_sid: str | None = None) -> list[Hit]:
        """Hits on a path (optionally for one CallSid)."""
        with self.lock:
            return [h for h in self.hits if h.path == path and (call_sid is None or h.form.get("CallSid") == call_sid)]

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Poll until predicate() is truthy."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.02)
        raise AssertionError("condition not met in time")


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    h = FakeHub().start()
    yield h
    h.stop()


def make_sim(hub: FakeHub, **overrides: Any) -> SimulatorServer:
    config = CarrierConfig(
        account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, public_url=hub.url, seed=7,
        time_scale=0.05, client_ring_seconds=(0.5, 1.5), **overrides,
    )
    return SimulatorServer(config, port=0).start()


@pytest.fixture
def sim_factory(hub: FakeHub) -> Iterator[Callable[..., SimulatorServer]]:
    started: list[SimulatorServer] = []

    def factory(**overrides: Any) -> SimulatorServer:
        s = make_sim(hub, **overrides)
        started.append(s)
        return s

    yield factory
    for s in started:
        s.stop()


@pytest.fixture
def sim(sim_factory) -> SimulatorServer:
    return sim_factory()


def settings_for(sim: SimulatorServer, hub: FakeHub) -> Settings:
    return Settings(twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN,
                    twilio_api_url=sim.url, public_url=hub.url)


@pytest.fixture
def client(sim: SimulatorServer) -> Client:
    return Client(ACCOUNT_SID, AUTH_TOKEN, http_client=LocalPeerHttpClient(sim.url, timeout=10))

