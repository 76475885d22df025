"""Drill records (``drills/<id>.json``, version 1): what a rehearsal restored, how long each
stage took, RTO and RPO against the objectives, every check, and the verdict. Readers keep
unknown fields and accept the minimal records older writers made (id, verdict, times)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from drtool.catalog.records.document import document_bytes, parse_record, read_record, readable
from drtool.errors import UsageError
from drtool.ids import id_time, is_valid_id
from drtool.log import get_logger
from drtool.storage.base import Storage, check_key

DRILLS_PREFIX = "drills/"
DRILL_SUFFIX = ".json"

RECORD_FORMAT = "drtool-drill"
RECORD_VERSION = 1
SUPPORTED_VERSIONS = (1,)
VERDICT_PASS = "pass"  # noqa: S105 - a verdict, not a password
VERDICT_FAIL = "fail"

log = get_logger("drills")


class TableCount(BaseModel):
    """One table: rows the manifest recorded in the backup's snapshot, rows restored."""

    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)

    table: str
    expected: int
    actual: int | None = None
    ok: bool


class CheckResult(BaseModel):
    """One validation: a configured SQL check (``kind: sql``) or a built-in one."""

    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)

    name: str
    ok: bool
    detail: str = ""
    kind: str = "sql"


class DrillRecord(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)

    format: str = RECORD_FORMAT
    version: int = RECORD_VERSION
    id: str
    kind: str = "drill"
    backup_id: str | None = None
    created_at: datetime
    finished_at: datetime | None = None
    verdict: str
    rto_seconds: float | None = None
    rpo_seconds: float | None = None
    rpo_worst_gap_seconds: float | None = None
    rpo_worst_gap: dict[str, Any] | None = None
    objectives: dict[str, Any] = Field(default_factory=dict)
    stages: dict[str, float] = Field(default_factory=dict)
    tables: list[TableCount] = Field(default_factory=list)
    checks: list[CheckResult] = Field(default_factory=list)
    failures: list[str] = Field(default_factory=list)
    integrity_error: str | None = None
    error: str | None = None
    backup: dict[str, Any] = Field(default_factory=dict)
    scratch: dict[str, Any] = Field(default_factory=dict)
    restore_record_id: str | None = None
    # ``rehearse --until``: the base backup, the change stream replayed on it, the point reached.
    point_in_time: dict[str, Any] | None = None
    tool_version: str | None = None
    server_version: str | None = None
    host: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _older_times(cls, data: Any) -> Any:
        """The minimal records older writers made may lack ``created_at``: their
        ``finished_at`` or ``at``, else the time in their id, stands in."""
        if isinstance(data, dict) and "created_at" not in data:
            when = data.get("finished_at") or data.get("at")
            drill_id = data.get("id")
            if when is None and isinstance(drill_id, str) and is_valid_id(drill_id):
                when = id_time(drill_id)
            if when is not None:
                data = {**data, "created_at": when}
        return data

    @property
    def passed(self) -> bool:
        return self.verdict == VERDICT_PASS

    def to_json(self) -> bytes:
        return document_bytes(self)


def drill_key(drill_id: str) -> str:
    if not is_valid_id(drill_id):
        raise UsageError(f"{drill_id!r} is not a drtool id (drill)")
    return check_key(f"{DRILLS_PREFIX}{drill_id}{DRILL_SUFFIX}")


def write_drill_record(storage: Storage, record: DrillRecord) -> str:
    """One put: the local backend renames a complete file into place, S3 shows whole objects."""
    key = drill_key(record.id)
    storage.put_bytes(key, record.to_json())
    return key


def parse_drill_record(
    data: bytes, where: str, drill_id: str, *, lenient: bool = False
) -> DrillRecord:
    """A stored record (its ``id`` from the key if absent); anything malformed is an
    IntegrityError (``lenient``: unless only fields with a default are), a newer version a
    UsageError."""
    return parse_record(
        DrillRecord,
        data,
        where,
        "drill record",
        supported=SUPPORTED_VERSIONS,
        defaults={"id": drill_id},
        lenient=lenient,
    )


def _parser(drill_id: str, *, lenient: bool = False) -> Callable[[bytes, str], DrillRecord]:
    return lambda data, key: parse_drill_record(data, key, drill_id, lenient=lenient)


def read_drill_record(storage: Storage, drill_id: str) -> DrillRecord | None:
    """The record of ``drill_id``, or None if there is none (unreadable: IntegrityError)."""
    return read_record(storage, drill_key(drill_id), _parser(drill_id))


def _readable(
    storage: Storage, *, lenient: bool = False, since: datetime | None = None
) -> Iterator[DrillRecord]:
    """Readable drill records, newest first, read lazily; unreadable ones logged and skipped;
    ``since``: only drills started then or later (known from the id, nothing else is read)."""
    for drill_id in reversed(drill_ids(storage)):
        if since is not None and id_time(drill_id) < since:
            break
        yield from readable(storage, [drill_key(drill_id)], _parser(drill_id, lenient=lenient))


def drill_records(
    storage: Storage, limit: int | None = None, since: datetime | None = None
) -> list[DrillRecord]:
    """Readable drill records, newest first (at most ``limit``; ``since``: started then or
    later); unreadable ones are logged and skipped."""
    return list(itertools.islice(_readable(storage, since=since), limit))


def latest_drill(storage: Storage) -> DrillRecord | None:
    """The newest readable drill record, or None when there is none, read leniently (a field
    of the wrong type is left at its default: ``status`` must go on). Normally reads one
    object; a damaged newest one falls back to the one before."""
    return next(_readable(storage, lenient=True), None)


def drill_ids(storage: Storage) -> list[str]:
    """Ids of every stored drill record, oldest first (ids sort by time); nothing is read."""
    ids: list[str] = []
    for info in storage.list(DRILLS_PREFIX):
        name = info.key.removeprefix(DRILLS_PREFIX)
        if "/" in name or not name.endswith(DRILL_SUFFIX):
            continue
        drill_id = name.removesuffix(DRILL_SUFFIX)
        if is_valid_id(drill_id):
            ids.append(drill_id)
    ids.sort()
    return ids
