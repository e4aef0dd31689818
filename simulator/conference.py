"""Conference rooms: participants, start/end rules and conference status callbacks."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from simulator.legs import Leg
from simulator.wire import API_VERSION, new_sid, rfc2822, utcnow

if TYPE_CHECKING:
    from simulator.carrier import Carrier

log = logging.getLogger(__name__)

SHORT_EVENT = {
    "conference-start": "start", "conference-end": "end",
    "participant-join": "join", "participant-leave": "leave",
    "participant-hold": "hold", "participant-unhold": "hold",
    "participant-mute": "mute", "participant-unmute": "mute",
    "participant-modify": "modify",
}


def _tf(value: bool) -> str:
    """Twilio's lowercase booleans."""
    return "true" if value else "false"


@dataclass
class Participant:
    """One leg in a conference."""

    call_sid: str
    start: bool
    end: bool
    muted: bool = False
    hold: bool = False
    coaching: bool = False
    call_sid_to_coach: str | None = None
    date_created: datetime = field(default_factory=utcnow)
    date_updated: datetime = field(default_factory=utcnow)


@dataclass
class Conference:
    """A room named by FriendlyName."""

    sid: str
    account_sid: str
    friendly_name: str
    status: str = "init"  # init | in-progress | completed
    participants: dict[str, Participant] = field(default_factory=dict)
    seq: int = 0
    callback: str | None = None
    callback_method: str = "POST"
    callback_events: set[str] = field(default_factory=set)
    date_created: datetime = field(default_factory=utcnow)
    date_updated: datetime = field(default_factory=utcnow)
    reason_ended: str | None = None
    ended_by: str | None = None

    @property
    def uri(self) -> str:
        """The REST URI of the conference."""
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Conferences/{self.sid}.json"

    def resource(self) -> dict[str, Any]:
        """Twilio's JSON conference resource."""
        base = self.uri[: -len(".json")]
        return {
            "account_sid": self.account_sid, "date_created": rfc2822(self.date_created),
            "date_updated": rfc2822(self.date_updated), "api_version": API_VERSION,
            "friendly_name": self.friendly_name, "region": "us1", "sid": self.sid, "status": self.status,
            "uri": self.uri, "reason_conference_ended": self.reason_ended,
            "call_sid_ending_conference": self.ended_by,
            "subresource_uris": {"participants": base + "/Participants.json", "recordings": base + "/Recordings.json"},
        }

    def participant_resource(self, p: Participant) -> dict[str, Any]:
        """Twilio's JSON participant resource."""
        return {
            "account_sid": self.account_sid, "call_sid": p.call_sid, "label": None,
            "call_sid_to_coach": p.call_sid_to_coach, "coaching": p.coaching, "conference_sid": self.sid,
            "date_created": rfc2822(p.date_created), "date_updated": rfc2822(p.date_updated),
            "end_conference_on_exit": p.end, "muted": p.muted, "hold": p.hold,
            "start_conference_on_enter": p.start, "status": "connected", "queue_time": "0",
            "uri": f"{self.uri[: -len('.json')]}/Participants/{p.call_sid}.json",
        }


class ConferenceManager:
    """All conferences of the account; methods run under the carrier lock."""

    def __init__(self, carrier: "Carrier") -> None:
        self.carrier = carrier
        self.by_sid: dict[str, Conference] = {}
        self.active: dict[str, Conference] = {}

    def list(self, friendly_name: str | None = None, status: str | None = None) -> list[Conference]:
        """Conferences, newest first, optionally filtered."""
        rooms = sorted(self.by_sid.values(), key=lambda c: c.date_created, reverse=True)
        return [c for c in rooms
                if (friendly_name is None or c.friendly_name == friendly_name)
                and (status is None or c.status == status)]

    def join(self, leg: Leg, name: str, opts: dict[str, Any]) -> Conference:
        """Put a leg into the room called `name`, creating the room if needed."""
        conf = self.active.get(name)
        if conf is None:
            conf = Conference(sid=new_sid("CF"), account_sid=self.carrier.config.account_sid, friendly_name=name)
            self.active[name] = conf
            self.by_sid[conf.sid] = conf
            log.info("conference %s created", conf.sid)
        if conf.callback is None and opts.get("status_callback"):
            conf.callback = opts["status_callback"]
            conf.callback_method = str(opts.get("status_callback_method") or "POST").upper()
            conf.callback_events = set(opts.get("status_callback_events") or [])
        p = Participant(call_sid=leg.sid, start=bool(opts.get("start", True)), end=bool(opts.get("end", False)),
                        muted=bool(opts.get("muted", False)), coaching=bool(opts.get("coach")),
                        call_sid_to_coach=opts.get("coach") or None)
        conf.participants[leg.sid] = p
        leg.conference_sid = conf.sid
        self.emit(conf, "participant-join", leg, p)
        if conf.status == "in-progress":
            self.carrier.start_talking(leg)
        elif len(conf.participants) >= 2 and any(q.start for q in conf.participants.values()):
            self.start(conf, leg)
        elif opts.get("wait_url"):
            self.carrier.twiml.start_wait(leg, opts["wait_url"], str(opts.get("wait_method") or "POST"),
                                          lambda: {"ConferenceSid": conf.sid, "FriendlyName": conf.friendly_name})
        return conf

    def start(self, conf: Conference, by: Leg) -> None:
        """The conference starts: waiting participants stop hearing the hold loop and start talking."""
        conf.status = "in-progress"
        conf.date_updated = utcnow()
        log.info("conference %s started", conf.sid)
        self.emit(conf, "conference-start", by, None)
        for sid in list(conf.participants):
            leg = self.carrier.legs[sid]
            leg.wait_gen += 1
            self.carrier.start_talking(leg)

    def leave(self, leg: Leg) -> None:
        """The leg leaves its conference (hang-up or redirect); may end the conference."""
        conf = self.by_sid.get(leg.conference_sid or "")
        leg.conference_sid = None
        leg.wait_gen += 1
        if conf is None or conf.status == "completed":
            return
        p = conf.participants.pop(leg.sid, None)
        if p is None:
            return
        self.emit(conf, "participant-leave", leg, p)
        if p.end:
            self.end(conf, "participant-with-end-conference-on-exit-left", leg)
        elif not conf.participants:
            self.end(conf, "last-participant-left", leg)

    def end(self, conf: Conference, reason: str, by: Leg | None) -> None:
        """End the conference: the remaining legs go on after their <Dial> (usually hanging up)."""
        if conf.status == "completed":
            return
        conf.status = "completed"
        conf.reason_ended = reason
        conf.ended_by = by.sid if by is not None else None
        conf.date_updated = utcnow()
        if self.active.get(conf.friendly_name) is conf:
            del self.active[conf.friendly_name]
        log.info("conference %s ended: %s", conf.sid, reason)
        remaining = list(conf.participants.items())
        conf.participants.clear()
        for sid, p in remaining:
            leg = self.carrier.legs[sid]
            leg.conference_sid = None
            leg.wait_gen += 1
            self.emit(conf, "participant-leave", leg, p)
        self.emit(conf, "conference-end", by, None)
        for sid, _ in remaining:
            leg = self.carrier.legs[sid]
            if not leg.ended:
                self.carrier.twiml.conference_over(leg, conf.sid)

    def update_participant(self, conf: Conference, p: Participant, form: Any) -> None:
        """Apply Hold (with its HoldUrl music), Muted, Coaching/CallSidToCoach and EndConferenceOnExit."""
        leg = self.carrier.legs.get(p.call_sid)

        def flag(name: str) -> bool | None:
            value = form.get(name)
            return None if value is None else str(value).lower() == "true"

        hold, muted, coaching, end = flag("Hold"), flag("Muted"), flag("Coaching"), flag("EndConferenceOnExit")
        if hold is not None and hold != p.hold:
            p.hold = hold
            if leg is not None and not leg.ended:
                if hold and form.get("HoldUrl"):
                    # the held party hears the hold music, fetched from HoldUrl and looped like a waitUrl
                    self.carrier.twiml.start_wait(leg, str(form.get("HoldUrl")), str(form.get("HoldMethod") or "POST"),
                                                  lambda: {"ConferenceSid": conf.sid, "FriendlyName": conf.friendly_name})
                elif not hold:
                    leg.wait_gen += 1  # the music stops
            self.emit(conf, "participant-hold" if hold else "participant-unhold", leg, p)
        if muted is not None and muted != p.muted:
            p.muted = muted
            self.emit(conf, "participant-mute" if muted else "participant-unmute", leg, p)
        if end is not None:
            p.end = end
        if coaching is not None or form.get("CallSidToCoach"):
            if coaching is not None:
                p.coaching = coaching
            if form.get("CallSidToCoach"):
                p.call_sid_to_coach = form.get("CallSidToCoach")
            if not p.coaching:
                p.call_sid_to_coach = None
            self.emit(conf, "participant-modify", leg, p)
        p.date_updated = utcnow()

    def add_participant(self, conf: Conference, form: Any) -> Leg:
        """Dial a new leg (REST Participants create) that joins `conf` when it answers."""
        coach = form.get("CallSidToCoach") if str(form.get("Coaching") or "").lower() == "true" else None
        if coach is not None and coach not in conf.participants:
            raise ValueError("CallSidToCoach is not a participant of this conference")
        leg = self.carrier.create_participant_leg(form, {
            "conference_sid": conf.sid,
            "start": str(form.get("StartConferenceOnEnter") or "true").lower() == "true",
            "end": str(form.get("EndConferenceOnExit") or "false").lower() == "true",
            "muted": str(form.get("Muted") or "false").lower() == "true",
            "coach": coach,
        })
        return leg

    def join_added(self, leg: Leg) -> None:
        """A participant leg the REST API dialled answered: into its conference, or hang up if it is over."""
        opts = leg.join_conference or {}
        conf = self.by_sid.get(opts.get("conference_sid", ""))
        if conf is None or conf.status == "completed":
            self.carrier.end_leg(leg, "completed")
            return
        self.join(leg, conf.friendly_name, opts)

    def pending_resource(self, conf: Conference, leg: Leg) -> dict[str, Any]:
        """The participant resource Twilio answers a create with: the leg is still being dialled."""
        opts = leg.join_conference or {}
        p = Participant(call_sid=leg.sid, start=bool(opts.get("start")), end=bool(opts.get("end")),
                        muted=bool(opts.get("muted")), coaching=bool(opts.get("coach")),
                        call_sid_to_coach=opts.get("coach"))
        resource = conf.participant_resource(p)
        resource["status"] = "queued"
        return resource

    def emit(self, conf: Conference, event: str, leg: Leg | None, p: Participant | None) -> None:
        """Post one conference event if the room's statusCallbackEvent asked for it."""
        if not conf.callback or SHORT_EVENT.get(event) not in conf.callback_events:
            return
        params = {
            "AccountSid": conf.account_sid, "ConferenceSid": conf.sid, "FriendlyName": conf.friendly_name,
            "StatusCallbackEvent": event, "SequenceNumber": str(conf.seq), "Timestamp": rfc2822(utcnow()) or "",
        }
        conf.seq += 1
        if p is not None:
            params.update(
                CallSid=p.call_sid, Muted=_tf(p.muted), Hold=_tf(p.hold), Coaching=_tf(p.coaching),
                EndConferenceOnExit=_tf(p.end), StartConferenceOnEnter=_tf(p.start),
            )
        if event == "conference-end":
            params["ReasonConferenceEnded"] = conf.reason_ended or ""
            if conf.ended_by:
                params["CallSidEndingConference"] = conf.ended_by
        self.carrier.request(leg, "conference", conf.callback, params, conf.callback_method)
