"""The telephony port: the one adapter over `twilio.rest.Client` that every code path uses.

With `SWITCHBOARD_TWILIO_API_URL` set, the client's REST traffic goes to that local peer (the carrier
simulator in the demo and the tests) instead of api.twilio.com; everything else is the real library.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from config.settings import Settings

log = logging.getLogger(__name__)

PROGRESS_EVENTS = ["initiated", "ringing", "answered", "completed"]


class TelephonyError(RuntimeError):
    """The carrier refused or failed a request.

    `rejected` is True when the carrier answered with a 4xx: the request certainly had no effect. Otherwise
    (a 5xx, a timeout, a lost connection) it may or may not have been carried out.
    """

    def __init__(self, message: str, rejected: bool = False) -> None:
        super().__init__(message)
        self.rejected = rejected


class LocalPeerHttpClient(TwilioHttpClient):
    """Send every REST request to `base_url`, keeping path and query."""

    def __init__(self, base_url: str, **kwargs) -> None:
        super().__init__(**kwargs)
        parts = urlsplit(base_url)
        self._scheme, self._netloc = parts.scheme, parts.netloc

    def request(self, method, url, *args, **kwargs):  # noqa: D401 - same contract as the parent
        parts = urlsplit(url)
        url = urlunsplit((self._scheme, self._netloc, parts.path, parts.query, parts.fragment))
        return super().request(method, url, *args, **kwargs)


@dataclass(frozen=True)
class PlacedCall:
    sid: str
    status: str


@dataclass(frozen=True)
class ParticipantState:
    """A conference participant as the carrier answered after a change."""

    call_sid: str
    hold: bool
    muted: bool
    coaching: bool


class Telephony:
    """Place, end and read call legs through Twilio's REST API."""

    def __init__(self, settings: Settings, client: Client | None = None) -> None:
        self._settings = settings
        if client is None:
            settings.require("twilio_account_sid", "twilio_auth_token")
            http_client = (
                LocalPeerHttpClient(settings.twilio_api_url, timeout=10)
                if settings.twilio_api_url
                else TwilioHttpClient(timeout=10)
            )
            client = Client(settings.twilio_account_sid, settings.twilio_auth_token, http_client=http_client)
        self._client = client

    def url(self, path: str) -> str:
        """Return the absolute public URL of one of the hub's webhook paths."""
        return self._settings.public_url + path

    def dial(self, to: str, from_: str, voice_url: str, status_url: str, *, timeout: int = 20, **extra) -> PlacedCall:
        """Place an outbound leg whose TwiML comes from `voice_url`; its progress is posted to `status_url`."""
        try:
            call = self._client.calls.create(
                to=to,
                from_=from_,
                url=voice_url,
                method="POST",
                status_callback=status_url,
                status_callback_method="POST",
                status_callback_event=PROGRESS_EVENTS,
                timeout=timeout,
                **extra,
            )
        except TwilioRestException as exc:
            raise TelephonyError(f"placing a call failed: {exc}", rejected=400 <= exc.status < 500) from exc
        except (TwilioException, OSError) as exc:
            raise TelephonyError(f"placing a call failed: {exc}") from exc
        return PlacedCall(sid=call.sid, status=str(call.status))

    def hang_up(self, call_sid: str) -> None:
        """End a live leg; ending one that already ended is not an error."""
        try:
            self._client.calls(call_sid).update(status="completed")
        except TwilioRestException as exc:
            if exc.status == 404:
                return
            raise TelephonyError(f"hanging up {call_sid} failed: {exc}") from exc
        except (TwilioException, OSError) as exc:
            raise TelephonyError(f"hanging up {call_sid} failed: {exc}") from exc

    def redirect(self, call_sid: str, voice_url: str) -> None:
        """Make a live leg leave its current TwiML and fetch new TwiML from `voice_url`."""
        try:
            self._client.calls(call_sid).update(url=voice_url, method="POST")
        except (TwilioRestException, TwilioException, OSError) as exc:
            raise TelephonyError(f"redirecting {call_sid} failed: {exc}") from exc

    def find_calls(self, to: str, from_: str, since: datetime) -> list[PlacedCall]:
        """Calls to `to` from `from_` created since `since` (to settle an intent whose REST answer was lost)."""
        try:
            calls = self._client.calls.list(to=to, from_=from_, start_time_after=since, limit=20)
        except (TwilioRestException, TwilioException, OSError) as exc:
            raise TelephonyError(f"listing calls failed: {exc}") from exc
        return [PlacedCall(sid=call.sid, status=str(call.status)) for call in calls]

    def fetch_status(self, call_sid: str) -> str | None:
        """Return the carrier's current status of a leg, or None if it does not know the leg."""
        try:
            return str(self._client.calls(call_sid).fetch().status)
        except TwilioRestException as exc:
            if exc.status == 404:
                return None
            raise TelephonyError(f"reading {call_sid} failed: {exc}") from exc
        except (TwilioException, OSError) as exc:
            raise TelephonyError(f"reading {call_sid} failed: {exc}") from exc

    def update_participant(self, conference_sid: str, call_sid: str, *, hold: bool | None = None,
                           hold_url: str | None = None, muted: bool | None = None, coaching: bool | None = None,
                           call_sid_to_coach: str | None = None,
                           end_conference_on_exit: bool | None = None) -> ParticipantState:
        """Hold (with music from `hold_url`), mute, coach or release one participant of a conference.

        Setting the same value twice is harmless, so a retried action does no damage.
        """
        changes: dict = {}
        if hold is not None:
            changes["hold"] = hold
            if hold and hold_url:
                changes.update(hold_url=hold_url, hold_method="POST")
        if muted is not None:
            changes["muted"] = muted
        if coaching is not None:
            changes["coaching"] = coaching
        if call_sid_to_coach is not None:
            changes["call_sid_to_coach"] = call_sid_to_coach
        if end_conference_on_exit is not None:
            changes["end_conference_on_exit"] = end_conference_on_exit
        try:
            p = self._client.conferences(conference_sid).participants(call_sid).update(**changes)
        except TwilioRestException as exc:
            raise TelephonyError(f"updating participant {call_sid} failed: {exc}",
                                 rejected=400 <= exc.status < 500) from exc
        except (TwilioException, OSError) as exc:
            raise TelephonyError(f"updating participant {call_sid} failed: {exc}") from exc
        return ParticipantState(call_sid=call_sid, hold=bool(p.hold), muted=bool(p.muted), coaching=bool(p.coaching))

    def add_participant(self, conference_sid: str, to: str, from_: str, status_url: str, *, muted: bool = False,
                        coach: str | None = None, end_conference_on_exit: bool = False,
                        timeout: int = 20) -> PlacedCall:
        """Dial `to` into a running conference: muted to listen, coaching `coach` (an agent's leg) to whisper."""
        extra: dict = {"coaching": True, "call_sid_to_coach": coach} if coach else {}
        try:
            p = self._client.conferences(conference_sid).participants.create(
                from_=from_, to=to, muted=muted, start_conference_on_enter=True,
                end_conference_on_exit=end_conference_on_exit, beep="false", timeout=timeout,
                status_callback=status_url, status_callback_method="POST", status_callback_event=PROGRESS_EVENTS,
                **extra,
            )
        except TwilioRestException as exc:
            raise TelephonyError(f"adding a participant failed: {exc}", rejected=400 <= exc.status < 500) from exc
        except (TwilioException, OSError) as exc:
            raise TelephonyError(f"adding a participant failed: {exc}") from exc
        return PlacedCall(sid=p.call_sid, status=str(p.status))
