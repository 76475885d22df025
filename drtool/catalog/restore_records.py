"""Restore records: ``restores/<backup-id>/<id>.json``, one JSON document per restore into a
database (success or failure) with its measured duration, for RTO reporting."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from drtool.errors import IntegrityError, NotFoundInStorage, UsageError
from drtool.ids import is_valid_id
from drtool.log import get_logger
from drtool.storage.base import Storage, check_key

RESTORES_PREFIX = "restores/"
RECORD_FORMAT = "drtool-restore-record"
RECORD_VERSION = 1
SUPPORTED_VERSIONS = (1,)

log = get_logger("records")


class RestoreRecord(BaseModel):
    """One restore: what, where, how long (per stage), and how it ended."""

    model_config = ConfigDict(extra="allow", frozen=True)

    format: Literal["drtool-restore-record"] = "drtool-restore-record"
    version: int = RECORD_VERSION
    id: str
    backup_id: str
    target: str
    started_at: datetime
    finished_at: datetime | None = None
    ok: bool
    error: str | None = None
    seconds: float = Field(ge=0)
    stages: dict[str, float] = Field(default_factory=dict)
    mode: str
    jobs: int = Field(ge=1)
    selection: dict[str, object] = Field(default_factory=dict)
    force: bool = False
    no_owner: bool = False
    roles_created: list[str] = Field(default_factory=list)
    tables: dict[str, int] = Field(default_factory=dict)
    tool_version: str


def _checked(value: str, what: str) -> str:
    if not is_valid_id(value):
        raise UsageError(f"{value!r} is not a drtool id ({what})")
    return value


def record_key(backup_id: str, record_id: str) -> str:
    backup_id = _checked(backup_id, "backup")
    return check_key(f"{RESTORES_PREFIX}{backup_id}/{_checked(record_id, 'record')}.json")


def write_restore_record(storage: Storage, record: RestoreRecord) -> str:
    key = record_key(record.backup_id, record.id)
    doc = record.model_dump(mode="json")
    storage.put_bytes(key, (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode())
    return key


def parse_restore_record(data: bytes, where: str) -> RestoreRecord:
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"{where}: restore record is not valid JSON") from exc
    version = doc.get("version") if isinstance(doc, dict) else None
    if isinstance(version, int) and version > max(SUPPORTED_VERSIONS):
        raise UsageError(
            f"{where}: restore record version {version} was written by a newer drtool",
            hint="upgrade drtool to read it",
        )
    try:
        return RestoreRecord.model_validate(doc)
    except ValidationError as exc:
        raise IntegrityError(f"{where}: restore record is invalid") from exc


def restore_records(storage: Storage, backup_id: str | None = None) -> list[RestoreRecord]:
    """Readable restore records (of one backup, or all), oldest first; unreadable ones are
    logged and skipped."""
    prefix = RESTORES_PREFIX + (f"{_checked(backup_id, 'backup')}/" if backup_id else "")
    found: list[RestoreRecord] = []
    for info in storage.list(prefix):
        if not info.key.endswith(".json"):
            continue
        try:
            found.append(parse_restore_record(storage.get_bytes(info.key), info.key))
        except NotFoundInStorage:
            continue
        except (IntegrityError, UsageError) as exc:
            log.warning("skipping %s: %s", info.key, exc.message)
    return sorted(found, key=lambda r: r.id)
