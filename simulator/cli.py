"""Command line: run the carrier simulator (REST peer, simulated callers, simulated agents) until stopped."""
from __future__ import annotations

import argparse
import json
import logging
import signal
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from simulator.bots import BotAccount, BotSwarm
from simulator.callers import CallerGenerator, CallerProfile
from simulator.carrier import CarrierConfig
from simulator.server import SimulatorServer
from simulator.spec import SpecMissing

log = logging.getLogger(__name__)

DEFAULT_PORT = 5055


def _default_port(settings: Any) -> int:
    """The port of settings.twilio_api_url, else 5055."""
    url = getattr(settings, "twilio_api_url", None)
    if url:
        try:
            port = urlsplit(url).port
        except ValueError:
            port = None
        if port:
            return port
    return DEFAULT_PORT


def build_parser(settings: Any) -> argparse.ArgumentParser:
    """The argparse parser for `simulate`."""
    p = argparse.ArgumentParser(prog="simulate", description="Run the Twilio carrier simulator.")
    p.add_argument("--port", type=int, default=_default_port(settings), help="REST port (default: from TWILIO_API_URL or 5055)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--hub-url", default=settings.public_url, help="the hub's public URL (webhooks and agents)")
    p.add_argument("--scenario", type=Path, help="JSON: queue_numbers, caller_numbers, agents")
    p.add_argument("--rate", type=float, default=4.0, help="inbound calls per minute")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--mean-talk", type=float, default=45.0, help="mean talk time, seconds")
    p.add_argument("--mean-patience", type=float, default=90.0, help="mean caller patience, seconds")
    p.add_argument("--duplicate-rate", type=float, default=0.0, help="probability a status callback is sent twice")
    return p


def load_scenario(path: Path | None) -> dict[str, Any]:
    """Read the scenario JSON (empty scenario when no path)."""
    if path is None:
        return {"queue_numbers": [], "caller_numbers": [], "agents": []}
    with path.open(encoding="utf-8") as f:
        data = json.load(f)
    return {
        "queue_numbers": [str(n) for n in data.get("queue_numbers", [])],
        "caller_numbers": [str(n) for n in data.get("caller_numbers", [])],
        "agents": [BotAccount(str(a["login"]), str(a["password"])) for a in data.get("agents", [])],
    }


class Simulation:
    """The whole simulator: carrier and REST peer, simulated callers, simulated agents."""

    def __init__(self, args: argparse.Namespace, settings: Any) -> None:
        settings.require("twilio_account_sid", "twilio_auth_token")
        scenario = load_scenario(args.scenario)
        config = CarrierConfig(
            account_sid=settings.twilio_account_sid, auth_token=settings.twilio_auth_token,
            public_url=args.hub_url.rstrip("/"), seed=args.seed, duplicate_rate=args.duplicate_rate,
        )
        self.server = SimulatorServer(config, host=args.host, port=args.port)
        self.callers: CallerGenerator | None = None
        if scenario["queue_numbers"] and scenario["caller_numbers"]:
            profile = CallerProfile(scenario["queue_numbers"], scenario["caller_numbers"], args.rate,
                                    args.mean_talk, args.mean_patience)
            self.callers = CallerGenerator(self.server.carrier, profile, seed=args.seed)
        self.bots = BotSwarm(args.hub_url, scenario["agents"], seed=args.seed) if scenario["agents"] else None

    def start(self) -> None:
        """Start everything."""
        self.server.start()
        if self.callers is not None:
            self.callers.start()
        if self.bots is not None:
            self.bots.start()

    def stop(self) -> None:
        """Stop everything, joining threads and closing sockets."""
        if self.callers is not None:
            self.callers.stop()
        if self.bots is not None:
            self.bots.stop()
        self.server.stop()


def main(argv: list[str], settings: Any) -> int:
    """Run the simulator until SIGINT/SIGTERM; return the exit code."""
    args = build_parser(settings).parse_args(argv)
    try:
        sim = Simulation(args, settings)
    except (OSError, ValueError, KeyError, SpecMissing) as exc:
        print(f"simulate: {exc}")
        return 2
    try:
        sim.start()
    except OSError as exc:
        print(f"simulate: cannot listen on {args.host}:{args.port}: {exc}")
        sim.stop()
        return 1
    print(f"carrier simulator listening on {sim.server.url} (hub {args.hub_url})", flush=True)
    stop = threading.Event()
    previous: dict[int, Any] = {}

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, on_signal)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("carrier simulator stopped")
    return 0
