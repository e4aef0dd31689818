"""Shared fixtures: real SQLite and PostgreSQL databases, real Redis, and the hub's processes.

Environment: SWITCHBOARD_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test) and
SWITCHBOARD_TEST_REDIS_URL (default redis://127.0.0.1:6379/9). Each test gets its own Redis database
contents, Socket.IO channel and RQ queue name.
"""
from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
from redis import Redis
from sqlalchemy import create_engine, text
from twilio.request_validator import RequestValidator

from config.settings import Settings
from hub.admin import add_agent
from hub.db import make_engine, transaction
from hub.migrate import upgrade
import campaigns.models  # noqa: F401  (so truncation covers the campaign tables)
import crm.models  # noqa: F401  (and the CRM tables)
from hub.models import Base

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PG_ADMIN_URL = os.environ.get("SWITCHBOARD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("SWITCHBOARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "f" * 32


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(port: int, seconds: float = 60) -> None:
    """Wait until a web process answers HTTP: gunicorn's master listens before its worker has imported the app."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.settimeout(max(0.1, deadline - time.monotonic()))
                s.sendall(b"GET /login HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                if s.recv(12).startswith(b"HTTP/"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"nothing answers HTTP on port {port}")


def wait_until(predicate, seconds: float = 20, interval: float = 0.1, message: str = "condition"):
    """Poll `predicate` until it returns a truthy value; fail the test with `message` otherwise."""
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        time.sleep(interval)


# ---------------------------------------------------------------- databases


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return str(path)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A private PostgreSQL database for this test session, migrated once."""
    name = f"switchboard_test_{os.getpid()}"
    admin = create_engine(PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    parts = urlsplit(PG_ADMIN_URL)
    url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))
    upgrade(url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate_postgres(url: str) -> None:
    engine = make_engine(url)
    tables = [t.name for t in Base.metadata.sorted_tables if t.name != "routing_lock"]
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path, sqlite_template) -> str:
    """A migrated, empty database: each test runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "hub.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_database")
    _truncate_postgres(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path, sqlite_template) -> str:
    path = tmp_path / "hub.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


# ---------------------------------------------------------------- settings and services


@pytest.fixture
def redis_client() -> Iterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def make_settings(database_url: str, **overrides) -> Settings:
    tag = uuid.uuid4().hex[:12]
    values = dict(
        database_url=database_url,
        redis_url=REDIS_URL,
        secret_key=secrets.token_urlsafe(16),
        public_url="http://127.0.0.1:5000",
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_api_url="http://127.0.0.1:9",  # nothing listens: a test that needs a carrier starts one
        socketio_channel=f"test-{tag}",
        rq_queue=f"test-{tag}",
        check_routing_cache=True,  # every reuse of the routing state between rounds is checked against the database
    )
    values.update(overrides)
    return Settings(**values)


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a child process exactly these settings."""
    import dataclasses

    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    for field in dataclasses.fields(Settings):
        value = getattr(settings, field.name)
        if value not in (None, ""):
            env["SWITCHBOARD_" + field.name.upper()] = str(value)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def sign(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    """Sign a webhook exactly as Twilio does."""
    return RequestValidator(token).compute_signature(url, params)


def new_sid(prefix: str = "CA") -> str:
    return prefix + uuid.uuid4().hex


# ---------------------------------------------------------------- processes


class Processes:
    """Start the hub's own commands as child processes; stop them all at teardown."""

    def __init__(self, log_dir) -> None:
        self.children: list[tuple[subprocess.Popen, object]] = []
        self.log_dir = log_dir

    def start(self, name: str, args: list[str], env: dict[str, str], port: int | None = None,
              module: str = "hub") -> subprocess.Popen:
        log = open(os.path.join(self.log_dir, f"{name}.log"), "w")
        child = subprocess.Popen([sys.executable, "-m", module, *args], env=env, cwd=ROOT, stdout=log,
                                 stderr=subprocess.STDOUT)
        self.children.append((child, log))
        if port is not None:
            try:
                wait_for_http(port)
            except TimeoutError:
                self.stop()
                raise AssertionError(f"{name} did not start:\n{self.read_log(name)}") from None
        return child

    def read_log(self, name: str) -> str:
        with open(os.path.join(self.log_dir, f"{name}.log")) as f:
            return f.read()

    def stop(self) -> None:
        for child, _ in reversed(self.children):
            if child.poll() is None:
                child.terminate()
        for child, log in reversed(self.children):
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
            log.close()
        self.children.clear()


@pytest.fixture
def processes(tmp_path) -> Iterator[Processes]:
    procs = Processes(str(tmp_path))
    yield procs
    procs.stop()


@pytest.fixture
def stack(processes, sqlite_url, redis_client):
    """A running hub on SQLite (tests/stack.py) with the agent ana on support and the supervisor sue. A test
    module that needs another hub defines its own `stack`, which pytest takes instead of this one."""
    from tests.stack import PASSWORD, Stack  # imported here: tests.stack imports this module

    stack = Stack(processes, sqlite_url)
    stack.seed([("ana", {"support": 1})])
    with transaction(stack.sessions) as session:
        add_agent(session, "sue", "Sue", PASSWORD, "supervisor")
    stack.start()
    yield stack
    stack.stop()


def http_json(method: str, url: str, **kwargs):
    response = requests.request(method, url, timeout=10, **kwargs)
    response.raise_for_status()
    return response.json()
