"""The carrier core: call legs, their progress, status callbacks and the simulated parties on them."""
from __future__ import annotations

import logging
import math
import random
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from simulator.conference import ConferenceManager
from simulator.legs import Leg
from simulator.scheduler import Scheduler
from simulator.twiml import TwimlInterpreter
from simulator.webhooks import WebhookResult, WebhookSender
from simulator.wire import new_sid, rfc2822, utcnow

log = logging.getLogger(__name__)

SIP_CODES = {"completed": "200", "busy": "486", "no-answer": "487", "canceled": "487", "failed": "500"}


@dataclass
class CarrierConfig:
    """How the carrier behaves; durations are seconds, `time_scale` multiplies every media and ring time."""

    account_sid: str
    auth_token: str
    public_url: str
    seed: int = 1
    duplicate_rate: float = 0.0
    time_scale: float = 1.0
    say_seconds_per_char: float = 0.06
    play_seconds: float = 5.0
    client_ring_seconds: tuple[float, float] = (0.5, 1.5)
    pstn_ring_seconds: tuple[float, float] = (2.0, 6.0)
    pstn_answer_probability: float = 0.8
    pstn_busy_probability: float = 0.3
    machine_probability: float = 0.2
    pstn_mean_talk: float = 30.0
    pstn_mean_patience: float = 60.0
    webhook_timeout: float = 15.0
    webhook_workers: int = 8

    @property
    def incoming_url(self) -> str:
        """Where inbound calls' voice requests go."""
        return self.public_url.rstrip("/") + "/webhooks/voice/incoming"

    @property
    def status_url(self) -> str:
        """The status callback configured on the simulated phone numbers."""
        return self.public_url.rstrip("/") + "/webhooks/voice/status"


def _path(url: str | None) -> str:
    """Only the path of a URL, for logs."""
    return urlsplit(url or "").path


class Carrier:
    """Owns every leg; all state changes happen under `lock` (the scheduler holds it while acting)."""

    def __init__(self, config: CarrierConfig) -> None:
        self.config = config
        self.lock = threading.RLock()
        self.scheduler = Scheduler(self.lock)
        self.webhooks = WebhookSender(config.auth_token, workers=config.webhook_workers, timeout=config.webhook_timeout)
        self.rng = random.Random(config.seed)
        self.legs: dict[str, Leg] = {}
        self.twiml = TwimlInterpreter(self)
        self.conferences = ConferenceManager(self)
        self._started = False

    # ---- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the scheduler thread."""
        if not self._started:
            self.scheduler.start()
            self._started = True

    def stop(self) -> None:
        """Stop the scheduler and wait for in-flight webhooks."""
        self.scheduler.stop()
        self.webhooks.close()
        self._started = False

    def scaled(self, seconds: float) -> float:
        """Apply the configured time scale to a media or ring duration."""
        return max(0.0, seconds * self.config.time_scale)

    def later(self, leg: Leg, delay: float, fn: Callable[[], None]) -> None:
        """Schedule `fn` for a leg; it is dropped if the leg ends first."""

        def run() -> None:
            if not leg.ended:
                fn()

        leg.timers.append(self.scheduler.call_later(delay, run))

    def get(self, sid: str) -> Leg | None:
        """Return a leg by CallSid."""
        return self.legs.get(sid)

    # ---- webhooks --------------------------------------------------------------------------------
    def request(
        self,
        leg: Leg | None,
        kind: str,
        url: str,
        params: Mapping[str, str],
        method: str = "POST",
        then: Callable[[WebhookResult], None] | None = None,
        *,
        token: str | None = None,
    ) -> None:
        """Send a signed webhook about `leg`; `then` runs on the scheduler thread with the result."""
        record: dict[str, Any] = {"kind": kind, "path": _path(url), "http_status": None}
        for key in ("CallStatus", "StatusCallbackEvent", "SequenceNumber"):
            if key in params and kind in ("status", "conference"):
                record[key] = params[key]
        if leg is not None:
            leg.events.append(record)

        def done(result: WebhookResult) -> None:
            record["http_status"] = result.status
            if then is not None:
                self.scheduler.call_soon(lambda: then(result))

        self.webhooks.send(url, dict(params), method, done, token=token)

    def status_event(self, leg: Leg, event: str) -> None:
        """Post one call-progress event if the leg asked for it (0-based SequenceNumber per call)."""
        if not leg.status_callback or event not in leg.status_callback_events:
            return
        params = leg.voice_params()
        params.update(
            CallbackSource="call-progress-events",
            SequenceNumber=str(leg.seq),
            Timestamp=rfc2822(utcnow()) or "",
        )
        leg.seq += 1
        if event == "completed":
            params["CallDuration"] = str(leg.duration())
            params["Duration"] = str(math.ceil(leg.duration() / 60))
            params["SipResponseCode"] = SIP_CODES.get(leg.status, "200")
        token = secrets.token_hex(16)
        self.request(leg, "status", leg.status_callback, params, leg.status_callback_method, token=token)
        if self.config.duplicate_rate > 0 and self.rng.random() < self.config.duplicate_rate:
            delay = self.rng.uniform(0.01, 0.2)
            self.scheduler.call_later(
                delay,
                lambda: self.request(leg, "status", leg.status_callback or "", params, leg.status_callback_method, token=token),
            )

    # ---- creating legs ---------------------------------------------------------------------------
    def _new_leg(self, **kwargs: Any) -> Leg:
        leg = Leg(sid=new_sid("CA"), account_sid=self.config.account_sid, **kwargs)
        self.legs[leg.sid] = leg
        return leg

    def place_inbound_call(
        self,
        from_: str,
        to: str,
        talk_seconds: float | None = None,
        patience_seconds: float | None = None,
        digits: str | list[str] | None = None,
    ) -> str:
        """A simulated caller dials one of the hub's numbers; returns the new CallSid."""
        with self.lock:
            leg = self._new_leg(
                to=to, from_=from_, direction="inbound", role="caller", status="ringing",
                talk_seconds=talk_seconds, patience_seconds=patience_seconds,
                digits=[digits] if isinstance(digits, str) else list(digits or []),
                status_callback=self.config.status_url, status_callback_events={"completed"},
            )
            log.info("inbound call %s arriving", leg.sid)
            if patience_seconds is not None:
                self.later(leg, patience_seconds, lambda: self._patience_expired(leg))
            self.scheduler.call_soon(lambda: self._ring_hub(leg))
            return leg.sid

    def _ring_hub(self, leg: Leg) -> None:
        url = self.config.incoming_url
        leg.doc_url = url
        gen = leg.gen

        def answered(result: WebhookResult) -> None:
            if leg.ended or leg.gen != gen:
                return
            if not result.ok:
                log.warning("hub did not answer inbound call %s (HTTP %s)", leg.sid, result.status)
                self.end_leg(leg, "failed")
                return
            self._mark_answered(leg)
            self.twiml.load(leg, result.body, url)

        self.request(leg, "voice", url, leg.voice_params(), "POST", answered)

    def create_call(self, form: Mapping[str, Any]) -> Leg:
        """Create an outbound-api leg from the REST form (a werkzeug MultiDict or a plain mapping)."""
        to = str(form.get("To"))
        events = _list(form, "StatusCallbackEvent")
        leg = self._new_leg(
            to=to, from_=str(form.get("From")), direction="outbound-api", role=_role_for(to),
            url=form.get("Url"), method=str(form.get("Method") or "POST").upper(), twiml=form.get("Twiml"),
            status_callback=form.get("StatusCallback"),
            status_callback_method=str(form.get("StatusCallbackMethod") or "POST").upper(),
            status_callback_events=set(events) if events else {"completed"},
            timeout=int(form.get("Timeout") or 60),
            machine_detection=form.get("MachineDetection"),
            async_amd=str(form.get("AsyncAmd") or "").lower() == "true",
            async_amd_callback=form.get("AsyncAmdStatusCallback"),
            async_amd_callback_method=str(form.get("AsyncAmdStatusCallbackMethod") or "POST").upper(),
        )
        self._setup_person(leg)
        log.info("outbound leg %s created (%s)", leg.sid, leg.role)
        self.scheduler.call_soon(lambda: self._progress(leg))
        return leg

    def create_participant_leg(self, form: Mapping[str, Any], join: dict[str, Any]) -> Leg:
        """Create the outbound leg of a REST-added conference participant; it joins `join` on answer."""
        events = _list(form, "StatusCallbackEvent")
        to = str(form.get("To"))
        leg = self._new_leg(
            to=to, from_=str(form.get("From")), direction="outbound-api", role=_role_for(to),
            status_callback=form.get("StatusCallback"),
            status_callback_method=str(form.get("StatusCallbackMethod") or "POST").upper(),
            status_callback_events=set(events) if events else {"completed"},
            timeout=int(form.get("Timeout") or 60), join_conference=join,
        )
        self._setup_person(leg)
        log.info("participant leg %s created (%s) for conference %s", leg.sid, leg.role, join["conference_sid"])
        self.scheduler.call_soon(lambda: self._progress(leg))
        return leg

    def dial_child(self, parent: Leg, target: str, *, timeout: int, status_callback: str | None,
                   status_callback_method: str, events: list[str], caller_id: str | None) -> Leg:
        """Create the child leg of a <Dial><Number|Client>."""
        child = self._new_leg(
            to=target, from_=caller_id or parent.from_, direction="outbound-dial", role=_role_for(target),
            parent_call_sid=parent.sid, status_callback=status_callback,
            status_callback_method=status_callback_method,
            status_callback_events=set(events) if events else {"completed"}, timeout=timeout,
        )
        self._setup_person(child)
        self.scheduler.call_soon(lambda: self._progress(child))
        return child

    def _setup_person(self, leg: Leg) -> None:
        if leg.role == "person":
            sigma = 0.5
            mu = math.log(max(self.config.pstn_mean_talk, 0.001)) - sigma * sigma / 2
            leg.talk_seconds = self.rng.lognormvariate(mu, sigma)
            leg.patience_seconds = self.rng.expovariate(1.0 / max(self.config.pstn_mean_patience, 0.001))

    def _progress(self, leg: Leg) -> None:
        """queued -> initiated -> ringing -> answered / busy / no-answer."""
        if leg.ended:
            return
        leg.status = "initiated"
        leg.date_updated = utcnow()
        self.status_event(leg, "initiated")
        self.later(leg, self.scaled(0.1), lambda: self._ringing(leg))

    def _ringing(self, leg: Leg) -> None:
        leg.status = "ringing"
        leg.date_updated = utcnow()
        self.status_event(leg, "ringing")
        timeout = self.scaled(leg.timeout)
        if leg.role == "softphone":
            ring = self.scaled(self.rng.uniform(*self.config.client_ring_seconds))
            self.later(leg, min(ring, timeout), lambda: self.answer(leg) if ring <= timeout else self.end_leg(leg, "no-answer"))
            return
        ring = self.scaled(self.rng.uniform(*self.config.pstn_ring_seconds))
        if self.rng.random() < self.config.pstn_answer_probability and ring <= timeout:
            if self.rng.random() < self.config.machine_probability:
                leg.role = "machine"
            self.later(leg, ring, lambda: self.answer(leg))
        elif self.rng.random() < self.config.pstn_busy_probability:
            self.later(leg, min(self.scaled(1.0), timeout), lambda: self.end_leg(leg, "busy"))
        else:
            self.later(leg, timeout, lambda: self.end_leg(leg, "no-answer"))

    def _mark_answered(self, leg: Leg) -> None:
        leg.status = "in-progress"
        leg.start_time = leg.date_updated = utcnow()
        leg.answered_mono = time.monotonic()

    def answer(self, leg: Leg) -> None:
        """The far end picks up: post `answered`, then fetch the leg's TwiML (or bridge a Dial child)."""
        if leg.ended:
            return
        self._mark_answered(leg)
        log.info("leg %s answered (%s)", leg.sid, leg.role)
        if leg.role == "person" and leg.patience_seconds is not None:
            self.later(leg, leg.patience_seconds, lambda: self._patience_expired(leg))
        detected = "machine_start" if leg.role == "machine" else "human"
        if leg.machine_detection and not leg.async_amd:
            leg.answered_by = detected
        self.status_event(leg, "answered")
        if leg.machine_detection and leg.async_amd and leg.async_amd_callback:
            self.later(leg, self.scaled(self.rng.uniform(1.0, 3.0)), lambda: self._post_amd(leg, detected))
        if leg.direction == "outbound-dial":
            parent = self.legs.get(leg.parent_call_sid or "")
            if parent is not None:
                self.twiml.child_answered(parent, leg)
            return
        if leg.join_conference is not None:
            self.conferences.join_added(leg)
            return
        if leg.twiml and not leg.url:
            self.twiml.load(leg, leg.twiml, "")
            return
        if leg.role == "machine" and leg.talk_seconds is not None:
            self.later(leg, leg.talk_seconds, lambda: self.hang_up_party(leg, "machine message ended"))
        url = leg.url or ""
        gen = leg.gen

        def got(result: WebhookResult) -> None:
            if leg.ended or leg.gen != gen:
                return
            if not result.ok:
                log.warning("TwiML fetch for leg %s failed (HTTP %s)", leg.sid, result.status)
                self.end_leg(leg, "completed")
                return
            self.twiml.load(leg, result.body, url)

        leg.doc_url = url
        self.request(leg, "voice", url, leg.voice_params(), leg.method, got)

    def _post_amd(self, leg: Leg, answered_by: str) -> None:
        leg.answered_by = answered_by
        params = {
            "CallSid": leg.sid, "AccountSid": leg.account_sid, "AnsweredBy": answered_by,
            "MachineDetectionDuration": str(self.rng.randint(1200, 4000)),
        }
        self.request(leg, "amd", leg.async_amd_callback or "", params, leg.async_amd_callback_method)

    # ---- the simulated party ---------------------------------------------------------------------
    def start_talking(self, leg: Leg) -> None:
        """The party is connected to someone: its talk timer starts."""
        if leg.talking or leg.ended:
            return
        leg.talking = True
        if leg.talk_seconds is not None:
            self.later(leg, leg.talk_seconds, lambda: self.hang_up_party(leg, "talk time over"))

    def _patience_expired(self, leg: Leg) -> None:
        if not leg.talking:
            self.hang_up_party(leg, "patience ran out")

    def hang_up_party(self, leg: Leg, why: str) -> None:
        """The simulated person on the leg hangs up."""
        if leg.ended:
            return
        log.info("leg %s hangs up: %s", leg.sid, why)
        self.end_leg(leg, "completed" if leg.answered else "canceled")

    # ---- REST operations -------------------------------------------------------------------------
    def update_call(self, leg: Leg, form: Mapping[str, Any]) -> None:
        """Apply a REST update: Status=completed|canceled ends the leg, Url=/Twiml= redirects it."""
        status = form.get("Status")
        if status in ("completed", "canceled"):
            if not leg.ended:
                log.info("leg %s ended through the REST API", leg.sid)
                self.end_leg(leg, "completed" if leg.answered else "canceled")
            return
        url, twiml = form.get("Url"), form.get("Twiml")
        if (url or twiml) and not leg.ended:
            method = str(form.get("Method") or "POST").upper()
            self.twiml.detach(leg)
            if url:
                self.twiml.fetch_and_load(leg, url, method)
            else:
                self.twiml.load(leg, str(twiml), leg.doc_url)

    # ---- ending ----------------------------------------------------------------------------------
    def end_leg(self, leg: Leg, status: str) -> None:
        """Give the leg a final status, untangle it from conferences, queues and bridges, report it."""
        if leg.ended:
            return
        for timer in leg.timers:
            timer.cancel()
        leg.timers.clear()
        leg.gen += 1
        leg.wait_gen += 1
        leg.status = status
        leg.ended_mono = time.monotonic()
        leg.end_time = leg.date_updated = utcnow()
        log.info("leg %s ended: %s after %ss", leg.sid, status, leg.duration())
        self.twiml.detach(leg, ending=True)
        child = self.legs.get(leg.dial_child or "")
        if child is not None and not child.ended:
            self.end_leg(child, "completed" if child.answered else "canceled")
        if leg.direction == "outbound-dial":
            parent = self.legs.get(leg.parent_call_sid or "")
            if parent is not None and not parent.ended and parent.dial_child == leg.sid:
                self.twiml.child_ended(parent, leg)
        self.status_event(leg, "completed")


def _role_for(target: str) -> str:
    """softphone for client:/sip: targets, a person for phone numbers."""
    return "softphone" if target.startswith(("client:", "sip:")) else "person"


def _list(form: Mapping[str, Any], key: str) -> list[str]:
    """All values of a repeated form field (MultiDict or mapping of lists)."""
    getlist = getattr(form, "getlist", None)
    if getlist is not None:
        values = getlist(key)
    else:
        raw = form.get(key)
        values = raw if isinstance(raw, list) else ([raw] if raw else [])
    out: list[str] = []
    for value in values:
        out.extend(v for v in str(value).replace(",", " ").split() if v)
    return out
