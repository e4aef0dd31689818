"""The README's first command: `python -m hub demo` brings the whole hub up, calls flow, Ctrl-C stops it."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.conftest import ROOT, free_port, wait_until


def demo_env(**extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    env.update(PYTHONPATH=ROOT, PYTHONUNBUFFERED="1", **extra)
    return env


def test_demo_says_in_one_line_how_to_fix_an_unreachable_redis(tmp_path):
    env = demo_env(SWITCHBOARD_REDIS_URL="redis://127.0.0.1:1/0", PATH=str(tmp_path))  # no redis-server here
    result = subprocess.run([sys.executable, "-m", "hub", "demo"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Redis is not reachable" in lines[0] and "redis-server" in lines[0]


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server binary")
def test_demo_runs_the_whole_hub_with_simulated_calls_and_stops_cleanly_on_ctrl_c(tmp_path):
    port, sim_port = free_port(), free_port()
    # Redis "unreachable": the demo starts its own private redis-server, which also isolates this test
    env = demo_env(SWITCHBOARD_REDIS_URL="redis://127.0.0.1:1/0")
    log = open(tmp_path / "demo.log", "w")
    demo = subprocess.Popen(
        [sys.executable, "-m", "hub", "demo", "--port", str(port), "--sim-port", str(sim_port), "--rate", "40",
         "--mean-talk", "3", "--seed", "2"],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        output = lambda: (tmp_path / "demo.log").read_text()  # noqa: E731
        wait_until(lambda: "Switchboard demo is running" in output(), seconds=60, message="the demo banner")
        assert "alice / switchboard" in output() and "super / switchboard" in output()
        assert "started a private redis-server" in output()
        engine = create_engine(f"sqlite:///{tmp_path / 'instance' / 'demo.db'}")

        def counts():
            with engine.connect() as conn:
                return conn.execute(text(
                    "SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM agents WHERE simulated),"
                    " (SELECT count(*) FROM calls WHERE disposition IS NOT NULL AND created_at >"
                    "  datetime('now', '-10 minutes') AND leg = 'customer')")).one()

        customers, simulated, _ = counts()
        assert customers == 200 and simulated >= 5
        # simulated callers are answered by simulated agents, who wrap up with a disposition
        wait_until(lambda: counts()[2] >= 2, seconds=60, message="simulated calls answered and dispositioned")

        def outbound():
            with engine.connect() as conn:
                return conn.execute(text(
                    "SELECT (SELECT count(*) FROM dial_attempts WHERE outcome IS NOT NULL),"
                    " (SELECT count(*) FROM leads WHERE skip_code IS NOT NULL)")).one()

        # the running screening campaign dials leads inside their calling window and says why not the rest
        wait_until(lambda: outbound()[0] >= 2 and outbound()[1] >= 1, seconds=60,
                   message="the demo campaign's calls settled and its skipped leads explained")
        token = requests.post(f"http://127.0.0.1:{port}/api/v1/auth/token",
                              json={"login": "alice", "password": "switchboard"}, timeout=10)
        assert token.status_code == 200
        engine.dispose()
    finally:
        demo.send_signal(signal.SIGINT)
        code = demo.wait(timeout=30)
        log.close()
    assert code == 0, (tmp_path / "demo.log").read_text()[-3000:]
    assert "Switchboard demo stopped." in (tmp_path / "demo.log").read_text()
    time.sleep(0.5)
    for p in (port, sim_port):
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{p}/", timeout=2)
