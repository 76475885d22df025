"""Job-run records: ``runs/<job>.json``, one small JSON state per job name (the last run, the
last success, the last failure), read-modify-written after every run of that job."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from drtool.catalog.records.document import document_bytes, parse_record, readable
from drtool.errors import IntegrityError, UsageError
from drtool.log import redact
from drtool.storage.base import Storage, check_key

RUNS_PREFIX = "runs/"
RUN_SUFFIX = ".json"
RUN_FORMAT = "drtool-job-run"
RUN_VERSION = 1
SUPPORTED_VERSIONS = (1,)
# A job, optionally scoped to one replica (``replicate.dr-region``: config.REPLICA_NAME).
JOB_NAME = re.compile(r"^[a-z][a-z0-9-]{0,40}(\.[a-z0-9][a-z0-9_-]{0,62})?$")
MAX_ERROR_CHARS = 500


class JobRun(BaseModel):
    """What drtool knows about one job's runs: the last one, the last success, the last failure.
    Concurrent runs of one job are prevented by the jobs' own locks, so last-writer-wins."""

    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)

    format: Literal["drtool-job-run"] = "drtool-job-run"
    version: int = RUN_VERSION
    job: str
    last_run_at: datetime
    last_ok: bool
    last_run_seconds: float = Field(default=0.0, ge=0)
    item_id: str | None = None
    last_success_at: datetime | None = None
    last_success_seconds: float | None = Field(default=None, ge=0)
    last_failure_at: datetime | None = None
    last_failure_error: str | None = None
    last_failure_exit_code: int | None = None
    # Numbers the job reported about its last run (e.g. verify: items_verified, items_failed).
    stats: dict[str, float] = Field(default_factory=dict)


def check_job(job: str) -> str:
    if not isinstance(job, str) or not JOB_NAME.match(job):
        raise UsageError(f"invalid job name {job!r}: expected {JOB_NAME.pattern}")
    return job


def run_key(job: str) -> str:
    return check_key(RUNS_PREFIX + check_job(job) + RUN_SUFFIX)


def parse_run(data: bytes, where: str) -> JobRun:
    """A stored record; anything malformed is an IntegrityError, a newer version a UsageError."""
    return parse_record(JobRun, data, where, "job-run record", supported=SUPPORTED_VERSIONS)


def read_run(storage: Storage, job: str) -> JobRun | None:
    """The record of ``job``, or None if it never ran (or its record is unreadable: logged)."""
    return next(readable(storage, [run_key(job)], parse_run), None)


def write_run(storage: Storage, run: JobRun) -> str:
    key = run_key(run.job)
    storage.put_bytes(key, document_bytes(run))
    return key


def _error_text(error: str) -> str:
    text = redact(error)
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


def record_run(
    storage: Storage,
    job: str,
    *,
    at: datetime,
    ok: bool,
    seconds: float,
    item_id: str | None = None,
    error: str | None = None,
    exit_code: int | None = None,
    stats: Mapping[str, float] | None = None,
) -> JobRun:
    """Fold one run's outcome into ``runs/<job>.json`` and store it; returns the new state.
    The error text is redacted and truncated: it is shown by ``status`` and in alerts."""
    previous = read_run(storage, job)
    seconds = round(max(seconds, 0.0), 3)
    update: dict[str, object] = {
        "job": job,
        "last_run_at": at,
        "last_ok": ok,
        "last_run_seconds": seconds,
        "item_id": item_id,
        "stats": dict(stats or {}),
    }
    if ok:
        update |= {"last_success_at": at, "last_success_seconds": seconds}
    else:
        update |= {
            "last_failure_at": at,
            "last_failure_error": _error_text(error or "failed"),
            "last_failure_exit_code": exit_code,
        }
    base = previous.model_dump() if previous is not None else {}
    base.pop("format", None)
    base.pop("version", None)
    run = JobRun.model_validate(base | update)
    write_run(storage, run)
    return run


def _job_of(key: str) -> str | None:
    name = key.removeprefix(RUNS_PREFIX)
    if "/" in name or not name.endswith(RUN_SUFFIX):
        return None
    job = name.removesuffix(RUN_SUFFIX)
    return job if JOB_NAME.match(job) else None


def _parse_listed(data: bytes, key: str) -> JobRun:
    """A listed record must be the record of the job its key names."""
    run = parse_run(data, key)
    if run.job != _job_of(key):
        raise IntegrityError(f"{key}: the job-run record is for job {run.job!r}")
    return run


def list_runs(storage: Storage) -> list[JobRun]:
    """Every job's record, by job name; unreadable records are logged and left out."""
    keys = [info.key for info in storage.list(RUNS_PREFIX) if _job_of(info.key) is not None]
    return sorted(readable(storage, keys, _parse_listed), key=lambda r: r.job)
