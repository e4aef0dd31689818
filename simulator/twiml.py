"""The TwiML interpreter: runs the hub's documents verb by verb on the scheduler thread."""
from __future__ import annotations

import logging
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from simulator.legs import Leg
from simulator.webhooks import WebhookResult
from simulator.wire import new_sid

if TYPE_CHECKING:
    from simulator.carrier import Carrier

log = logging.getLogger(__name__)

MIN_WAIT_LOOP = 0.25  # seconds between two fetches of a waitUrl whose TwiML takes no time


def _bool(value: str | None, default: bool) -> bool:
    """Parse a TwiML boolean attribute."""
    if value is None:
        return default
    return value.strip().lower() == "true"


def _loops(el: ET.Element) -> int:
    """The `loop` attribute; 0 (forever) counts as a long time."""
    try:
        n = int(el.get("loop", "1"))
    except ValueError:
        return 1
    return 1000 if n <= 0 else n


class TwimlInterpreter:
    """Executes TwiML for legs; every method runs under the carrier lock."""

    def __init__(self, carrier: "Carrier") -> None:
        self.carrier = carrier
        self.queues: dict[str, list[str]] = {}
        self.queue_sids: dict[str, str] = {}
        self.queue_waits: dict[str, list[float]] = {}

    # ---- documents -------------------------------------------------------------------------------
    def load(self, leg: Leg, text: str, url: str) -> None:
        """Replace the leg's program with a new TwiML document and start running it."""
        try:
            root = ET.fromstring(text)
        except ET.ParseError as exc:
            log.warning("leg %s got unparsable TwiML (%s); hanging up", leg.sid, exc)
            self.carrier.end_leg(leg, "completed" if leg.answered else "failed")
            return
        if root.tag != "Response":
            log.warning("leg %s got TwiML whose root is <%s>; hanging up", leg.sid, root.tag)
            self.carrier.end_leg(leg, "completed" if leg.answered else "failed")
            return
        leg.gen += 1
        leg.program, leg.pc, leg.doc_url, leg.pending = list(root), 0, url, None
        self._next(leg, 0.0)

    def fetch_and_load(self, leg: Leg, url: str, method: str = "POST", extra: dict[str, str] | None = None,
                       kind: str = "voice") -> None:
        """Request TwiML from `url` (signed) and run it when it arrives."""
        leg.gen += 1
        gen = leg.gen
        params = leg.voice_params()
        params.update(extra or {})

        def got(result: WebhookResult) -> None:
            if leg.ended or leg.gen != gen:
                return
            if not result.ok:
                log.warning("TwiML fetch for leg %s failed (HTTP %s); hanging up", leg.sid, result.status)
                self.carrier.end_leg(leg, "completed" if leg.answered else "failed")
                return
            self.load(leg, result.body, url)

        self.carrier.request(leg, kind, url, params, method.upper(), got)

    def _next(self, leg: Leg, delay: float) -> None:
        gen = leg.gen
        self.carrier.later(leg, delay, lambda: self.step(leg) if leg.gen == gen else None)

    def step(self, leg: Leg) -> None:
        """Execute the next verb of the leg's document; the end of the document hangs up."""
        if leg.ended:
            return
        if leg.pc >= len(leg.program):
            log.info("leg %s reached the end of its TwiML", leg.sid)
            self.carrier.end_leg(leg, "completed")
            return
        verb = leg.program[leg.pc]
        leg.pc += 1
        leg.verbs.append(verb.tag)
        handler: Callable[[Leg, ET.Element], None] | None = getattr(self, "_verb_" + verb.tag.lower(), None)
        if handler is None:
            log.info("unknown TwiML verb <%s> skipped on leg %s", verb.tag, leg.sid)
            self._next(leg, 0.0)
            return
        handler(leg, verb)

    def duration(self, el: ET.Element) -> float:
        """How long a media verb (Say, Play, Pause) takes to play, after scaling."""
        cfg = self.carrier.config
        if el.tag == "Say":
            return self.carrier.scaled(len((el.text or "").strip()) * cfg.say_seconds_per_char * _loops(el))
        if el.tag == "Play":
            return self.carrier.scaled(cfg.play_seconds * _loops(el))
        if el.tag == "Pause":
            try:
                return self.carrier.scaled(float(el.get("length", "1")))
            except ValueError:
                return self.carrier.scaled(1.0)
        return 0.0

    def complete_pending(self, leg: Leg, params: dict[str, str]) -> None:
        """The verb the leg was blocked in is over: post its action, or go on with the next verb."""
        pending, leg.pending = leg.pending, None
        if leg.ended:
            return
        if pending and pending.get("action"):
            self.fetch_and_load(leg, pending["action"], pending.get("method", "POST"), params, kind="action")
        else:
            self._next(leg, 0.0)

    # ---- simple verbs ----------------------------------------------------------------------------
    def _verb_say(self, leg: Leg, el: ET.Element) -> None:
        self._next(leg, self.duration(el))

    _verb_play = _verb_say
    _verb_pause = _verb_say

    def _verb_hangup(self, leg: Leg, el: ET.Element) -> None:
        self.carrier.end_leg(leg, "completed")

    def _verb_reject(self, leg: Leg, el: ET.Element) -> None:
        self.carrier.end_leg(leg, "busy" if el.get("reason") == "busy" else "failed")

    def _verb_redirect(self, leg: Leg, el: ET.Element) -> None:
        url = urljoin(leg.doc_url, (el.text or "").strip())
        self.fetch_and_load(leg, url, el.get("method", "POST"), kind="redirect")

    def _verb_leave(self, leg: Leg, el: ET.Element) -> None:
        self._next(leg, 0.0)

    def _verb_gather(self, leg: Leg, el: ET.Element) -> None:
        prompt = sum(self.duration(child) for child in el)
        action = urljoin(leg.doc_url, el.get("action") or leg.doc_url)
        method = el.get("method", "POST")
        try:
            timeout = float(el.get("timeout", "5"))
        except ValueError:
            timeout = 5.0
        gen = leg.gen
        if leg.digits:
            digits = leg.digits.pop(0)
            params = {"Digits": digits, "FinishedOnKey": ""}
            self.carrier.later(leg, prompt + self.carrier.scaled(0.5),
                               lambda: self.fetch_and_load(leg, action, method, params, kind="gather")
                               if leg.gen == gen else None)
            return

        def timed_out() -> None:
            if leg.gen != gen:
                return
            if _bool(el.get("actionOnEmptyResult"), False):
                self.fetch_and_load(leg, action, method, {"Digits": ""}, kind="gather")
            else:
                self.step(leg)

        self.carrier.later(leg, prompt + self.carrier.scaled(timeout), timed_out)

    # ---- Enqueue and wait loops ------------------------------------------------------------------
    def _verb_enqueue(self, leg: Leg, el: ET.Element) -> None:
        name = (el.text or "").strip() or "default"
        action = el.get("action")
        leg.pending = {
            "kind": "enqueue", "action": urljoin(leg.doc_url, action) if action else None,
            "method": el.get("method", "POST"), "queue": name, "since": time.monotonic(),
        }
        self.queues.setdefault(name, []).append(leg.sid)
        self.queue_sids.setdefault(name, new_sid("QU"))
        leg.queue = name
        wait_url = el.get("waitUrl")
        if wait_url:
            self.start_wait(leg, urljoin(leg.doc_url, wait_url), el.get("waitUrlMethod", "POST"),
                            lambda: self._queue_params(leg))

    def _queue_params(self, leg: Leg) -> dict[str, str]:
        name = leg.queue or ""
        members = self.queues.get(name, [])
        since = (leg.pending or {}).get("since", time.monotonic())
        waits = self.queue_waits.get(name, [])
        return {
            "QueueSid": self.queue_sids.get(name, ""),
            "QueuePosition": str(members.index(leg.sid) + 1 if leg.sid in members else 0),
            "QueueTime": str(int(time.monotonic() - since)),
            "AvgQueueTime": str(int(sum(waits) / len(waits)) if waits else 0),
            "CurrentQueueSize": str(len(members)),
        }

    def _take_from_queue(self, leg: Leg) -> float:
        """Remove the leg from its queue; return how long it waited."""
        name = leg.queue
        leg.queue = None
        leg.wait_gen += 1
        if name and leg.sid in self.queues.get(name, []):
            self.queues[name].remove(leg.sid)
        waited = time.monotonic() - (leg.pending or {}).get("since", time.monotonic())
        if name:
            self.queue_waits.setdefault(name, []).append(waited)
        return waited

    def start_wait(self, leg: Leg, url: str, method: str, extra: Callable[[], dict[str, str]]) -> None:
        """Loop the wait TwiML at `url` until the leg's wait generation changes."""
        leg.wait_gen += 1
        self._wait_fetch(leg, leg.wait_gen, url, method, extra)

    def _wait_fetch(self, leg: Leg, gen: int, url: str, method: str, extra: Callable[[], dict[str, str]]) -> None:
        if leg.ended or leg.wait_gen != gen:
            return
        params = leg.voice_params()
        params.update(extra())

        def got(result: WebhookResult) -> None:
            if leg.ended or leg.wait_gen != gen:
                return
            next_url, total = url, 0.0
            if result.ok:
                try:
                    root = ET.fromstring(result.body)
                except ET.ParseError:
                    log.warning("unparsable wait TwiML for leg %s", leg.sid)
                    root = ET.Element("Response")
                for el in root:
                    leg.verbs.append("wait:" + el.tag)
                    if el.tag in ("Say", "Play", "Pause"):
                        if el.tag == "Play" and el.get("loop") == "0":
                            return  # music forever: nothing more to fetch
                        total += self.duration(el)
                    elif el.tag == "Redirect":
                        next_url = urljoin(url, (el.text or "").strip())
                        break
                    elif el.tag == "Hangup":
                        self.carrier.end_leg(leg, "completed")
                        return
                    elif el.tag == "Leave" and leg.queue:
                        self._take_from_queue(leg)
                        self.complete_pending(leg, {"QueueResult": "leave"})
                        return
                    else:
                        log.info("verb <%s> ignored in wait TwiML", el.tag)
            else:
                total = self.carrier.scaled(self.carrier.config.play_seconds)
            self.carrier.later(leg, max(total, MIN_WAIT_LOOP),
                               lambda: self._wait_fetch(leg, gen, next_url, method, extra))

        self.carrier.request(leg, "wait", url, params, method.upper(), got)

    # ---- Dial ------------------------------------------------------------------------------------
    def _verb_dial(self, leg: Leg, el: ET.Element) -> None:
        action = el.get("action")
        leg.pending = {"kind": "dial", "action": urljoin(leg.doc_url, action) if action else None,
                       "method": el.get("method", "POST")}
        nouns = [c for c in el if c.tag in ("Conference", "Number", "Client", "Sip", "Queue")]
        text = (el.text or "").strip()
        if not nouns and text:
            nouns = [ET.Element("Number")]
            nouns[0].text = text
        if not nouns:
            log.info("empty <Dial> on leg %s", leg.sid)
            self.complete_pending(leg, {"DialCallStatus": "failed"})
            return
        noun = nouns[0]
        if noun.tag == "Conference":
            self._dial_conference(leg, noun)
        elif noun.tag == "Queue":
            self._dial_queue(leg, noun)
        else:
            self._dial_party(leg, el, noun)

    def _dial_conference(self, leg: Leg, noun: ET.Element) -> None:
        name = (noun.text or "").strip()
        wait_url = noun.get("waitUrl")
        callback = noun.get("statusCallback")
        opts: dict[str, Any] = {
            "start": _bool(noun.get("startConferenceOnEnter"), True),
            "end": _bool(noun.get("endConferenceOnExit"), False),
            "muted": _bool(noun.get("muted"), False),
            "beep": noun.get("beep", "true"),
            "coach": noun.get("coach"),
            "wait_url": urljoin(leg.doc_url, wait_url) if wait_url else None,
            "wait_method": noun.get("waitMethod", "POST"),
            "status_callback": urljoin(leg.doc_url, callback) if callback else None,
            "status_callback_method": noun.get("statusCallbackMethod", "POST"),
            "status_callback_events": (noun.get("statusCallbackEvent") or "").replace(",", " ").split(),
        }
        self.carrier.conferences.join(leg, name, opts)

    def _dial_queue(self, leg: Leg, noun: ET.Element) -> None:
        name = (noun.text or "").strip()
        members = [s for s in self.queues.get(name, []) if not self.carrier.legs[s].ended]
        if not members:
            self.complete_pending(leg, {"DialCallStatus": "no-answer"})
            return
        member = self.carrier.legs[members[0]]
        self._take_from_queue(member)
        leg.bridge, member.bridge = member.sid, leg.sid
        self.carrier.start_talking(leg)
        self.carrier.start_talking(member)

    def _dial_party(self, leg: Leg, dial: ET.Element, noun: ET.Element) -> None:
        text = (noun.text or "").strip()
        identity = noun.find("Identity")
        if identity is not None:
            text = (identity.text or "").strip()
        target = "client:" + text if noun.tag == "Client" and not text.startswith("client:") else text
        try:
            timeout = int(dial.get("timeout", "30"))
        except ValueError:
            timeout = 30
        child = self.carrier.dial_child(
            leg, target, timeout=timeout, status_callback=noun.get("statusCallback"),
            status_callback_method=noun.get("statusCallbackMethod", "POST"),
            events=(noun.get("statusCallbackEvent") or "").replace(",", " ").split(),
            caller_id=dial.get("callerId"),
        )
        leg.dial_child = child.sid

    def child_answered(self, parent: Leg, child: Leg) -> None:
        """A <Dial> child picked up: bridge it to its parent."""
        if parent.ended:
            self.carrier.end_leg(child, "completed")
            return
        parent.bridge, child.bridge = child.sid, parent.sid
        self.carrier.start_talking(parent)
        self.carrier.start_talking(child)

    def child_ended(self, parent: Leg, child: Leg) -> None:
        """A <Dial> child ended (unanswered or after talking): the parent's Dial is over."""
        parent.dial_child = None
        if parent.bridge == child.sid:
            parent.bridge = None
        self.complete_pending(parent, {
            "DialCallStatus": child.status, "DialCallSid": child.sid, "DialCallDuration": str(child.duration()),
        })

    def conference_over(self, leg: Leg, conference_sid: str) -> None:
        """The conference the leg was in ended: go on after its <Dial>."""
        self.complete_pending(leg, {"DialCallStatus": "completed", "ConferenceSid": conference_sid})

    # ---- untangling ------------------------------------------------------------------------------
    def detach(self, leg: Leg, *, ending: bool = False) -> None:
        """Take the leg out of its conference, queue and bridge (on hang-up or redirect)."""
        leg.wait_gen += 1
        if leg.conference_sid:
            self.carrier.conferences.leave(leg)
        if leg.queue:
            self._take_from_queue(leg)
        partner = self.carrier.legs.get(leg.bridge or "")
        leg.bridge = None
        if partner is not None and partner.bridge == leg.sid:
            partner.bridge = None
            linked = partner.sid == leg.dial_child or partner.dial_child == leg.sid
            if not linked and not partner.ended:
                kind = (partner.pending or {}).get("kind")
                params = ({"QueueResult": "bridged"} if kind == "enqueue"
                          else {"DialCallStatus": "completed", "DialCallSid": leg.sid,
                                "DialCallDuration": str(leg.duration())})
                gen = partner.gen
                self.carrier.scheduler.call_soon(
                    lambda: self.complete_pending(partner, params) if partner.gen == gen else None)
        leg.pending = None if not ending else leg.pending
        if not ending:
            child = self.carrier.legs.get(leg.dial_child or "")
            leg.dial_child = None
            if child is not None and not child.ended:
                self.carrier.end_leg(child, "completed" if child.answered else "canceled")
            parent = self.carrier.legs.get(leg.parent_call_sid or "")
            if parent is not None and parent.dial_child == leg.sid and not parent.ended:
                self.child_ended(parent, leg)
