"""Restore records round-trip through storage; unreadable or newer ones are skipped or refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from drtool.catalog.records.restores import (
    RestoreRecord,
    parse_restore_record,
    restore_records,
    write_restore_record,
)
from drtool.config import StorageConfig
from drtool.errors import UsageError
from drtool.storage import open_storage

BACKUP = "20261126T021500.123Z-7f3a"


def record(record_id: str, ok: bool = True) -> RestoreRecord:
    return RestoreRecord(
        id=record_id,
        backup_id=BACKUP,
        target="db.internal:5432/omnicrm",
        started_at=datetime(2026, 11, 26, 3, 0, tzinfo=UTC),
        ok=ok,
        seconds=12.5,
        stages={"prepare": 0.5, "restore": 11.0, "count": 1.0},
        mode="stream",
        jobs=1,
        tool_version="0.1.0",
    )


def test_records_round_trip_oldest_first_and_skip_garbage(tmp_path: Path) -> None:
    storage = open_storage(StorageConfig(url=(tmp_path / "s").as_uri()), tmp_path)
    second = write_restore_record(storage, record("20261126T030500.000Z-0002", ok=False))
    write_restore_record(storage, record("20261126T030000.000Z-0001"))
    storage.put_bytes(f"restores/{BACKUP}/20261126T031000.000Z-0003.json", b"{not json")
    assert second == f"restores/{BACKUP}/20261126T030500.000Z-0002.json"
    found = restore_records(storage, BACKUP)
    assert [r.id for r in found] == ["20261126T030000.000Z-0001", "20261126T030500.000Z-0002"]
    assert found[0].ok and not found[1].ok and found[0].stages["restore"] == 11.0
    assert [r.id for r in restore_records(storage)] == [r.id for r in found]


def test_a_newer_record_version_asks_for_an_upgrade() -> None:
    doc = record("20261126T030000.000Z-0001").model_dump(mode="json") | {"version": 2}
    with pytest.raises(UsageError, match="newer drtool"):
        parse_restore_record(json.dumps(doc).encode(), "x.json")
