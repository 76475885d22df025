"""Rendering of schedule listings and checks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from drtool.cli.render import emit, emit_json, to_jsonable
from drtool.config import format_duration


def _duration(seconds: float | None) -> str:
    return "-" if not seconds else format_duration(timedelta(seconds=seconds))


def schedule_listing(listing: Any, as_json: bool, *, check: bool = False) -> None:
    if as_json:
        emit_json(to_jsonable(listing))
        return
    lines: list[str] = []
    if check:
        lines.append(f"schedules ok: {len(listing.jobs)} job(s) in {listing.dir}")
    else:
        lines.append(f"schedules in {listing.dir}:")
    for job in listing.jobs:
        state = "" if job.enabled else " (disabled)"
        lines.append(
            f"  {job.name}{state}: {job.cron} {job.timezone}  drtool {job.command}  "
            f"[{job.file}; jitter {_duration(job.jitter_seconds)}, "
            f"timeout {_duration(job.timeout_seconds)}]"
        )
        for at in job.next_runs:
            lines.append(f"      next: {at.strftime('%Y-%m-%d %H:%M %Z')}")
    emit("\n".join(lines))
