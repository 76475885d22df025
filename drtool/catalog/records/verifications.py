"""Verification records: ``verifications/<item-id>/<time>.json``, one small JSON document per
verify run of an item (written on success and on failure), and finding the newest ones."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from drtool.catalog.records.document import document_bytes, parse_record, readable
from drtool.errors import UsageError
from drtool.ids import is_valid_id
from drtool.storage.base import Storage, check_key, ordered_map

VERIFICATIONS_PREFIX = "verifications/"
RECORD_FORMAT = "drtool-verification"
RECORD_VERSION = 1
SUPPORTED_VERSIONS = (1,)
RECORD_SUFFIX = ".json"
# Concurrent reads when `list` looks up the newest record of many items (S3 round trips).
LOOKUP_CONCURRENCY = 8


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an item: the object (or ``manifest.json``), the 0-based age chunk
    where known, what is wrong, and what to do about it."""

    object: str
    chunk: int | None
    problem: str
    hint: str | None = None


class VerificationRecord(BaseModel):
    """What one verify run found for one item."""

    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)

    format: Literal["drtool-verification"] = "drtool-verification"
    version: int = RECORD_VERSION
    id: str  # the record's own id: the time of the run
    item_id: str
    kind: str
    at: datetime
    deep: bool
    ok: bool
    problems: list[Problem] = Field(default_factory=list)
    seconds: float = Field(ge=0)
    bytes: int = Field(ge=0)
    plain_bytes: int = Field(default=0, ge=0)
    tool_version: str


@dataclass(frozen=True)
class RecordRef:
    """Where one record is stored, known from its key alone (no read)."""

    item_id: str
    record_id: str
    key: str


def _checked_id(value: str, what: str) -> str:
    if not is_valid_id(value):
        raise UsageError(f"{what} {value!r} is not a drtool id")
    return value


def item_prefix(item_id: str) -> str:
    return check_key(VERIFICATIONS_PREFIX + _checked_id(item_id, "item id")) + "/"


def record_key(item_id: str, record_id: str) -> str:
    return check_key(item_prefix(item_id) + _checked_id(record_id, "record id") + RECORD_SUFFIX)


def _ref(key: str) -> RecordRef | None:
    """The ref of a record key, or None for anything else under the prefix."""
    parts = key.removeprefix(VERIFICATIONS_PREFIX).split("/")
    if len(parts) != 2 or not parts[1].endswith(RECORD_SUFFIX):
        return None
    item_id, record_id = parts[0], parts[1].removesuffix(RECORD_SUFFIX)
    if not (is_valid_id(item_id) and is_valid_id(record_id)):
        return None
    return RecordRef(item_id, record_id, key)


def parse_verification(data: bytes, where: str) -> VerificationRecord:
    """A stored record; anything malformed is an IntegrityError, a newer version a UsageError."""
    return parse_record(
        VerificationRecord, data, where, "verification record", supported=SUPPORTED_VERSIONS
    )


def write_verification(storage: Storage, record: VerificationRecord) -> str:
    """Store ``record`` under ``verifications/<item_id>/<id>.json``; returns the key."""
    key = record_key(record.item_id, record.id)
    storage.put_bytes(key, document_bytes(record))
    return key


def verifications(storage: Storage, item_id: str | None = None) -> list[RecordRef]:
    """Refs of every stored record (of one item, if given), oldest first; nothing is read."""
    prefix = item_prefix(item_id) if item_id is not None else VERIFICATIONS_PREFIX
    refs = [ref for info in storage.list(prefix) if (ref := _ref(info.key)) is not None]
    refs.sort(key=lambda r: (r.record_id, r.item_id))
    return refs


def _newest_readable(storage: Storage, refs: list[RecordRef]) -> VerificationRecord | None:
    # Normally reads exactly one record; a damaged newest one falls back to the one before.
    keys = (ref.key for ref in reversed(refs))
    return next(readable(storage, keys, parse_verification), None)


def last_verification(storage: Storage, item_id: str) -> VerificationRecord | None:
    """The newest readable record of ``item_id``, or None if it was never verified."""
    if not is_valid_id(item_id):
        return None
    return _newest_readable(storage, verifications(storage, item_id))


def last_verifications(
    storage: Storage, item_ids: Iterable[str]
) -> dict[str, VerificationRecord | None]:
    """``last_verification`` of several items, looked up concurrently."""
    ids = list(dict.fromkeys(item_ids))
    found = ordered_map(lambda i: last_verification(storage, i), ids, LOOKUP_CONCURRENCY)
    return dict(zip(ids, found, strict=True))


def latest_verification(storage: Storage) -> VerificationRecord | None:
    """The most recent verify run of any item (record ids sort by time)."""
    return _newest_readable(storage, verifications(storage))
