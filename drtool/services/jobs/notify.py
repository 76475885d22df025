"""Webhook notifications: a JSON POST with a Slack-compatible ``text`` field, retried briefly on
daemon threads within one time budget; it never raises, and never carries nor logs a secret
(the webhook URL itself is one)."""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from drtool import __version__
from drtool.config import Config
from drtool.log import REDACTED, get_logger, redact

ATTEMPTS = 3
ATTEMPT_TIMEOUT_S = 5.0
BACKOFF_S = (0.5, 1.0)  # before the 2nd and 3rd attempts
# The most a job waits for its notifications, all events together; then it goes on without them.
TOTAL_BUDGET_S = 15.0
MAX_TEXT_CHARS = 3000

log = get_logger("notify")


@dataclass(frozen=True)
class Notice:
    """One notification: the event (``failure``, ``breach``, ``drill``, ``success``), the text
    people read, and machine-readable details (sent as the ``drtool`` member)."""

    event: str
    text: str
    details: Mapping[str, Any] = field(default_factory=dict)


def _scrub(value: Any, secrets: Sequence[str]) -> Any:
    if isinstance(value, str):
        for secret in sorted(secrets, key=len, reverse=True):
            if len(secret) >= 4:
                value = value.replace(secret, REDACTED)
        return redact(value)
    if isinstance(value, Mapping):
        return {str(_scrub(k, secrets)): _scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v, secrets) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return _scrub(str(value), secrets)


def body_of(notice: Notice, config: Config) -> bytes:
    """The POST body: ``{"text", "event", "drtool"}`` with every secret of ``config`` removed."""
    secrets = config.secrets()
    text = _scrub(notice.text, secrets)
    if len(text) > MAX_TEXT_CHARS:
        text = text[: MAX_TEXT_CHARS - 3] + "..."
    doc = {"text": text, "event": notice.event, "drtool": _scrub(dict(notice.details), secrets)}
    return json.dumps(doc, default=str).encode("utf-8")


def _retryable(status: int) -> bool:
    return status >= 500 or status in (408, 429)


class _Delivery:
    """Posts one body with retries until it is accepted, refused for good, or time is up."""

    def __init__(
        self, url: str, body: bytes, event: str, deadline: float, secrets: list[str]
    ) -> None:
        self.url, self.body, self.event, self.deadline = url, body, event, deadline
        self.secrets = secrets
        self.delivered = False
        self.thread = threading.Thread(target=self._run, name="drtool-notify", daemon=True)

    def _post(self, timeout: float) -> int:
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked in notify_all
            self.url,
            data=self.body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": f"drtool/{__version__}"},
        )
        with _OPENER.open(request, timeout=timeout) as response:
            response.read(65536)
            status: int = response.status
            return status

    def _attempt(self, timeout: float) -> tuple[bool, str]:
        """(final, why): final when accepted or refused for good; why is safe to log (a status
        or an error, never the URL: Slack-style URLs are secrets)."""
        try:
            status = self._post(timeout)
        except urllib.error.HTTPError as exc:
            return not _retryable(exc.code), f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            return False, _scrub(f"{type(exc).__name__}: {reason}", self.secrets)
        self.delivered = 200 <= status < 300
        return True, f"HTTP {status}"

    def _run(self) -> None:
        why, attempt = "no time left", 0
        while attempt < ATTEMPTS:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                break
            attempt += 1
            final, why = self._attempt(min(ATTEMPT_TIMEOUT_S, remaining))
            if final:
                break
            log.debug("webhook notification (%s) attempt %d failed: %s", self.event, attempt, why)
            if attempt < ATTEMPTS:
                time.sleep(max(0.0, min(BACKOFF_S[attempt - 1], self.deadline - time.monotonic())))
        if not self.delivered:
            log.warning(
                "webhook notification (%s) not delivered after %d attempt(s): %s",
                self.event,
                attempt,
                why,
            )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is refused (HTTP 3xx): urllib would re-send a POST as a GET elsewhere."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def notify_all(
    config: Config, notices: Sequence[Notice], *, budget_s: float = TOTAL_BUDGET_S
) -> list[bool]:
    """Send each notice whose event is in ``notifications.on`` to ``notifications.webhook_url``
    (in parallel); wait at most ``budget_s`` in all. Returns, per notice, whether it was
    delivered (False when not configured, not subscribed, refused or not answered in time)."""
    delivered = [False] * len(notices)
    secret_url = config.notifications.webhook_url
    wanted = [i for i, n in enumerate(notices) if n.event in config.notifications.on]
    if secret_url is None or not wanted:
        return delivered
    url = secret_url.get_secret_value()
    if not url.lower().startswith(("http://", "https://")):
        log.warning("notifications.webhook_url is not an http(s) URL: nothing sent")
        return delivered
    deadline = time.monotonic() + budget_s
    secrets = config.secrets()
    try:
        deliveries = {
            i: _Delivery(url, body_of(notices[i], config), notices[i].event, deadline, secrets)
            for i in wanted
        }
        for delivery in deliveries.values():
            delivery.thread.start()
        for i, delivery in deliveries.items():
            delivery.thread.join(max(0.0, deadline - time.monotonic()) + 0.5)
            if delivery.thread.is_alive():
                log.warning(
                    "webhook notification (%s) not answered within %.0fs: given up",
                    delivery.event,
                    budget_s,
                )
            delivered[i] = delivery.delivered
    except Exception as exc:  # a notification must never fail the job it reports on
        log.warning("webhook notification failed: %s", _scrub(f"{type(exc).__name__}", secrets))
    return delivered


def notify(config: Config, event: str, text: str, details: Mapping[str, Any]) -> bool:
    """One notification (see notify_all); True if the webhook accepted it."""
    return notify_all(config, [Notice(event, text, details)])[0]
