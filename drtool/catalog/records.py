"""Verification records: ``verifications/<item-id>/<time>.json``, one small JSON document per
verify run of an item (written on success and on failure), and finding the newest ones."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from drtool.errors import IntegrityError, NotFoundInStorage, UsageError
from drtool.ids import is_valid_id
from drtool.log import get_logger
from drtool.storage.base import Storage, check_key, ordered_map

VERIFICATIONS_PREFIX = "verifications/"
RECORD_FORMAT = "drtool-verification"
RECORD_VERSION = 1
SUPPORTED_VERSIONS = (1,)
RECORD_SUFFIX = ".json"
# Concurrent reads when `list` looks up the newest record of many items (S3 round trips).
LOOKUP_CONCURRENCY = 8

log = get_logger("records")


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

    model_config = ConfigDict(extra="allow", frozen=True)

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
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"{where}: verification record is not valid JSON") from exc
    if not isinstance(doc, dict):
        raise IntegrityError(f"{where}: verification record is not a JSON object")
    version = doc.get("version")
    if isinstance(version, int) and version > max(SUPPORTED_VERSIONS):
        raise UsageError(
            f"{where}: verification record version {version} was written by a newer drtool",
            hint="upgrade drtool to read it",
        )
    try:
        return VerificationRecord.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise IntegrityError(
            f"{where}: verification record is invalid ({loc}: {first['msg']})"
        ) from exc


def write_verification(storage: Storage, record: VerificationRecord) -> str:
    """Store ``record`` under ``verifications/<item_id>/<id>.json``; returns the key."""
    key = record_key(record.item_id, record.id)
    doc = record.model_dump(mode="json")
    storage.put_bytes(key, (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    return key


def verifications(storage: Storage, item_id: str | None = None) -> list[RecordRef]:
    """Refs of every stored record (of one item, if given), oldest first; nothing is read."""
    prefix = item_prefix(item_id) if item_id is not None else VERIFICATIONS_PREFIX
    refs = [ref for info in storage.list(prefix) if (ref := _ref(info.key)) is not None]
    refs.sort(key=lambda r: (r.record_id, r.item_id))
    return refs


def _newest_readable(storage: Storage, refs: list[RecordRef]) -> VerificationRecord | None:
    # Normally reads exactly one record; a damaged newest one falls back to the one before.
    for ref in reversed(refs):
        try:
            return parse_verification(storage.get_bytes(ref.key), ref.key)
        except NotFoundInStorage:
            continue
        except (IntegrityError, UsageError) as exc:
            log.warning("skipping verification record %s: %s", ref.key, exc.message)
    return None


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
