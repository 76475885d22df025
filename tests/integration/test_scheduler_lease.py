"""A scheduled run whose lease is lost (another scheduler took it over after it expired, or
storage refused every renewal for the lease's whole time to live) is aborted through the
run's abort check and recorded as failed, naming the lost lease; on local and S3 storage."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from drtool.catalog.records.runs import read_run
from drtool.config import Config, StorageConfig
from drtool.scheduler.commands import JobCall
from drtool.scheduler.files import ScheduleJob
from drtool.scheduler.runner import Runner, RunOptions
from drtool.services.context import Context
from drtool.services.jobs.job import run_job
from drtool.services.lease import LEASE_TTL, Lease, read_lease
from drtool.services.retention.prune import PruneResult
from drtool.storage import Storage, open_storage
from drtool.storage.faults import FaultyStorage

NOW = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
JOB = "waits"
ABORT_WAIT_SECONDS = 20.0


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> FaultyStorage:
    name = "file_storage_config" if request.param == "local" else "s3_storage_config"
    config: StorageConfig = request.getfixturevalue(name)
    return FaultyStorage(open_storage(config, base_dir=tmp_path))


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def until_aborted(ctx: Context, meanwhile: object) -> PruneResult:
    """A job that waits for its abort (checked as every job's stages check it)."""
    deadline = time.monotonic() + ABORT_WAIT_SECONDS
    while time.monotonic() < deadline:
        ctx.check_abort()
        time.sleep(0.02)
    raise AssertionError(f"the run was not aborted within {ABORT_WAIT_SECONDS}s ({meanwhile})")


def runner_for(storage: Storage, clock: Clock, run: JobCall) -> Runner:
    ctx = Context(Config(storage=StorageConfig()), storage, clock)
    job = ScheduleJob(name=JOB, file=Path(f"{JOB}.yaml"), cron="0 2 * * *", call=run)
    return Runner(ctx, [job], RunOptions(lease_renew_seconds=0.05))


def assert_failed_for_the_lost_lease(runner: Runner, storage: Storage) -> None:
    state = runner.states[JOB]
    assert state.last_ok is False and not state.running
    assert state.last_error is not None and "lease lost" in state.last_error, state.last_error
    record = read_run(storage, JOB)
    assert record is not None and record.last_ok is False
    assert record.last_failure_exit_code not in (None, 0)
    assert record.last_failure_error is not None and "lease lost" in record.last_failure_error


def test_a_run_whose_lease_is_taken_over_is_aborted_and_recorded_failed(
    storage: FaultyStorage,
) -> None:
    clock = Clock(NOW)
    # Another scheduler whose clock is past this lease's expiry (this one stopped renewing in
    # time, as far as it can tell) takes the lease over in storage while the run runs.
    other = Lease(
        Context(Config(storage=StorageConfig()), storage, Clock(NOW + LEASE_TTL * 2)), JOB
    )

    def run(ctx: Context) -> PruneResult:
        def job() -> PruneResult:
            assert read_lease(ctx, JOB).holder is not None
            # The run renews its lease every 50 ms: a renewal between the other scheduler's
            # read and its conditional write wins that round (as on S3); it tries again.
            for _ in range(100):
                if other.acquire() is None:
                    break
                time.sleep(0.01)
            else:
                raise AssertionError("the other scheduler could not take the lease")
            return until_aborted(ctx, "the lease was taken over")

        return run_job(ctx, JOB, job)

    runner = runner_for(storage, clock, JobCall(JOB, (JOB,), run))
    runner.fire(JOB, "test")
    assert_failed_for_the_lost_lease(runner, storage)
    assert "holds it now" in (runner.states[JOB].last_error or "")
    # The new holder's lease was left alone: neither renewed nor released by the aborted run.
    assert read_lease(runner.ctx, JOB).holder == other.holder
    other.release()


def test_a_run_whose_lease_cannot_be_renewed_past_its_ttl_is_aborted(
    storage: FaultyStorage,
) -> None:
    clock = Clock(NOW)

    def run(ctx: Context) -> PruneResult:
        def job() -> PruneResult:
            storage.fail_put_after_bytes = 0  # every write fails: storage unreachable
            clock.now = NOW + LEASE_TTL + timedelta(seconds=1)
            try:
                return until_aborted(ctx, "storage refused the renewals")
            finally:
                storage.fail_put_after_bytes = None  # back, so the failed run is recorded

        return run_job(ctx, JOB, job)

    runner = runner_for(storage, clock, JobCall(JOB, (JOB,), run))
    runner.fire(JOB, "test")
    assert_failed_for_the_lost_lease(runner, storage)
    assert "no renewal succeeded" in (runner.states[JOB].last_error or "")
