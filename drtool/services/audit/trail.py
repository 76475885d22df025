"""Recording sensitive operations: ``audited`` checks the trail can be read before the
operation, and appends one record with its outcome (``succeeded`` or ``failed``, with the
exit code) after it, also on failure. No record, no success (exit 1 naming the audit write)."""

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
    AUDIT_HEAD_KEY,
    PRIMARY_TRAIL,
    AuditActor,
    AuditRecord,
    AuditWriteError,
    Outcome,
    append_record,
    audit_id,
    parse_head,
)
from drtool.errors import EXIT_FAILED, EXIT_OK, DrtoolError, NotFoundInStorage, UsageError
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
    started_at: datetime | None = None,
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
            started_at=started_at,
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

    Before the body: ``check_trail``, so a trail that cannot be read or written stops the
    operation before it changes, decrypts or hands out anything. After it: one record with
    the outcome, written before the command reports; a succeeding operation whose record cannot be
    written raises AuditWriteError (exit 1): it must not report success. The operation has
    then completed (never half-done: the record is not written in its middle). A failing
    operation gets its record too, and its own error is the one raised (a failure to record
    it is logged). A usage error (exit 2) changed and decrypted nothing (SPEC "Exit codes")
    and is not recorded, as ``run_job`` does not record it."""
    entry = AuditEntry(list(items), target)
    check_trail(ctx)
    started_at = ctx.clock()
    try:
        yield entry
    except BaseException as exc:
        if isinstance(exc, UsageError):
            raise
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
                started_at=started_at,
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
        started_at=started_at,
    )


def check_trail(ctx: Context) -> None:
    """Before an operation starts: read the trail's head and rewrite it unchanged (a
    conditional write of the same bytes), so a storage that cannot be read or written stops
    the operation before it changes, decrypts or hands out anything (AuditWriteError, exit 1).
    A lost race means another writer moved the head: the storage is answering, go ahead."""
    try:
        try:
            data, etag = ctx.storage.get_tagged(AUDIT_HEAD_KEY)
        except NotFoundInStorage:
            return  # an empty trail: the first append creates the head
        parse_head(data)
        ctx.storage.put_if(AUDIT_HEAD_KEY, data, etag=etag)
    except Exception as exc:
        why = exc.message if isinstance(exc, DrtoolError) else f"{type(exc).__name__}: {exc}"
        raise AuditWriteError(
            f"audit write failed: the audit trail cannot be read and written: {why}",
            hint="check the storage and its permissions on audit/; nothing was started",
        ) from exc


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
