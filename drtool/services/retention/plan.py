"""Retention planning, pure: which backups the GFS policy keeps (restic's ``forget`` semantics)
and which exports are past ``exports_max_age``. No storage, no clock: facts in, a plan out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from drtool.config import RetentionConfig

NEWEST_REASON = "newest backup"
NEWEST_VERIFIED_REASON = "newest verified backup"
FUTURE_REASON = "dated after now (clock skew?)"
REMOVE_REASON = "not kept by keep_last/daily/weekly/monthly/yearly"


@dataclass(frozen=True)
class BackupFacts:
    """What retention needs of one complete backup: its id and when its data is from (UTC)."""

    id: str
    at: datetime


@dataclass(frozen=True)
class RetentionPlan:
    """Every input id is in exactly one of ``keep`` (all its reasons) or ``remove`` (why)."""

    keep: dict[str, list[str]] = field(default_factory=dict)
    remove: dict[str, str] = field(default_factory=dict)


def _day(at: datetime) -> str:
    return at.strftime("%Y-%m-%d")


def _week(at: datetime) -> str:
    year, week, _ = at.isocalendar()
    return f"{year}-W{week:02d}"


def _month(at: datetime) -> str:
    return at.strftime("%Y-%m")


def _year(at: datetime) -> str:
    return at.strftime("%Y")


# (config field, bucket of a timestamp): a kept backup is the newest of its bucket.
_BUCKETS: list[tuple[str, Callable[[datetime], str]]] = [
    ("keep_daily", _day),
    ("keep_weekly", _week),
    ("keep_monthly", _month),
    ("keep_yearly", _year),
]


def plan_retention(
    backups: list[BackupFacts],
    policy: RetentionConfig,
    now: datetime,
    newest_verified_id: str | None,
) -> RetentionPlan:
    """restic semantics: ``keep_last`` N newest; ``keep_daily`` N keeps the newest backup of
    each of the N most recent UTC days that have one (weekly by ISO week, then monthly, yearly).
    The newest backup and the newest verified one are kept whatever the values; a backup
    dated after ``now`` is kept too (a clock went wrong; age-based removal is not safe)."""
    ordered = sorted(backups, key=lambda b: (b.at, b.id), reverse=True)
    keep: dict[str, list[str]] = {}

    def add(item_id: str, reason: str) -> None:
        keep.setdefault(item_id, []).append(reason)

    for backup in ordered[: policy.keep_last]:
        add(backup.id, "keep_last")
    for name, bucket_of in _BUCKETS:
        wanted = getattr(policy, name)
        seen: set[str] = set()
        for backup in ordered:
            if len(seen) >= wanted:
                break
            bucket = bucket_of(backup.at)
            if bucket not in seen:
                seen.add(bucket)
                add(backup.id, f"{name} {bucket}")
    if ordered:
        add(ordered[0].id, NEWEST_REASON)
    if newest_verified_id is not None and any(b.id == newest_verified_id for b in ordered):
        add(newest_verified_id, NEWEST_VERIFIED_REASON)
    for backup in ordered:
        if backup.at > now:
            add(backup.id, FUTURE_REASON)
    remove = {b.id: REMOVE_REASON for b in ordered if b.id not in keep}
    ordered_keep = {b.id: keep[b.id] for b in ordered if b.id in keep}
    return RetentionPlan(ordered_keep, remove)


@dataclass(frozen=True)
class ExportFacts:
    """One complete per-user export."""

    id: str
    user_id: str
    at: datetime


def plan_exports(exports: list[ExportFacts], max_age: timedelta, now: datetime) -> RetentionPlan:
    """Exports older than ``max_age`` go, except each user's newest export."""
    keep: dict[str, list[str]] = {}
    remove: dict[str, str] = {}
    newest_of_user: set[str] = set()
    for export in sorted(exports, key=lambda e: (e.at, e.id), reverse=True):
        if export.user_id not in newest_of_user:
            newest_of_user.add(export.user_id)
            keep[export.id] = [f"newest export of user {export.user_id}"]
        elif now - export.at <= max_age:
            keep[export.id] = [f"younger than exports_max_age ({_age(max_age)})"]
        else:
            remove[export.id] = f"older than exports_max_age ({_age(max_age)})"
    return RetentionPlan(keep, remove)


def _age(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
