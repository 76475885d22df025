"""Drill judgement without servers: the worst gap between backups over 30 days, every failure
and breach named, drill records read leniently (minimal records from older writers)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from drtool.catalog.manifest import BackupManifest
from drtool.catalog.records.drills import (
    CheckResult,
    DrillRecord,
    TableCount,
    drill_records,
    read_drill_record,
    write_drill_record,
)
from drtool.config import ObjectivesConfig
from drtool.errors import UsageError
from drtool.ids import new_id
from drtool.services.rehearse.scratch import scratch_database_name
from drtool.services.rehearse.validate import format_seconds, judge, worst_gap
from drtool.storage.local import LocalStorage

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def manifest(snapshot: datetime) -> BackupManifest:
    return BackupManifest(
        id=new_id(snapshot),
        created_at=snapshot,
        finished_at=snapshot,
        snapshot_at=snapshot,
        tool_version="0.1.0",
    )


def test_worst_gap_is_the_longest_stretch_without_a_backup_up_to_now() -> None:
    backups = [manifest(NOW - timedelta(hours=h)) for h in (50, 30, 2)]
    gap = worst_gap(backups, NOW)
    assert gap is not None and gap.seconds == 28 * 3600
    assert gap.after == backups[1].id and gap.before == backups[2].id
    # The gap from the newest backup to the drill counts too.
    gap = worst_gap([manifest(NOW - timedelta(hours=40))], NOW)
    assert gap is not None and gap.seconds == 40 * 3600 and gap.before is None


def test_worst_gap_looks_back_30_days_only() -> None:
    old = manifest(NOW - timedelta(days=90))
    recent = manifest(NOW - timedelta(days=29))
    gap = worst_gap([old, recent], NOW)
    # From the window's start to the first backup in it is one day; from it to now, 29 days.
    assert gap is not None and gap.seconds == 29 * 86400 and gap.after == recent.id
    gap = worst_gap([old, recent, manifest(NOW - timedelta(hours=1))], NOW)
    assert gap is not None and gap.seconds == pytest.approx(29 * 86400 - 3600)
    assert worst_gap([], NOW) is None


def test_judge_names_every_failure_and_breach() -> None:
    cfg = ObjectivesConfig(rpo=timedelta(hours=24), rto=timedelta(minutes=1))
    tables = [
        TableCount(table="public.a", expected=3, actual=3, ok=True),
        TableCount(table="public.b", expected=5, actual=4, ok=False),
    ]
    checks = [
        CheckResult(name="users present", ok=False, detail="returned false"),
        CheckResult(name="roles present", ok=False, detail="missing: anon", kind="builtin"),
    ]
    gap = worst_gap([manifest(NOW - timedelta(hours=30))], NOW)
    judged = judge(cfg, tables, checks, 75.0, 30 * 3600.0, gap)
    assert judged.failures[:4] == [
        "table public.b: 4 rows restored, the manifest recorded 5",
        "check 'users present' failed: returned false",
        "roles present: missing: anon",
        "RTO 75.0s exceeds the objective rto 1m",
    ]
    assert len(judged.failures) == 6
    assert judged.failures[4].startswith("RPO 1d 6h") and "objective rpo 1d" in judged.failures[4]
    assert judged.failures[5].startswith("RPO worst gap 1d 6h")
    assert judged.objectives["rto_met"] is False and judged.objectives["rpo_met"] is False
    ok = judge(cfg, tables[:1], [], 10.0, 60.0, worst_gap([manifest(NOW)], NOW))
    assert ok.failures == [] and ok.objectives["rto_met"] is True


def test_format_seconds() -> None:
    assert format_seconds(2.44) == "2.4s"
    assert format_seconds(3700) == "1h 1m"


def test_scratch_database_names_are_safe_identifiers() -> None:
    name = scratch_database_name("20261126T021500.123Z-7f3a")
    assert name == "drtool_drill_20261126t021500_123z_7f3a" and len(name) < 63


def test_drill_records_round_trip_and_minimal_records_are_read(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    record = DrillRecord(
        id=new_id(NOW), backup_id=None, created_at=NOW, verdict="pass", rto_seconds=12.5
    )
    write_drill_record(storage, record)
    assert read_drill_record(storage, record.id) == record
    minimal_id = new_id(NOW + timedelta(minutes=1))
    minimal = {"created_at": NOW.isoformat(), "verdict": "fail", "rto_seconds": 3.0}
    storage.put_bytes(f"drills/{minimal_id}.json", json.dumps(minimal).encode())
    storage.put_bytes(f"drills/{new_id(NOW + timedelta(minutes=2))}.json", b"not json")
    found = drill_records(storage)
    assert [d.id for d in found] == [minimal_id, record.id]
    assert found[0].verdict == "fail" and found[0].kind == "drill"
    assert drill_records(storage, limit=1)[0].id == minimal_id
    assert read_drill_record(storage, new_id(NOW)) is None
    newer = {"version": 99, "created_at": NOW.isoformat(), "verdict": "pass"}
    newer_id = new_id(NOW + timedelta(minutes=3))
    storage.put_bytes(f"drills/{newer_id}.json", json.dumps(newer).encode())
    with pytest.raises(UsageError, match="newer drtool"):
        read_drill_record(storage, newer_id)
