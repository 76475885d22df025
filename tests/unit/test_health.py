"""Status logic on an injected clock: every breach the SPEC names, and only manifests and small
records are read (never a data object)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from drtool.services.jobs.health import format_age, gather_status
from drtool.services.jobs.status import check_status
from tests.unit.dr_state import (
    T0,
    Clock,
    ReadLog,
    make_context,
    put_backup,
    put_drill,
    put_verification,
)


def test_fresh_verified_backup_and_passing_drill_are_ok_and_read_no_data(tmp_path: Path) -> None:
    clock = Clock(T0 + timedelta(hours=2))
    ctx = make_context(tmp_path, clock, objectives={"rpo": "24h", "drill_max_age": "35d"})
    backup_id = put_backup(ctx, T0)
    put_verification(ctx, backup_id, T0 + timedelta(hours=1), ok=True)
    drill_id = put_drill(ctx, T0 + timedelta(minutes=90), rto=300.0)
    result = check_status(ctx)
    assert result.ok and result.breaches == [] and result.breached == []
    assert result.last_backup is not None and result.last_backup.id == backup_id
    assert result.last_backup.age_seconds == result.rpo_exposure_seconds == 7200.0
    assert result.last_backup.size == 4096
    assert result.last_verify is not None
    assert (result.last_verify.id, result.last_verify.ok) == (backup_id, True)
    assert result.last_drill is not None
    assert (result.last_drill.id, result.last_drill.verdict) == (drill_id, "pass")
    assert result.last_drill.rto_seconds == 300.0 and result.last_drill.age_seconds == 1800.0
    assert result.objectives.rpo_seconds == 86400.0
    assert result.objectives.drill_max_age_seconds == 35 * 86400.0
    storage = ctx.storage
    assert isinstance(storage, ReadLog)
    assert storage.read, "status reads the manifest and the records"
    for key in storage.read:
        assert key.endswith("manifest.json") or not key.startswith("backups/"), key


def test_backup_older_than_the_rpo_objective_is_a_breach(tmp_path: Path) -> None:
    clock = Clock(T0)
    ctx = make_context(tmp_path, clock, objectives={"rpo": "24h"})
    put_backup(ctx, T0)
    clock.advance(hours=24)
    assert gather_status(ctx).ok, "exactly at the objective is not yet a breach"
    clock.advance(days=1)
    result = gather_status(ctx)
    assert not result.ok and result.breached == ["rpo"]
    [text] = result.breaches
    assert "is 2d old" in text and "objective rpo 1d" in text


def test_no_complete_backup_is_a_breach(tmp_path: Path) -> None:
    result = gather_status(make_context(tmp_path, Clock()))
    assert not result.ok and result.breached == ["rpo"]
    assert result.last_backup is None and result.rpo_exposure_seconds is None
    assert "no complete backup" in result.breaches[0]


def test_the_most_recent_verification_run_decides(tmp_path: Path) -> None:
    clock = Clock(T0 + timedelta(hours=3))
    ctx = make_context(tmp_path, clock)
    older, newer = put_backup(ctx, T0), put_backup(ctx, T0 + timedelta(hours=1))
    put_verification(ctx, newer, T0 + timedelta(hours=1, minutes=5), ok=True)
    put_verification(ctx, older, T0 + timedelta(hours=2), ok=False)
    result = gather_status(ctx)
    assert result.breached == ["verify"]
    assert result.last_verify is not None and result.last_verify.id == older
    assert f"last verification failed: backup {older}" in result.breaches[0]
    put_verification(ctx, older, T0 + timedelta(hours=2, minutes=30), ok=True)
    assert gather_status(ctx).ok


def test_drill_failure_slow_recovery_and_age_are_breaches(tmp_path: Path) -> None:
    clock = Clock(T0 + timedelta(hours=1))
    ctx = make_context(tmp_path, clock, objectives={"rto": "1h", "drill_max_age": "7d"})
    put_backup(ctx, T0 + timedelta(minutes=30))
    assert gather_status(ctx).breached == ["drill_age"], "drill_max_age set, never drilled"
    drill_id = put_drill(ctx, T0, verdict="fail", rto=2 * 3600.0)
    result = gather_status(ctx)
    assert result.breached == ["drill", "rto"]
    assert any(f"last drill {drill_id} failed" in text for text in result.breaches)
    assert any("recovered in 2h" in text and "objective rto 1h" in text for text in result.breaches)
    put_drill(ctx, T0 + timedelta(minutes=1), verdict="pass", rto=600.0)
    assert gather_status(ctx).ok
    clock.advance(days=8)
    put_backup(ctx, clock.now)
    result = gather_status(ctx)
    assert result.breached == ["drill_age"] and "objective drill_max_age 1w" in result.breaches[0]


def test_a_drill_record_with_odd_fields_is_read_tolerantly(tmp_path: Path) -> None:
    clock = Clock(T0 + timedelta(hours=1))
    ctx = make_context(tmp_path, clock)
    put_backup(ctx, T0)
    put_drill(ctx, T0, verdict="pass", rto="fast", created_at="not a time")  # type: ignore[arg-type]
    result = gather_status(ctx)
    assert result.ok and result.last_drill is not None
    assert result.last_drill.rto_seconds is None and result.last_drill.at.date() == T0.date()


def test_ages_are_shown_in_two_units_at_most() -> None:
    assert [format_age(s) for s in (0, 12, 250, 7500, 3 * 86400 + 4 * 3600 + 5)] == [
        "0s",
        "12s",
        "4m 10s",
        "2h 5m",
        "3d 4h",
    ]
