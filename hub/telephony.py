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
