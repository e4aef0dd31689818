"""Signed, form-encoded webhooks to the hub, sent from a small thread pool so the scheduler never blocks."""
from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

import requests
from twilio.request_validator import RequestValidator

log = logging.getLogger(__name__)


@dataclass
class WebhookResult:
    """What came back from one webhook request (status 0 means the request itself failed)."""

    url: str
    status: int
    body: str
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True for a 2xx answer."""
        return 200 <= self.status < 300


def _path(url: str) -> str:
    """Return only the path of a URL (for logs: queries may carry phone numbers)."""
    return urlsplit(url).path


class WebhookSender:
    """Signs requests exactly like Twilio (X-Twilio-Signature) and sends them off the scheduler thread."""

    def __init__(self, auth_token: str, *, workers: int = 8, timeout: float = 15.0) -> None:
        self._validator = RequestValidator(auth_token)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sim-webhook")
        self._session = requests.Session()
        self._timeout = timeout
        self._closed = False

    def sign(self, url: str, params: dict[str, str]) -> str:
        """Return the X-Twilio-Signature for a POST of `params` to `url`."""
        return self._validator.compute_signature(url, params)

    def send(
        self,
        url: str,
        params: dict[str, str],
        method: str = "POST",
        on_done: Callable[[WebhookResult], None] | None = None,
        *,
        token: str | None = None,
    ) -> None:
        """Queue one signed request; `on_done` (if given) receives the result on a pool thread."""
        if self._closed:
            return
        token = token or secrets.token_hex(16)
        try:
            self._pool.submit(self._deliver, url, dict(params), method.upper(), on_done, token)
        except RuntimeError:  # pool already shut down
            log.debug("webhook dropped after shutdown: %s", _path(url))

    def request_sync(self, url: str, params: dict[str, str], method: str = "POST", token: str | None = None) -> WebhookResult:
        """Send one signed request on the calling thread and return the result."""
        return self._request(url, dict(params), method.upper(), token or secrets.token_hex(16))

    def _deliver(self, url, params, method, on_done, token) -> None:
        result = self._request(url, params, method, token)
        if on_done is not None:
            try:
                on_done(result)
            except Exception:
                log.exception("webhook completion handler failed for %s", _path(url))

    def _request(self, url: str, params: dict[str, str], method: str, token: str) -> WebhookResult:
        headers = {
            "I-Twilio-Idempotency-Token": token,
            "User-Agent": "TwilioProxy/1.1",
            "Accept": "*/*",
        }
        try:
            if method == "GET":
                parts = urlsplit(url)
                query = "&".join(q for q in (parts.query, urlencode(params)) if q)
                full = urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
                headers["X-Twilio-Signature"] = self._validator.compute_signature(full, {})
                resp = self._session.get(full, headers=headers, timeout=self._timeout)
            else:
                headers["X-Twilio-Signature"] = self._validator.compute_signature(url, params)
                resp = self._session.post(url, data=params, headers=headers, timeout=self._timeout)
        except requests.RequestException as exc:
            log.warning("webhook %s %s failed: %s", method, _path(url), type(exc).__name__)
            return WebhookResult(url, 0, "", str(exc))
        if not 200 <= resp.status_code < 300:
            log.warning("webhook %s %s answered HTTP %s", method, _path(url), resp.status_code)
        return WebhookResult(url, resp.status_code, resp.text)

    def close(self) -> None:
        """Stop accepting webhooks and wait for in-flight ones."""
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._session.close()
