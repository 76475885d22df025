"""What makes a drill pass: exact row counts equal to the manifest's, every configured check
true, the roles, schemas and extensions the application needs present; and the objectives
(RTO start to validated, RPO at drill time and the worst gap between backups)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from drtool.catalog.manifest import Manifest
from drtool.catalog.records.drills import CheckResult, TableCount
from drtool.config import ObjectivesConfig, RehearsalCheck, format_duration
from drtool.pg.conn import Target
from drtool.pg.scratch import present, run_check
from drtool.services.restore.run import RestoreResult

CHECK_TIMEOUT_SECONDS = 60
GAP_WINDOW = timedelta(days=30)
SHOWN_NAMES = 8

KIND_SQL = "sql"
KIND_BUILTIN = "builtin"
CHECK_ROLES = "roles present"
CHECK_SCHEMAS = "schemas present"
CHECK_EXTENSIONS = "extensions present"


@dataclass(frozen=True)
class Gap:
    """The longest stretch without a new complete backup: from ``after``'s snapshot to
    ``before``'s (None: to the drill time)."""

    seconds: float
    start: datetime
    end: datetime
    after: str
    before: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "seconds": self.seconds,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "after_backup": self.after,
            "before_backup": self.before,
        }


def format_seconds(seconds: float) -> str:
    """``2.4s``, ``75.0s``; from 10 minutes on ``1h 5m`` (two units)."""
    if seconds < 600:
        return f"{seconds:.1f}s"
    total, parts = int(seconds), []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size:
            parts.append(f"{total // size}{unit}")
            total %= size
    return " ".join(parts[:2])


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def snapshot_time(manifest: Manifest) -> datetime:
    return _aware(manifest.snapshot_at or manifest.created_at)


def _names(items: list[str]) -> str:
    shown = ", ".join(items[:SHOWN_NAMES])
    more = len(items) - SHOWN_NAMES
    return shown + (f" and {more} more" if more > 0 else "")


def table_counts(manifest: Manifest, restored: RestoreResult) -> list[TableCount]:
    """Expected rows from the manifest (taken in the dump's snapshot; 0 for excluded data),
    actual rows from the exact count(*) in the scratch database after the restore."""
    out: list[TableCount] = []
    for table, expected in sorted(manifest.tables.items()):
        actual = restored.tables.get(table)
        out.append(TableCount(table=table, expected=expected, actual=actual, ok=actual == expected))
    return out


def run_checks(
    target: Target, checks: list[RehearsalCheck], check_abort: Callable[[], None] = lambda: None
) -> list[CheckResult]:
    """Each check in turn; ``check_abort`` before and after each (a scheduled run's abort)."""
    results = []
    for check in checks:
        check_abort()
        outcome = run_check(target, check.sql, CHECK_TIMEOUT_SECONDS)
        check_abort()
        results.append(CheckResult(name=check.name, ok=outcome.ok, detail=outcome.detail))
    return results


def builtin_checks(
    target: Target, manifest: Manifest, restored: RestoreResult
) -> list[CheckResult]:
    """The roles the restore needed (owners, grantees, policy roles), the schemas of every
    table in the backup and the extensions the dump creates must exist in the scratch."""
    plan = restored.plan
    roles = sorted(set(plan.roles_to_create) | set(plan.roles_present))
    schemas = sorted({name.partition(".")[0] for name in manifest.tables})
    extensions = sorted(set(plan.extensions_to_create))
    have_roles, have_schemas, have_extensions = present(target, roles, schemas, extensions)
    out = []
    for name, wanted, have in (
        (CHECK_ROLES, roles, have_roles),
        (CHECK_SCHEMAS, schemas, have_schemas),
        (CHECK_EXTENSIONS, extensions, have_extensions),
    ):
        missing = [item for item in wanted if item not in have]
        if missing:
            detail = f"missing: {_names(missing)}"
        else:
            detail = _names(wanted) if wanted else "none needed"
        out.append(CheckResult(name=name, ok=not missing, detail=detail, kind=KIND_BUILTIN))
    return out


def worst_gap(backups: list[Manifest], now: datetime) -> Gap | None:
    """The longest time without a new complete backup over the last 30 days, up to ``now``.
    The backup before the window anchors the first gap (counted from the window's start)."""
    window_start = now - GAP_WINDOW
    points = sorted(((snapshot_time(m), m.id) for m in backups), key=lambda p: p[0])
    points = [p for p in points if p[0] <= now]
    if not points:
        return None
    before_window = [p for p in points if p[0] < window_start]
    inside = [p for p in points if p[0] >= window_start]
    chain = ([before_window[-1]] if before_window else []) + inside
    best: Gap | None = None
    for (start, after), nxt in zip(chain, [*chain[1:], None], strict=True):
        end, before = nxt if nxt is not None else (now, None)
        seconds = (end - max(start, window_start)).total_seconds()
        if best is None or seconds > best.seconds:
            best = Gap(round(seconds, 3), start, end, after, before)
    return best


@dataclass(frozen=True)
class Judgement:
    objectives: dict[str, Any]
    failures: list[str]


def judge(
    cfg: ObjectivesConfig,
    tables: list[TableCount],
    checks: list[CheckResult],
    rto_seconds: float | None,
    rpo_seconds: float,
    gap: Gap | None,
) -> Judgement:
    """Every failed validation and breached objective, each named in one line."""
    failures: list[str] = []
    for row in tables:
        if not row.ok:
            got = "no such table" if row.actual in (None, -1) else f"{row.actual} rows"
            failures.append(
                f"table {row.table}: {got} restored, the manifest recorded {row.expected}"
            )
    for check in checks:
        if not check.ok:
            prefix = f"check '{check.name}' failed" if check.kind == KIND_SQL else check.name
            failures.append(f"{prefix}: {check.detail}")
    rto, rpo = cfg.rto.total_seconds(), cfg.rpo.total_seconds()
    rto_met = rto_seconds is not None and rto_seconds <= rto
    rpo_met = rpo_seconds <= rpo
    gap_met = gap is None or gap.seconds <= rpo
    if rto_seconds is not None and not rto_met:
        failures.append(
            f"RTO {format_seconds(rto_seconds)} exceeds the objective rto "
            f"{format_duration(cfg.rto)}"
        )
    if not rpo_met:
        failures.append(
            f"RPO {format_seconds(rpo_seconds)} (the restored backup's snapshot age at drill "
            f"time) exceeds the objective rpo {format_duration(cfg.rpo)}"
        )
    if gap is not None and not gap_met:
        until = f"backup {gap.before}" if gap.before else "the drill"
        failures.append(
            f"RPO worst gap {format_seconds(gap.seconds)} (no new backup from backup "
            f"{gap.after} at {gap.start.isoformat(timespec='seconds')} to {until}) exceeds "
            f"the objective rpo {format_duration(cfg.rpo)}"
        )
    objectives = {
        "rto": format_duration(cfg.rto),
        "rpo": format_duration(cfg.rpo),
        "rto_seconds": rto,
        "rpo_seconds": rpo,
        "rto_met": rto_met if rto_seconds is not None else None,
        "rpo_met": rpo_met,
        "rpo_worst_gap_met": gap_met,
    }
    return Judgement(objectives, failures)
