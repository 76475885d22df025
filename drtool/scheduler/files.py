"""Schedule files (``schedule.dir/*.yaml``, one job each) parsed and validated into frozen
``ScheduleJob`` values; every problem is collected with its file and key. A ``command:`` is
parsed by the parser passed in (the CLI's command tree), so a bad one is reported at load."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from drtool.catalog.records.runs import JOB_NAME
from drtool.config import Config, load_yaml, parse_duration
from drtool.errors import ConfigError, UsageError
from drtool.scheduler.commands import CommandParser, JobCall
from drtool.scheduler.cron import CronTrigger, parse_cron

KEYS = frozenset({"name", "cron", "command", "timezone", "jitter", "timeout", "enabled"})


@dataclass(frozen=True)
class ScheduleJob:
    name: str
    file: Path
    cron: str
    call: JobCall
    timezone: str = "UTC"
    jitter_seconds: int | None = None
    timeout_seconds: float | None = None
    enabled: bool = True

    def trigger(self, *, with_jitter: bool = True) -> CronTrigger:
        return cron_trigger(self.cron, self.timezone, self.jitter_seconds if with_jitter else None)

    def next_fire_times(self, now: datetime, count: int) -> list[datetime]:
        trigger = self.trigger(with_jitter=False)
        times: list[datetime] = []
        previous: datetime | None = None
        at = now
        for _ in range(count):
            fire = trigger.get_next_fire_time(previous, at)
            if fire is None:
                break
            times.append(fire)
            previous, at = fire, fire
        return times


def cron_trigger(expr: str, timezone: str, jitter: int | None = None) -> CronTrigger:
    """A five-field crontab expression, with cron's semantics (drtool/scheduler/cron.py), as
    an APScheduler trigger in ``timezone`` (ValueError if invalid)."""
    return CronTrigger(expr, ZoneInfo(timezone), jitter)


def schedule_dir(config: Config) -> Path:
    return config.resolve(config.schedule.dir)


def _where(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def _parse_one(
    path: Path, where: str, parse: CommandParser, problems: list[tuple[str, str]]
) -> ScheduleJob | None:
    def problem(key: str, message: str) -> None:
        problems.append((f"{where}: {key}", message))

    try:
        doc: Any = load_yaml(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        problem("<file>", f"cannot read it as YAML: {exc}")
        return None
    if not isinstance(doc, dict):
        problem("<file>", "must be a mapping with the keys cron and command")
        return None
    count = len(problems)
    for key in sorted(set(map(str, doc)) - KEYS):
        problem(key, "unknown key")
    name = doc.get("name", path.stem)
    if not isinstance(name, str) or not JOB_NAME.match(name):
        problem("name", f"invalid job name {name!r}: expected ^[a-z][a-z0-9-]{{0,40}}$")
    timezone = doc.get("timezone", "UTC")
    try:
        ZoneInfo(str(timezone))
    except (ZoneInfoNotFoundError, ValueError):
        problem("timezone", f"unknown time zone {timezone!r} (e.g. UTC, Europe/Berlin)")
        timezone = "UTC"
    cron = doc.get("cron")
    if not isinstance(cron, str):
        problem("cron", 'required: a five-field crontab expression such as "0 2 * * *"')
    else:
        try:
            cron = parse_cron(cron)
        except ValueError as exc:
            problem("cron", f"invalid cron expression {cron!r}: {exc}")
    durations: dict[str, float | None] = {}
    for key in ("jitter", "timeout"):
        value = doc.get(key)
        durations[key] = None
        if value is not None:
            try:
                durations[key] = parse_duration(value).total_seconds()
            except ValueError as exc:
                problem(key, str(exc))
    enabled = doc.get("enabled", True)
    if not isinstance(enabled, bool):
        problem("enabled", "expected true or false")
    command = doc.get("command")
    call: JobCall | None = None
    if isinstance(command, str):
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            argv = []
            problem("command", f"cannot split {command!r}: {exc}")
    elif isinstance(command, list) and all(isinstance(a, str) for a in command):
        argv = list(command)
    else:
        argv = []
        problem("command", "required: drtool arguments as a string or a list of strings")
    if argv:
        try:
            call = parse(argv)
        except UsageError as exc:
            problem("command", f"job {name}: `{shlex.join(argv)}`: {exc.message}")
    if len(problems) > count or call is None or not isinstance(cron, str):
        return None
    jitter = durations["jitter"]
    return ScheduleJob(
        name=str(name),
        file=path,
        cron=cron,
        call=call,
        timezone=str(timezone),
        jitter_seconds=int(jitter) if jitter else None,
        timeout_seconds=durations["timeout"] or None,
        enabled=bool(enabled),
    )


def load_schedules(directory: Path, parse: CommandParser) -> list[ScheduleJob]:
    """Every ``*.yaml`` job in ``directory``, by name, its command parsed with ``parse``;
    ConfigError (exit 2) lists every problem."""
    problems: list[tuple[str, str]] = []
    if not directory.is_dir():
        raise ConfigError(
            [("schedule.dir", f"no schedule directory at {directory}")], source="schedules"
        )
    jobs: list[ScheduleJob] = []
    seen: dict[str, str] = {}
    for path in sorted(directory.glob("*.yaml")):
        where = _where(path, directory.parent)
        job = _parse_one(path, where, parse, problems)
        if job is None:
            continue
        if job.name in seen:
            problems.append(
                (f"{where}: name", f"job {job.name!r} is also defined in {seen[job.name]}")
            )
            continue
        seen[job.name] = where
        jobs.append(job)
    if problems:
        raise ConfigError(problems, source="schedules")
    return sorted(jobs, key=lambda j: j.name)
