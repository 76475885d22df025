"""A lease object per scheduled job in storage (``scheduler/<job>.json``): who runs it until
when, and when it last started. It keeps two containers sharing one storage from running the
same job at once, and tells a restarted scheduler whether a fire time was missed.

Object stores have no compare-and-swap here, so acquiring is write-then-read-back: two writers
racing within one storage round trip can both believe they won, and only the later write
survives the read-back, so the earlier one backs off. Backup also holds its PostgreSQL
advisory lock, which has no such window."""

from __future__ import annotations

import json
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from drtool.errors import DrtoolError, NotFoundInStorage
from drtool.log import get_logger
from drtool.services.context import Context

LEASE_PREFIX = "scheduler/"
LEASE_TTL = timedelta(minutes=5)
RENEW_EVERY_SECONDS = 60.0

log = get_logger("scheduler")


def lease_key(job: str) -> str:
    return f"{LEASE_PREFIX}{job}.json"


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class LeaseState:
    holder: str | None
    expires_at: datetime | None
    last_started_at: datetime | None


def read_lease(ctx: Context, job: str) -> LeaseState:
    try:
        doc = json.loads(ctx.storage.get_bytes(lease_key(job)))
    except NotFoundInStorage:
        return LeaseState(None, None, None)
    except (ValueError, UnicodeDecodeError):
        log.warning("ignoring unreadable lease %s", lease_key(job))
        return LeaseState(None, None, None)
    if not isinstance(doc, dict):
        return LeaseState(None, None, None)
    holder = doc.get("holder")
    return LeaseState(
        holder if isinstance(holder, str) else None,
        _parse_time(doc.get("expires_at")),
        _parse_time(doc.get("last_started_at")),
    )


class Lease:
    """Held while one run of ``job`` runs; renewed on a thread; released after the run."""

    def __init__(self, ctx: Context, job: str) -> None:
        self.ctx = ctx
        self.job = job
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.started_at: datetime | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def _write(self, expires_at: datetime | None, holder: str | None) -> None:
        doc = {
            "job": self.job,
            "holder": holder,
            "expires_at": expires_at.isoformat() if expires_at else None,
            "last_started_at": self.started_at.isoformat() if self.started_at else None,
        }
        self.ctx.storage.put_bytes(lease_key(self.job), json.dumps(doc).encode("utf-8"))

    def acquire(self) -> str | None:
        """None if acquired, else who holds it (and until when)."""
        now = self.ctx.clock()
        current = read_lease(self.ctx, self.job)
        if current.holder and current.expires_at and current.expires_at > now:
            return f"{current.holder} until {current.expires_at.isoformat(timespec='seconds')}"
        self.started_at = now
        self._write(now + LEASE_TTL, self.holder)
        confirmed = read_lease(self.ctx, self.job)
        if confirmed.holder != self.holder:
            return f"{confirmed.holder} (won the race for the lease)"
        self._renewer = threading.Thread(target=self._renew, daemon=True, name=f"lease-{self.job}")
        self._renewer.start()
        return None

    def _renew(self) -> None:
        while not self._stop.wait(RENEW_EVERY_SECONDS):
            try:
                self._write(self.ctx.clock() + LEASE_TTL, self.holder)
            except DrtoolError as exc:
                log.warning("could not renew the lease of %s: %s", self.job, exc.message)

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        try:
            self._write(None, None)
        except DrtoolError as exc:
            log.warning(
                "could not release the lease of %s (it expires by itself): %s",
                self.job,
                exc.message,
            )
