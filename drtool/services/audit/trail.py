"""Recording sensitive operations: ``audited`` writes a ``started`` record before the
operation and its outcome after it (``succeeded`` or ``failed``, with the exit code). No
started record, no operation; no outcome record, no success (exit 1 naming the audit write)."""

from __future__ import annotations

import contextlib
import getpass
import os
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from drtool import __version__
from drtool.catalog.records.audit import (
    PRIMARY_TRAIL,
    AuditActor,
    AuditRecord,
    AuditWriteError,
    Outcome,
    append_record,
    audit_id,
)
from drtool.errors import EXIT_FAILED, EXIT_OK, DrtoolError
from drtool.log import get_logger, redact
from drtool.pg.conn import parse_target
from drtool.services.context import Context

T = TypeVar("T")
log = get_logger("audit")


@dataclass
class AuditEntry:
    """What the operation adds as it goes: resolved items (``backup:<id>``, ``user:<id>``,
    ...), facts for ``detail`` (row counts), and a result's own exit code (verify problems)."""

    items: list[str]
    target: str | None
    detail: dict[str, Any] = field(default_factory=dict)
    exit_code: int = EXIT_OK

    def add(self, *items: str) -> None:
        for item in items:
            if item not in self.items:
                self.items.append(item)


def redact_dsn(dsn: str) -> str:
    """A database target as the trail names it: ``user@host:port/db``, never a password."""
    try:
        return parse_target(dsn).redacted()
    except DrtoolError:
        return "(unparsable DSN)"


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return f"uid {os.getuid()}"


def actor(ctx: Context) -> AuditActor:
    db_user: str | None = None
    with contextlib.suppress(Exception):
        db_user = ctx.database().user
    return AuditActor(os_user=_os_user(), host=socket.gethostname(), db_user=db_user)


def write_audit_record(
    ctx: Context,
    command: str,
    *,
    items: Iterable[str] = (),
    target: str | None = None,
    outcome: Outcome,
    exit_code: int | None = None,
    error: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> AuditRecord:
    """Append one record to the trail on ``ctx.storage``; AuditWriteError (exit 1) if not."""
    who = actor(ctx)

    def make(seq: int, prev: str | None, after: datetime | None) -> AuditRecord:
        now = ctx.clock()
        record_id = audit_id(now, after)
        return AuditRecord(
            id=record_id,
            seq=seq,
            at=max(now, after) if after is not None else now,
            command=command,
            actor=who,
            items=list(items),
            target=target,
            outcome=outcome,
            exit_code=exit_code,
            error=redact(error) if error is not None else None,
            detail=dict(detail or {}),
            prev_sha256=prev,
            trail=f"replica:{ctx.source}" if ctx.source else PRIMARY_TRAIL,
            tool_version=__version__,
        )

    return append_record(ctx.storage, make)


@contextlib.contextmanager
def audited(
    ctx: Context,
    command: str,
    *,
    items: Iterable[str] = (),
    target: str | None = None,
) -> Iterator[AuditEntry]:
    """Run the ``with`` body as an audited operation (see the module docstring).

    The started record comes first so that an operation that changes a database is never
    left half-done because the trail cannot be written: if it cannot, nothing starts. A
    failing operation still gets its record; its own error is the one raised (a failure to
    record it is logged). A succeeding one whose record cannot be written raises
    AuditWriteError: it must not report success."""
    entry = AuditEntry(list(items), target)
    write_audit_record(ctx, command, items=entry.items, target=target, outcome="started")
    try:
        yield entry
    except BaseException as exc:
        if isinstance(exc, DrtoolError):
            code, error = exc.exit_code, exc.message
        else:
            code, error = EXIT_FAILED, f"{type(exc).__name__}: {exc}"
        try:
            write_audit_record(
                ctx,
                command,
                items=entry.items,
                target=entry.target,
                outcome="failed",
                exit_code=code,
                error=error,
                detail=entry.detail,
            )
        except AuditWriteError as audit_exc:
            log.error("%s failed and its audit record was not written: %s", command, audit_exc)
        raise
    ok = entry.exit_code == EXIT_OK
    write_audit_record(
        ctx,
        command,
        items=entry.items,
        target=entry.target,
        outcome="succeeded" if ok else "failed",
        exit_code=entry.exit_code,
        detail=entry.detail,
    )


def audited_call(
    ctx: Context,
    command: str,
    fn: Callable[[], T],
    *,
    items: Iterable[str] = (),
    target: str | None = None,
) -> T:
    """``fn()`` as an audited operation: the one-line form of :func:`audited`."""
    with audited(ctx, command, items=items, target=target):
        return fn()
