"""Simulated agents: Socket.IO clients that work the hub's real agent protocol (/agent namespace)."""
from __future__ import annotations

import logging
import random
import threading
import time
from datetime import UTC, datetime, timedelta
from dataclasses import dataclass
from typing import Any

import requests
import socketio

from simulator.scheduler import Scheduler

log = logging.getLogger(__name__)

NAMESPACE = "/agent"
NOTES = ["Customer question answered.", "Follow-up promised by email.", "Issue resolved on the call.",
         "Customer will call back.", "Escalated to second line."]


@dataclass(frozen=True)
class BotAccount:
    """Credentials of one simulated agent."""

    login: str
    password: str


def _disposition_value(item: Any) -> Any:
    """Pick the value to send for one entry of the `dispositions` list (string or object)."""
    if isinstance(item, dict):
        for key in ("code", "value", "id", "name", "label"):
            if key in item:
                return item[key]
    return item


HEARTBEAT_S = 20.0
BACK_AFTER_S = 10.0  # a bot logged off by the hub goes available again, at most this often


class AgentBot:
    """One simulated agent: logs in, goes available, accepts offers, wraps up calls."""

    def __init__(self, hub_url: str, account: BotAccount, scheduler: Scheduler, seed: int = 1,
                 accept_delay: tuple[float, float] = (0.5, 3.0), wrap_delay: tuple[float, float] = (2.0, 6.0)) -> None:
        self.hub_url = hub_url.rstrip("/")
        self.account = account
        self.scheduler = scheduler
        self.rng = random.Random(seed)
        self.accept_delay, self.wrap_delay = accept_delay, wrap_delay
        self.accepted: set[str] = set()
        self.wrapped: set[str] = set()
        self.last_state: dict[str, Any] | None = None
        self.acks: list[tuple[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sio: socketio.Client | None = None
        self._thread: threading.Thread | None = None
        self._beats = 0
        self._back_at = time.monotonic()  # the bot goes available itself on connect

    # ---- connection ------------------------------------------------------------------------------
    def start(self) -> None:
        """Connect in a background thread, retrying with backoff until the hub is up."""
        self._thread = threading.Thread(target=self._run, name=f"sim-bot-{self.account.login}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Disconnect and join the connection thread."""
        self._stop.set()
        sio = self._sio
        if sio is not None:
            try:
                sio.disconnect()
            except Exception:
                log.debug("bot %s: disconnect failed", self.account.login, exc_info=True)
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def connected(self) -> bool:
        """True while the Socket.IO connection is up."""
        return self._sio is not None and self._sio.connected

    def _token(self) -> str:
        resp = requests.post(self.hub_url + "/api/v1/auth/token",
                             json={"login": self.account.login, "password": self.account.password}, timeout=5)
        resp.raise_for_status()
        return str(resp.json()["token"])

    def _run(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            sio = socketio.Client(reconnection=False, logger=False, engineio_logger=False)
            sio.on("connect", self._on_connect, namespace=NAMESPACE)
            sio.on("state", self._on_state, namespace=NAMESPACE)
            sio.on("disconnect", self._on_disconnect, namespace=NAMESPACE)
            try:
                token = self._token()
                self._sio = sio
                sio.connect(self.hub_url, namespaces=[NAMESPACE], auth={"token": token},
                            transports=["websocket"], wait_timeout=5)
                delay = 0.5
                sio.wait()
            except Exception as exc:
                log.info("bot %s could not connect (%s); retrying in %.1fs", self.account.login,
                         type(exc).__name__, delay)
            finally:
                self._sio = None
                try:
                    sio.disconnect()
                except Exception:
                    pass
            if self._stop.wait(delay):
                break
            delay = min(delay * 2, 10.0)

    # ---- protocol --------------------------------------------------------------------------------
    def _emit(self, event: str, data: dict[str, Any], on_refused=None) -> None:
        sio = self._sio
        if sio is None:
            log.info("bot %s: not connected, %s dropped", self.account.login, event)
            return

        def ack(*args: Any) -> None:
            answer = args[0] if args else None
            self.acks.append((event, answer))
            if not (isinstance(answer, dict) and answer.get("ok")):
                error = answer.get("error") if isinstance(answer, dict) else answer
                log.warning("bot %s: %s refused: %s", self.account.login, event, error)
                if on_refused is not None:
                    on_refused()

        try:
            sio.emit(event, data, namespace=NAMESPACE, callback=ack)
        except Exception as exc:
            log.warning("bot %s: emitting %s failed: %s", self.account.login, event, exc)

    def _on_connect(self) -> None:
        log.info("bot %s connected", self.account.login)
        self._emit("set_presence", {"presence": "available"})
        self._beats += 1
        generation = self._beats
        # connecting counts as the first beat; the client is not marked connected until this handler returns
        self.scheduler.call_later(HEARTBEAT_S, lambda: self._heartbeat(generation))

    def _heartbeat(self, generation: int) -> None:
        """Tell the hub this console is alive, as the browser console does, every 20 s while connected."""
        if self._stop.is_set() or generation != self._beats or not self.connected:
            return
        self._emit("heartbeat", {})
        self.scheduler.call_later(HEARTBEAT_S, lambda: self._heartbeat(generation))

    def _on_disconnect(self, *args: Any) -> None:
        log.info("bot %s disconnected", self.account.login)

    def _on_state(self, state: dict[str, Any]) -> None:
        try:
            self._react(state)
        except Exception:
            log.exception("bot %s: could not handle a state snapshot", self.account.login)

    def _react(self, state: dict[str, Any]) -> None:
        self.last_state = state
        offer = state.get("offer") or None
        agent = state.get("agent") or {}
        call = state.get("call") or None
        with self._lock:
            if agent.get("presence") == "offline" and not self._stop.is_set() \
                    and time.monotonic() - self._back_at > BACK_AFTER_S:
                # logged off by the hub (e.g. a missed heartbeat): a person would log back in, so does the bot
                self._back_at = time.monotonic()
                self.scheduler.call_later(1.0, lambda: self._emit("set_presence", {"presence": "available"}))
            if offer and offer.get("call_sid") and offer["call_sid"] not in self.accepted:
                sid = offer["call_sid"]
                self.accepted.add(sid)
                delay = self.rng.uniform(*self.accept_delay)
                self.scheduler.call_later(delay, lambda: self._emit("accept", {"call_sid": sid}))
            if agent.get("work") == "wrap_up" and call and call.get("call_sid") and call["call_sid"] not in self.wrapped:
                sid = call["call_sid"]
                self.wrapped.add(sid)
                choices = state.get("dispositions") or []
                disposition = _disposition_value(self.rng.choice(choices)) if choices else None
                note = self.rng.choice(NOTES)
                delay = self.rng.uniform(*self.wrap_delay)
                outbound = call.get("outbound")
                request = {"call_sid": sid, "disposition": disposition, "note": note}
                if outbound:
                    request["answers"] = self._screening_answers(outbound)
                if disposition == "callback":  # tomorrow at 10:00 in the customer's (or lead's) own time zone
                    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
                    request["callback"] = {"at": f"{tomorrow.isoformat()}T10:00", "owner": "me"}
                # a refusal (answers that do not qualify, a callback time refused, a complaint with no customer)
                # means the lead was not interested after all, or the caller's issue was resolved
                fallback = dict(request, disposition="not_interested" if outbound else "resolved", callback=None)
                self.scheduler.call_later(delay, lambda: self._emit(
                    "wrap_up", request, on_refused=(lambda: self._emit("wrap_up", fallback)) if fallback else None))

    def _screening_answers(self, outbound: dict[str, Any] | None) -> dict[str, Any]:
        """Answer a campaign call's screening questions at random, as a lead might."""
        answers: dict[str, Any] = {}
        for question in ((outbound or {}).get("script") or {}).get("questions", []):
            kind = question.get("type")
            if kind == "yes_no":
                answers[question["key"]] = self.rng.choice(["yes", "no"])
            elif kind == "choice" and question.get("options"):
                answers[question["key"]] = self.rng.choice(question["options"])
            elif kind == "number":
                answers[question["key"]] = self.rng.randint(0, 400)
            else:
                answers[question["key"]] = "ok"
        return answers


class BotSwarm:
    """All simulated agents, sharing one scheduler thread for their delayed actions."""

    def __init__(self, hub_url: str, accounts: list[BotAccount], seed: int = 1, scheduler: Scheduler | None = None,
                 **bot_options: Any) -> None:
        self._own_scheduler = scheduler is None
        self.scheduler = scheduler or Scheduler()
        self.bots = [AgentBot(hub_url, a, self.scheduler, seed=seed * 1000 + i, **bot_options)
                     for i, a in enumerate(accounts)]

    def start(self) -> None:
        """Start the scheduler (if owned) and connect every bot."""
        if self._own_scheduler:
            self.scheduler.start()
        for bot in self.bots:
            bot.start()

    def stop(self) -> None:
        """Disconnect every bot and stop the scheduler (if owned)."""
        for bot in self.bots:
            bot.stop()
        if self._own_scheduler:
            self.scheduler.stop()
