"""A running hub for end-to-end tests: real web and worker processes, the carrier simulator, agent clients."""
from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from typing import Any

import requests
import socketio
from sqlalchemy import select

from config.settings import Settings
from hub.admin import add_agent, add_queue
from hub.db import make_engine, make_session_factory, transaction
from hub.models import Call, Customer, CustomerPhone
from simulator.carrier import CarrierConfig
from simulator.server import SimulatorServer
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, Processes, free_port, make_settings, settings_env, wait_until

QUEUE_NUMBER = "+14155550100"
PASSWORD = "password1"


@dataclass
class AgentClient:
    """A console as the hub sees it: a Socket.IO client on /agent that records every state pushed."""

    base_url: str
    login: str
    password: str = PASSWORD
    states: "queue.Queue[dict[str, Any]]" = field(default_factory=queue.Queue)
    latest: dict[str, Any] | None = None

    def connect(self) -> "AgentClient":
        token = requests.post(f"{self.base_url}/api/v1/auth/token",
                              json={"login": self.login, "password": self.password}, timeout=10).json()["token"]
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("state", self._on_state, namespace="/agent")
        self.sio.connect(self.base_url, namespaces=["/agent"], auth={"token": token}, transports=["websocket"],
                         wait_timeout=10)
        return self

    def _on_state(self, data: dict[str, Any]) -> None:
        self.states.put(data)

    def heartbeat(self) -> None:
        """Tell the hub this console is alive (the browser console does it every 20 s)."""
        self.call("heartbeat")

    def call(self, event: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.sio.call(event, data or {}, namespace="/agent", timeout=15)

    def wait_for(self, predicate, seconds: float = 30, what: str = "a state") -> dict[str, Any]:
        """Return the first pushed state (from now on, or the latest seen) that satisfies `predicate`."""
        if self.latest is not None and predicate(self.latest):
            return self.latest
        deadline = threading.Event()
        timer = threading.Timer(seconds, deadline.set)
        timer.start()
        try:
            while not deadline.is_set():
                try:
                    state = self.states.get(timeout=0.2)
                except queue.Empty:
                    continue
                self.latest = state
                if predicate(state):
                    return state
        finally:
            timer.cancel()
        raise AssertionError(f"{self.login} never saw {what}; last state: {self.latest}")

    def close(self) -> None:
        if getattr(self, "sio", None) is not None and self.sio.connected:
            self.sio.disconnect()


class Stack:
    """Hub web process(es) and a worker, on one database, with the simulator as their carrier."""

    def __init__(self, processes: Processes, database_url: str, web_count: int = 1, duplicate_rate: float = 0.0,
                 carrier: dict | None = None, **settings_overrides) -> None:
        self.processes = processes
        self.ports = [free_port() for _ in range(web_count)]
        self.sim = SimulatorServer(CarrierConfig(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN,
                                                 public_url=f"http://127.0.0.1:{self.ports[0]}", seed=3,
                                                 duplicate_rate=duplicate_rate, **(carrier or {})))
        self.sim.start()
        self.settings: Settings = make_settings(
            database_url, public_url=f"http://127.0.0.1:{self.ports[0]}", twilio_api_url=self.sim.url,
            **settings_overrides)
        self.engine = make_engine(database_url)
        self.sessions = make_session_factory(self.engine, check_routing_cache=True)
        self.clients: list[AgentClient] = []

    def url(self, index: int = 0) -> str:
        return f"http://127.0.0.1:{self.ports[index]}"

    def start(self, workers: int = 1, gunicorn: bool = False) -> "Stack":
        """Start the web processes (the second and later under gunicorn if asked) and the workers."""
        for i, port in enumerate(self.ports):
            if gunicorn and i > 0:
                self.processes.start(f"web{i}", ["-k", "gthread", "--threads", "20", "-w", "1", "-b",
                                                 f"127.0.0.1:{port}", "hub.wsgi:app"],
                                     settings_env(self.settings), port=port, module="gunicorn")
            else:
                self.processes.start(f"web{i}", ["serve", "--port", str(port)], settings_env(self.settings),
                                     port=port)
        for i in range(workers):
            self.processes.start(f"worker{i}", ["worker"], settings_env(self.settings))
        return self

    def seed(self, agents: list[tuple[str, dict[str, int]]], offer_timeout_s: int = 15, wrap_up_s: int = 30) -> None:
        with transaction(self.sessions) as session:
            add_queue(session, "Support", QUEUE_NUMBER, {"support": 1}, offer_timeout_s=offer_timeout_s,
                      wrap_up_s=wrap_up_s)
            for login, skills in agents:
                add_agent(session, login, login.title(), PASSWORD, "agent", skills)
            session.add(Customer(name="Grace Hopper", value_tier="gold", lifecycle_stage="loyal",
                                 phones=[CustomerPhone(number="+12125550001")]))

    def agent(self, login: str, index: int = 0) -> AgentClient:
        client = AgentClient(self.url(index), login).connect()
        self.clients.append(client)
        return client

    def call_row(self, sid: str) -> Call | None:
        with transaction(self.sessions) as session:
            return session.scalar(select(Call).where(Call.sid == sid))

    def wait_for_call(self, sid: str, predicate, what: str, seconds: float = 30) -> Call:
        return wait_until(lambda: (lambda c: c if c is not None and predicate(c) else None)(self.call_row(sid)),
                          seconds=seconds, message=what)

    def stop(self) -> None:
        for client in self.clients:
            client.close()
        self.sim.stop()
        self.engine.dispose()
