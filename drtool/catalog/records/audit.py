"""Audit records: ``audit/<yyyy>/<mm>/<id>.json``, one per sensitive operation,
hash-chained by ``prev_sha256``; ``audit/head.json`` names the newest record and is the one
object every appender compare-and-swaps, so concurrent writers form a single linear chain."""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from drtool.catalog.records.document import document_bytes, parse_record
from drtool.errors import NotFoundInStorage, OperationError
from drtool.ids import id_time, is_valid_id, new_id
from drtool.storage.base import Storage, check_key

AUDIT_PREFIX = "audit/"
AUDIT_HEAD_KEY = "audit/head.json"
RECORD_VERSION = 1
SUPPORTED_VERSIONS = (1,)
HEAD_FORMAT = "drtool-audit-head"
# Compare-and-swap attempts before giving up; each lost race means another record landed.
MAX_APPEND_ATTEMPTS = 200
Outcome = Literal["succeeded", "failed"]
# The trail a record belongs to: the primary's, or a replica's own (operations run with
# `--from NAME` record there); a replica holds both once `replicate` copied the primary's.
PRIMARY_TRAIL = "primary"


class AuditWriteError(OperationError):
    """The audit record could not be written: the operation must not report success."""


class AuditActor(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)

    os_user: str
    host: str
    db_user: str | None = None


class AuditRecord(BaseModel):
    """One sensitive operation and how it ended. ``seq`` counts from 1; ``prev_sha256`` is the
    SHA-256 of the previous record's exact stored bytes (None for the first)."""

    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)

    format: Literal["drtool-audit-record"] = "drtool-audit-record"
    version: int = RECORD_VERSION
    id: str
    seq: int = Field(ge=1)
    at: datetime
    started_at: datetime | None = None
    command: str
    actor: AuditActor
    items: list[str] = Field(default_factory=list)
    target: str | None = None
    outcome: Outcome
    exit_code: int | None = None
    error: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)
    prev_sha256: str | None = None
    trail: str = PRIMARY_TRAIL
    tool_version: str


def record_key(record_id: str) -> str:
    """``audit/<yyyy>/<mm>/<id>.json``, the month taken from the id's own time."""
    if not is_valid_id(record_id):
        raise OperationError(f"{record_id!r} is not a drtool id (audit record)")
    when = id_time(record_id)
    return check_key(f"{AUDIT_PREFIX}{when:%Y}/{when:%m}/{record_id}.json")


def is_record_key(key: str) -> bool:
    parts = key.split("/")
    return len(parts) == 4 and parts[0] == "audit" and key.endswith(".json")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse_audit_record(data: bytes, where: str) -> AuditRecord:
    return parse_record(AuditRecord, data, where, "audit record", supported=SUPPORTED_VERSIONS)


class Head(BaseModel):
    """The chain's head: the newest record's seq, key, hash and exact bytes (so a writer that
    died between moving the head and storing the record is completed by the next one)."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    format: Literal["drtool-audit-head"] = "drtool-audit-head"
    version: int = 1
    seq: int
    id: str
    key: str
    sha256: str
    record: str


def parse_head(data: bytes) -> Head:
    return parse_record(Head, data, AUDIT_HEAD_KEY, "audit head")


def read_head(storage: Storage) -> tuple[Head | None, str | None]:
    try:
        data, etag = storage.get_tagged(AUDIT_HEAD_KEY)
    except NotFoundInStorage:
        return None, None
    return parse_head(data), etag


def _ensure_stored(storage: Storage, head: Head) -> None:
    if not storage.exists(head.key):
        storage.put_bytes(head.key, head.record.encode("utf-8"))


# Builds the record for a given seq, previous hash and earliest time (monotonic ids).
RecordFactory = Callable[[int, str | None, datetime | None], AuditRecord]


def append_record(storage: Storage, make: RecordFactory) -> AuditRecord:
    """Append one record to the chain: read the head, build the record on it, move the head
    with a compare-and-swap (retrying on a lost race), then store the record (Object Lock
    applies to it; never to the head). Raises AuditWriteError naming the cause."""
    try:
        for attempt in range(MAX_APPEND_ATTEMPTS):
            head, etag = read_head(storage)
            if head is not None:
                _ensure_stored(storage, head)
            after = id_time(head.id) + timedelta(milliseconds=1) if head else None
            record = make(head.seq + 1 if head else 1, head.sha256 if head else None, after)
            data = document_bytes(record)
            key = record_key(record.id)
            new_head = Head(
                seq=record.seq,
                id=record.id,
                key=key,
                sha256=sha256_hex(data),
                record=data.decode("utf-8"),
            )
            if storage.put_if(AUDIT_HEAD_KEY, document_bytes(new_head), etag=etag) is not None:
                storage.put_bytes(key, data)
                return record
            # Lost the race: another record is now the head. Back off a little, with jitter,
            # so N writers do not retry in lockstep.
            time.sleep(random.uniform(0, 0.002 * min(attempt + 1, 20)))  # noqa: S311
    except AuditWriteError:
        raise
    except Exception as exc:
        why = exc.message if hasattr(exc, "message") else f"{type(exc).__name__}: {exc}"
        raise AuditWriteError(
            f"audit write failed: {why}", hint="check the storage; the audit trail is required"
        ) from exc
    raise AuditWriteError(
        f"audit write failed: lost the race for {AUDIT_HEAD_KEY} {MAX_APPEND_ATTEMPTS} times",
        hint="too many concurrent writers; retry",
    )


def audit_id(now: datetime, after: datetime | None) -> str:
    """A new record id no earlier than ``after``: ids (and keys) sort in chain order even
    when the writers' clocks disagree a little."""
    return new_id(max(now, after) if after is not None else now)
