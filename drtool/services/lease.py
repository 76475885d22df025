"""A lease object per job in storage (``scheduler/<job>.json``): who runs it until when, and
when it last started. It keeps two containers sharing one storage from running the same job
at once (scheduled jobs; every `replicate` run, per replica), and tells a restarted scheduler
whether a fire time was missed. A lease whose holder provably no longer runs (same kernel boot
and PID namespace, no process with its pid and start time: killed with -9, say) is taken over
at once; otherwise a dead holder's lease frees itself when its time to live runs out.

Every write is conditional (``Storage.put_if``): acquiring creates the object only if it is
absent, or replaces a free or expired lease only if it is unchanged since it was read, so of
any number of schedulers racing for it exactly one wins. Renewals and the release replace
only the holder's own last write: a holder whose lease expired and was taken over can neither
extend nor clear the new holder's lease. Backup also holds its PostgreSQL advisory lock;
verify, prune and rehearse have only this lease."""

from __future__ import annotations

import json
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from drtool.errors import DrtoolError, NotFoundInStorage
from drtool.log import get_logger
from drtool.services.context import Context

LEASE_PREFIX = "scheduler/"
LEASE_FORMAT = "drtool-lease"
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
    # Where the holder runs (kernel boot, PID namespace, pid, process start), when known.
    process: dict[str, Any] = field(default_factory=dict)


def _start_ticks(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot, /proc/<pid>/stat field 22)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def process_identity() -> dict[str, Any]:
    """This process, told apart from any other on any machine: the kernel's boot id, the PID
    namespace (containers), the pid and its start time (a reused pid differs). Empty where
    /proc does not say (then no lease is ever judged stale by its process)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        pid_ns = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return {}
    pid = os.getpid()
    start = _start_ticks(pid)
    if start is None:
        return {}
    return {"boot_id": boot, "pid_ns": pid_ns, "pid": pid, "start": start}


def holder_is_gone(process: dict[str, Any]) -> bool:
    """True only when the holder provably no longer runs: same kernel boot and PID namespace
    as this process (so its pid means the same here), and no process with that pid and start
    time. Anything unknown counts as running: the lease then expires by its TTL."""
    mine = process_identity()
    if not mine or not process:
        return False
    if process.get("boot_id") != mine["boot_id"] or process.get("pid_ns") != mine["pid_ns"]:
        return False
    pid, start = process.get("pid"), process.get("start")
    if not isinstance(pid, int) or not isinstance(start, int) or pid == mine["pid"]:
        return False
    return _start_ticks(pid) != start


def read_lease(ctx: Context, job: str) -> LeaseState:
    try:
        data = ctx.storage.get_bytes(lease_key(job))
    except NotFoundInStorage:
        return LeaseState(None, None, None)
    return _parse_lease(data, lease_key(job))


def _load(data: bytes) -> dict[str, Any] | None:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def _generation(data: bytes) -> int:
    value = (_load(data) or {}).get("generation")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _parse_lease(data: bytes, key: str) -> LeaseState:
    """An unreadable lease counts as free (and is replaced only if still unchanged)."""
    doc = _load(data)
    if doc is None:
        log.warning("ignoring unreadable lease %s", key)
        return LeaseState(None, None, None)
    holder = doc.get("holder")
    process = doc.get("process")
    return LeaseState(
        holder if isinstance(holder, str) else None,
        _parse_time(doc.get("expires_at")),
        _parse_time(doc.get("last_started_at")),
        process if isinstance(process, dict) and isinstance(holder, str) else {},
    )


class Lease:
    """Held while one run of ``job`` runs; renewed on a thread; released after the run."""

    def __init__(
        self,
        ctx: Context,
        job: str,
        *,
        renew_every_seconds: float = RENEW_EVERY_SECONDS,
        on_lost: Callable[[str], None] | None = None,
    ) -> None:
        self.ctx = ctx
        self.job = job
        self.renew_every_seconds = renew_every_seconds
        self.on_lost = on_lost
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.started_at: datetime | None = None
        self._etag: str | None = None  # of our last write while we hold the lease
        self._generation = 0
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        # Set when a renewal finds the lease taken over (it had expired), or when renewals
        # failed for the lease's whole TTL (another scheduler may take it): the run is no
        # longer exclusive. ``on_lost`` is called with why (the runner aborts the run).
        self.lost = threading.Event()
        self._renewed_at: datetime | None = None

    def _doc(self, expires_at: datetime | None, holder: str | None) -> bytes:
        self._generation += 1
        doc = {
            "format": LEASE_FORMAT,
            "version": 1,
            "job": self.job,
            "holder": holder,
            "expires_at": expires_at.isoformat() if expires_at else None,
            "last_started_at": self.started_at.isoformat() if self.started_at else None,
            "generation": self._generation,
            "process": process_identity() if holder else None,
        }
        return json.dumps(doc, sort_keys=True).encode("utf-8")

    def _write_if(self, data: bytes, etag: str | None) -> str | None:
        """``put_if``; a write that landed although its answer was lost (and a retry then
        found the condition false) is recognised by reading back our own bytes."""
        key = lease_key(self.job)
        written = self.ctx.storage.put_if(key, data, etag=etag)
        if written is not None:
            return written
        try:
            current, current_etag = self.ctx.storage.get_tagged(key)
        except NotFoundInStorage:
            return None
        return current_etag if current == data else None

    def acquire(self) -> str | None:
        """None if acquired, else who holds it (and until when)."""
        now = self.ctx.clock()
        key = lease_key(self.job)
        try:
            data, etag = self.ctx.storage.get_tagged(key)
        except NotFoundInStorage:
            current, etag = LeaseState(None, None, None), None
        else:
            current = _parse_lease(data, key)
            self._generation = _generation(data)
        if current.holder and current.expires_at and current.expires_at > now:
            if not holder_is_gone(current.process):
                return f"{current.holder} until {current.expires_at.isoformat(timespec='seconds')}"
            # Its process is gone (killed, crashed): taken over now rather than at expiry,
            # still by a conditional write, so of several contenders one wins.
            log.info("lease of %s: its holder %s is gone; taking it over", self.job, current.holder)
        self.started_at = now
        self._etag = self._write_if(self._doc(now + LEASE_TTL, self.holder), etag)
        if self._etag is None:
            winner = read_lease(self.ctx, self.job).holder
            self.started_at = None
            return f"{winner or 'another scheduler'} (won the race for the lease)"
        self._renewed_at = now
        self._renewer = threading.Thread(target=self._renew, daemon=True, name=f"lease-{self.job}")
        self._renewer.start()
        return None

    def renew(self) -> bool:
        """Extend the lease; False (and the lease is no longer ours) if it was taken over."""
        if self._etag is None:
            return False
        now = self.ctx.clock()
        etag = self._write_if(self._doc(now + LEASE_TTL, self.holder), self._etag)
        if etag is None:
            self._etag = None
            try:
                holder = read_lease(self.ctx, self.job).holder
            except DrtoolError:
                holder = None
            self._lose(f"it expired and {holder or 'another scheduler'} holds it now")
            return False
        self._etag, self._renewed_at = etag, now
        return True

    def _lose(self, why: str) -> None:
        self.lost.set()
        log.warning("lost the lease of %s: %s", self.job, why)
        if self.on_lost is not None:
            self.on_lost(why)

    def _renew(self) -> None:
        while not self._stop.wait(self.renew_every_seconds):
            try:
                if not self.renew():
                    return
            except DrtoolError as exc:
                log.warning("could not renew the lease of %s: %s", self.job, exc.message)
                renewed = self._renewed_at
                if renewed is not None and self.ctx.clock() - renewed >= LEASE_TTL:
                    # Past its expiry another scheduler may take it at any moment.
                    self._lose(
                        f"no renewal succeeded for {LEASE_TTL.total_seconds():.0f}s "
                        f"(its time to live): {exc.message}"
                    )
                    return

    def release(self) -> None:
        """Free the lease (keeping ``last_started_at``) unless someone else holds it now."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        if self._etag is None:
            return
        try:
            released = self._write_if(self._doc(None, None), self._etag)
        except DrtoolError as exc:
            log.warning(
                "could not release the lease of %s (it expires by itself): %s",
                self.job,
                exc.message,
            )
            return
        if released is None:
            log.info("the lease of %s was taken over after it expired; left as it is", self.job)
        self._etag = None
