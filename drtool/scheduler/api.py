"""What ``drtool schedule run|list|check`` call: the scheduler's use cases, click-free."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from drtool.config import Config
from drtool.errors import ConfigError
from drtool.scheduler.commands import CommandParser
from drtool.scheduler.files import ScheduleJob, load_schedules, schedule_dir
from drtool.scheduler.runner import ABORT_WAIT_SECONDS, Runner, RunOptions
from drtool.services.context import build_context


@dataclass(frozen=True)
class ScheduleEntry:
    name: str
    file: str
    cron: str
    command: str
    timezone: str
    enabled: bool
    jitter_seconds: int | None
    timeout_seconds: float | None
    next_runs: list[datetime]


@dataclass(frozen=True)
class ScheduleListing:
    dir: str
    jobs: list[ScheduleEntry]
    ok: bool = True


def _entry(job: ScheduleJob, now: datetime, count: int) -> ScheduleEntry:
    tz = ZoneInfo(job.timezone)
    return ScheduleEntry(
        name=job.name,
        file=job.file.name,
        cron=job.cron,
        command=" ".join(job.call.argv),
        timezone=job.timezone,
        enabled=job.enabled,
        jitter_seconds=job.jitter_seconds,
        timeout_seconds=job.timeout_seconds,
        next_runs=[t.astimezone(tz) for t in job.next_fire_times(now, count)]
        if job.enabled
        else [],
    )


def _load(config: Config, parse: CommandParser) -> list[ScheduleJob]:
    """The schedule files, plus a check the parser cannot make without the configuration: an
    enabled job's `--from NAME` names a configured replica (exit 2 before anything runs)."""
    directory = schedule_dir(config)
    jobs = load_schedules(directory, parse)
    names = [replica.name for replica in config.storage.replicas]
    problems = [
        (
            f"{_where(job.file, directory.parent)}: command",
            f"job {job.name}: --from {source}: no replica named {source!r} in "
            f"storage.replicas ({', '.join(names) or 'none is configured'})",
        )
        for job in jobs
        if job.enabled
        and isinstance(source := job.call.params.get("source"), str)
        and source not in names
    ]
    if problems:
        raise ConfigError(problems, source="schedules")
    return jobs


def _where(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def list_schedules(
    config: Config, parse: CommandParser, count: int = 3, now: datetime | None = None
) -> ScheduleListing:
    """Every job with its next ``count`` fire times in its own time zone (none if disabled).
    Invalid files raise ConfigError (exit 2) listing every problem; commands are parsed with
    ``parse`` (the CLI's)."""
    directory = schedule_dir(config)
    at = now or datetime.now(UTC)
    jobs = _load(config, parse)
    return ScheduleListing(str(directory), [_entry(job, at, count) for job in jobs])


def check_schedules(config: Config, parse: CommandParser) -> ScheduleListing:
    """Validate the schedule files: the same as list, with the next fire time only."""
    return list_schedules(config, parse, count=1)


def run_scheduler(
    config: Config,
    parse: CommandParser,
    *,
    grace_seconds: float,
    misfire_grace_seconds: float,
    abort_wait_seconds: float = ABORT_WAIT_SECONDS,
    run_now: tuple[str, ...] = (),
    companions: tuple[tuple[str, tuple[str, ...]], ...] = (),
) -> None:
    """Block until SIGTERM/SIGINT, running the jobs (and keeping ``companions`` running
    beside them); returns after the running job finished or was aborted."""
    jobs = _load(config, parse)
    ctx = build_context(config)
    options = RunOptions(
        grace_seconds=grace_seconds,
        misfire_grace_seconds=misfire_grace_seconds,
        abort_wait_seconds=abort_wait_seconds,
        run_now=run_now,
        companions=companions,
    )
    Runner(ctx, jobs, options).run()
