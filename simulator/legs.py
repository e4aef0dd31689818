"""Call legs: Twilio's call resource plus the simulation state the carrier keeps for each leg."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from xml.etree.ElementTree import Element

from simulator.scheduler import Timer
from simulator.wire import API_VERSION, rfc2822, utcnow

FINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})


@dataclass
class Leg:
    """One call leg as Twilio sees it, plus what the simulated party on it will do."""

    sid: str
    account_sid: str
    to: str
    from_: str
    direction: str  # inbound | outbound-api | outbound-dial
    role: str  # caller | softphone | person | machine
    status: str = "queued"
    parent_call_sid: str | None = None
    date_created: datetime = field(default_factory=utcnow)
    date_updated: datetime = field(default_factory=utcnow)
    start_time: datetime | None = None
    end_time: datetime | None = None
    created_mono: float = field(default_factory=time.monotonic)
    answered_mono: float | None = None
    ended_mono: float | None = None
    url: str | None = None
    method: str = "POST"
    twiml: str | None = None
    status_callback: str | None = None
    status_callback_method: str = "POST"
    status_callback_events: set[str] = field(default_factory=set)
    timeout: int = 60
    machine_detection: str | None = None
    async_amd: bool = False
    async_amd_callback: str | None = None
    async_amd_callback_method: str = "POST"
    answered_by: str | None = None
    seq: int = 0
    # what the simulated party does
    talk_seconds: float | None = None
    patience_seconds: float | None = None
    digits: list[str] = field(default_factory=list)
    # interpreter state
    program: list[Element] = field(default_factory=list)
    pc: int = 0
    gen: int = 0
    wait_gen: int = 0
    doc_url: str = ""
    pending: dict[str, Any] | None = None  # the verb the leg is blocked in (dial, enqueue, gather)
    conference_sid: str | None = None
    join_conference: dict[str, Any] | None = None  # a participant the REST API added: where it goes on answer
    queue: str | None = None
    bridge: str | None = None
    dial_child: str | None = None
    talking: bool = False
    timers: list[Timer] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    verbs: list[str] = field(default_factory=list)

    @property
    def ended(self) -> bool:
        """True once the leg has a final status."""
        return self.status in FINAL_STATUSES

    @property
    def answered(self) -> bool:
        """True once the leg was answered (it has a start time)."""
        return self.answered_mono is not None

    def duration(self) -> int:
        """Whole seconds between answer and end (0 if never answered)."""
        if self.answered_mono is None:
            return 0
        end = self.ended_mono if self.ended_mono is not None else time.monotonic()
        return max(0, int(round(end - self.answered_mono)))

    def voice_params(self) -> dict[str, str]:
        """The parameters Twilio sends with every voice request about this leg."""
        params = {
            "CallSid": self.sid,
            "AccountSid": self.account_sid,
            "From": self.from_,
            "To": self.to,
            "Caller": self.from_,
            "Called": self.to,
            "CallStatus": self.status,
            "Direction": self.direction,
            "ApiVersion": API_VERSION,
        }
        if self.parent_call_sid:
            params["ParentCallSid"] = self.parent_call_sid
        if self.answered_by:
            params["AnsweredBy"] = self.answered_by
        return params

    def resource(self) -> dict[str, Any]:
        """Twilio's JSON call resource."""
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{self.sid}.json"
        base = uri[: -len(".json")]
        return {
            "sid": self.sid,
            "date_created": rfc2822(self.date_created),
            "date_updated": rfc2822(self.date_updated),
            "parent_call_sid": self.parent_call_sid,
            "account_sid": self.account_sid,
            "to": self.to,
            "to_formatted": self.to,
            "from": self.from_,
            "from_formatted": self.from_,
            "phone_number_sid": None,
            "status": self.status,
            "start_time": rfc2822(self.start_time),
            "end_time": rfc2822(self.end_time),
            "duration": str(self.duration()) if self.ended else None,
            "price": None,
            "price_unit": "USD",
            "direction": self.direction,
            "answered_by": self.answered_by,
            "api_version": API_VERSION,
            "forwarded_from": None,
            "group_sid": None,
            "caller_name": None,
            "queue_time": "0",
            "trunk_sid": None,
            "uri": uri,
            "subresource_uris": {
                "notifications": base + "/Notifications.json",
                "recordings": base + "/Recordings.json",
                "payments": base + "/Payments.json",
                "events": base + "/Events.json",
                "siprec": base + "/Siprec.json",
                "streams": base + "/Streams.json",
                "user_defined_message_subscriptions": base + "/UserDefinedMessageSubscriptions.json",
                "user_defined_messages": base + "/UserDefinedMessages.json",
            },
        }

    def snapshot(self) -> dict[str, Any]:
        """The simulator's view of the leg for /sim/calls/<sid>."""
        return {
            "call_sid": self.sid,
            "status": self.status,
            "direction": self.direction,
            "role": self.role,
            "parent_call_sid": self.parent_call_sid,
            "answered_by": self.answered_by,
            "talking": self.talking,
            "conference_sid": self.conference_sid,
            "queue": self.queue,
            "duration": self.duration(),
            "events": [dict(e) for e in self.events],
            "verbs": list(self.verbs),
        }
