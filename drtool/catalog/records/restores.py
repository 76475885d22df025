"""Restore records: ``restores/<backup-id>/<id>.json``, one JSON document per restore into a
database (success or failure) with its measured duration, for RTO reporting."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from drtool.catalog.records.document import document_bytes, parse_record, readable
from drtool.errors import UsageError
from drtool.ids import is_valid_id
from drtool.storage.base import Storage, check_key

RESTORES_PREFIX = "restores/"
RECORD_FORMAT = "drtool-restore-record"
RECORD_VERSION = 1
SUPPORTED_VERSIONS = (1,)


class RestoreRecord(BaseModel):
    """One restore: what, where, how long (per stage), and how it ended."""

    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)

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
    storage.put_bytes(key, document_bytes(record))
    return key


def parse_restore_record(data: bytes, where: str) -> RestoreRecord:
    return parse_record(RestoreRecord, data, where, "restore record", supported=SUPPORTED_VERSIONS)


def restore_records(storage: Storage, backup_id: str | None = None) -> list[RestoreRecord]:
    """Readable restore records (of one backup, or all), oldest first; unreadable ones are
    logged and skipped."""
    prefix = RESTORES_PREFIX + (f"{_checked(backup_id, 'backup')}/" if backup_id else "")
    keys = [info.key for info in storage.list(prefix) if info.key.endswith(".json")]
    return sorted(readable(storage, keys, parse_restore_record), key=lambda r: r.id)
