"""Drill records (``drills/<id>.json``, version 1): what a rehearsal restored, how long each
stage took, RTO and RPO against the objectives, every check, and the verdict. Readers keep
unknown fields and accept the minimal records older writers made (id, verdict, times)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from drtool.catalog.drills import DRILL_SUFFIX, DRILLS_PREFIX, drill_ids
from drtool.errors import IntegrityError, NotFoundInStorage, UsageError
from drtool.ids import is_valid_id
from drtool.log import get_logger
from drtool.storage.base import Storage, check_key

RECORD_FORMAT = "drtool-drill"
RECORD_VERSION = 1
SUPPORTED_VERSIONS = (1,)
VERDICT_PASS = "pass"  # noqa: S105 - a verdict, not a password
VERDICT_FAIL = "fail"

log = get_logger("drills")


class TableCount(BaseModel):
    """One table: rows the manifest recorded in the backup's snapshot, rows restored."""

    model_config = ConfigDict(extra="allow", frozen=True)

    table: str
    expected: int
    actual: int | None = None
    ok: bool


class CheckResult(BaseModel):
    """One validation: a configured SQL check (``kind: sql``) or a built-in one."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str
    ok: bool
    detail: str = ""
    kind: str = "sql"


class DrillRecord(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

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
    tool_version: str | None = None
    server_version: str | None = None
    host: str | None = None

    @property
    def passed(self) -> bool:
        return self.verdict == VERDICT_PASS

    def to_json(self) -> bytes:
        doc = self.model_dump(mode="json")
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")


def drill_key(drill_id: str) -> str:
    if not is_valid_id(drill_id):
        raise UsageError(f"{drill_id!r} is not a drtool id (drill)")
    return check_key(f"{DRILLS_PREFIX}{drill_id}{DRILL_SUFFIX}")


def write_drill_record(storage: Storage, record: DrillRecord) -> str:
    """One put: the local backend renames a complete file into place, S3 shows whole objects."""
    key = drill_key(record.id)
    storage.put_bytes(key, record.to_json())
    return key


def parse_drill_record(data: bytes, where: str, drill_id: str) -> DrillRecord:
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"{where}: drill record is not valid JSON") from exc
    if not isinstance(doc, dict):
        raise IntegrityError(f"{where}: drill record is not a JSON object")
    version = doc.get("version")
    if isinstance(version, int) and version > max(SUPPORTED_VERSIONS):
        raise UsageError(
            f"{where}: drill record version {version} was written by a newer drtool",
            hint="upgrade drtool to read it",
        )
    doc.setdefault("id", drill_id)
    try:
        return DrillRecord.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise IntegrityError(f"{where}: drill record is invalid ({loc}: {first['msg']})") from exc


def read_drill_record(storage: Storage, drill_id: str) -> DrillRecord | None:
    """The record of ``drill_id``, or None if there is none (unreadable: IntegrityError)."""
    key = drill_key(drill_id)
    try:
        data = storage.get_bytes(key)
    except NotFoundInStorage:
        return None
    return parse_drill_record(data, key, drill_id)


def drill_records(storage: Storage, limit: int | None = None) -> list[DrillRecord]:
    """Readable drill records, newest first (at most ``limit``); unreadable ones are logged
    and skipped."""
    found: list[DrillRecord] = []
    for drill_id in reversed(drill_ids(storage)):
        if limit is not None and len(found) >= limit:
            break
        try:
            record = read_drill_record(storage, drill_id)
        except (IntegrityError, UsageError) as exc:
            log.warning("skipping drill record %s: %s", drill_id, exc.message)
            continue
        if record is not None:
            found.append(record)
    return found
