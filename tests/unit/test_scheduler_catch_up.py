"""Misfires: a fire time missed within the grace period is caught up once on start, unless a
run started since (the lease records it); the lease keeps a second holder out until expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from drtool.cli.schedule_line import parse_schedule_command
from drtool.config import Config, StorageConfig
from drtool.scheduler.files import ScheduleJob
from drtool.scheduler.runner import Runner, RunOptions
from drtool.services.context import Context, build_context
from drtool.services.lease import Lease, read_lease

NIGHTLY = ScheduleJob(
    name="backup",
    file=Path("backup.yaml"),
    cron="0 2 * * *",
    call=parse_schedule_command(["backup"]),
)


def context(tmp_path: Path, now: datetime) -> Context:
    config = Config(storage=StorageConfig(url=(tmp_path / "storage").as_uri()))
    return build_context(config, clock=lambda: now)


def runner(ctx: Context) -> Runner:
    return Runner(ctx, [NIGHTLY], RunOptions(misfire_grace_seconds=3600))


def test_missed_fire_within_grace_is_caught_up(tmp_path: Path) -> None:
    now = datetime(2026, 11, 26, 2, 30, tzinfo=UTC)
    assert runner(context(tmp_path, now)).missed_fire(NIGHTLY, now) == now.replace(minute=0)


def test_missed_fire_beyond_grace_is_not_replayed(tmp_path: Path) -> None:
    now = datetime(2026, 11, 26, 3, 30, tzinfo=UTC)
    assert runner(context(tmp_path, now)).missed_fire(NIGHTLY, now) is None


def test_no_catch_up_when_a_run_started_since(tmp_path: Path) -> None:
    started = datetime(2026, 11, 26, 2, 0, 3, tzinfo=UTC)
    lease = Lease(context(tmp_path, started), "backup")
    assert lease.acquire() is None
    lease.release()
    assert read_lease(lease.ctx, "backup").last_started_at == started
    now = datetime(2026, 11, 26, 2, 40, tzinfo=UTC)
    assert runner(context(tmp_path, now)).missed_fire(NIGHTLY, now) is None
    tomorrow = now + timedelta(days=1)
    assert runner(context(tmp_path, tomorrow)).missed_fire(NIGHTLY, tomorrow) is not None


def test_lease_is_exclusive_until_released_or_expired(tmp_path: Path) -> None:
    now = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
    first = Lease(context(tmp_path, now), "backup")
    assert first.acquire() is None
    held = Lease(context(tmp_path, now + timedelta(minutes=1)), "backup").acquire()
    assert held is not None and first.holder in held
    late = Lease(context(tmp_path, now + timedelta(minutes=10)), "backup")
    assert late.acquire() is None  # the first holder's lease expired (not renewed)
    late.release()
    first.release()
