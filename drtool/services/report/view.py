"""The report's view model: the facts over the period, read with the readers ``status`` uses
(catalog listing, verification and drill records, replica manifests), and the charts' geometry."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from drtool import __version__
from drtool.catalog.manifest import Manifest
from drtool.catalog.records.document import readable
from drtool.catalog.records.drills import DrillRecord, drill_records, latest_drill
from drtool.catalog.records.verifications import parse_verification, verifications
from drtool.catalog.segments import all_segments
from drtool.config import format_duration
from drtool.ids import id_time
from drtool.services.context import Context
from drtool.services.html.charts import Bar, Chart, Gap, bar_chart, timeline_chart
from drtool.services.html.page import human_size
from drtool.services.jobs.health import StatusResult, format_age, format_elapsed, gather_status
from drtool.services.jobs.replica_lag import ReplicaState
from drtool.services.report.gaps import rpo_gaps, worst_gap
from drtool.services.stream.status import StreamStatus

# Verification runs shown (newest first); older ones in the period are counted, not read.
VERIFICATIONS_SHOWN = 100
DRILLS_CHARTED = 60


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class BackupRow:
    id: str
    at: datetime  # the snapshot: the recovery point
    created_at: datetime
    size: int
    label: str | None


@dataclass(frozen=True)
class VerificationRow:
    record_id: str
    item_id: str
    kind: str
    at: datetime
    deep: bool
    ok: bool
    problems: int
    first_problem: str
    seconds: float
    bytes: int


@dataclass(frozen=True)
class DayTotal:
    day: date
    backups: int
    added: int  # stored bytes of that day's backups
    total: int  # stored bytes of every backup up to that day still in the catalog


@dataclass(frozen=True)
class StreamDay:
    day: date
    segments: int
    changes: int


def _stream_days(ctx: Context, start: datetime) -> list[StreamDay]:
    """Change segments stored per day in the period (their manifests only)."""
    by_day: dict[date, list[int]] = {}
    for seg in all_segments(ctx.storage, ctx.config.stream.slot):
        at = _aware(seg.created_at)
        if at >= start:
            by_day.setdefault(at.date(), []).append(seg.changes)
    return [StreamDay(d, len(v), sum(v)) for d, v in sorted(by_day.items())]


def _stream_chart(days: Sequence[StreamDay]) -> Chart | None:
    if not days:
        return None
    bars = [
        Bar(
            d.day.isoformat(),
            d.day.strftime("%m-%d"),
            float(d.changes),
            False,
            f"{d.day.isoformat()}: {d.segments} segment(s), {d.changes} changes stored",
        )
        for d in days
    ]
    return bar_chart(
        "stream", "Changes stored", "day", bars, None, "", lambda v: f"{int(v)}", unit=""
    )


@dataclass(frozen=True)
class ReportView:
    generated_at: datetime
    period_start: datetime
    since: str
    storage: str
    databases: list[str]
    tool_version: str
    status: StatusResult
    backups: list[BackupRow]  # in the period, oldest first
    gaps: list[Gap]
    worst_gap: Gap | None
    gaps_over: int
    timeline: Chart | None
    timeline_from: datetime  # where its time axis starts: the period's start or a later backup
    drills: list[DrillRecord]  # in the period, oldest first
    rto_chart: Chart | None
    verifications: list[VerificationRow]  # newest first, at most VERIFICATIONS_SHOWN
    verifications_total: int
    verifications_failed: int
    replicas: list[ReplicaState]
    replica_chart: Chart | None
    growth: list[DayTotal]
    growth_chart: Chart | None
    latest_drill: DrillRecord | None
    unreadable: list[str]
    # Continuous archiving, when the stream is enabled or has left a state record.
    stream: StreamStatus | None = None
    stream_days: list[StreamDay] | None = None
    stream_chart: Chart | None = None

    @property
    def ok(self) -> bool:
        return self.status.ok


def _backup_rows(backups: Sequence[Manifest], start: datetime) -> list[BackupRow]:
    rows = [
        BackupRow(
            m.id, _aware(m.snapshot_at or m.created_at), _aware(m.created_at), m.size, m.label
        )
        for m in backups
    ]
    return sorted((r for r in rows if r.at >= start), key=lambda r: (r.at, r.id))


def _verification_rows(ctx: Context, start: datetime) -> tuple[list[VerificationRow], int, int]:
    refs = [r for r in verifications(ctx.storage) if id_time(r.record_id) >= start]
    newest = [r.key for r in reversed(refs)][:VERIFICATIONS_SHOWN]
    rows = [
        VerificationRow(
            record_id=v.id,
            item_id=v.item_id,
            kind=v.kind,
            at=_aware(v.at),
            deep=v.deep,
            ok=v.ok,
            problems=len(v.problems),
            first_problem=(
                f"{v.problems[0].object}: {v.problems[0].problem}" if v.problems else ""
            ),
            seconds=v.seconds,
            bytes=v.bytes,
        )
        for v in readable(ctx.storage, newest, parse_verification)
    ]
    return rows, len(refs), sum(1 for r in rows if not r.ok)


def _growth(backups: Sequence[Manifest], start: datetime) -> list[DayTotal]:
    by_day: dict[date, list[int]] = {}
    base = 0
    for m in backups:
        created = _aware(m.created_at)
        if created < start:
            base += m.size
        else:
            by_day.setdefault(created.date(), []).append(m.size)
    days: list[DayTotal] = []
    total = base
    for day in sorted(by_day):
        added = sum(by_day[day])
        total += added
        days.append(DayTotal(day, len(by_day[day]), added, total))
    return days


def _rto_chart(drills: Sequence[DrillRecord], status: StatusResult) -> Chart | None:
    timed = [d for d in drills if d.rto_seconds is not None][-DRILLS_CHARTED:]
    if not timed:
        return None
    objective = status.objectives.rto_seconds
    bars = [
        Bar(
            key=d.id,
            label=_aware(d.created_at).strftime("%m-%d %H:%M"),
            value=d.rto_seconds or 0.0,
            bad=d.verdict != "pass" or (d.rto_seconds or 0.0) > objective,
            title=f"drill {d.id}: {d.verdict}, RTO {format_elapsed(d.rto_seconds or 0.0)}",
        )
        for d in timed
    ]
    return bar_chart(
        "rto",
        "RTO per drill",
        "drill",
        bars,
        objective,
        f"RTO {status.objectives.rto}",
        format_elapsed,
    )


def _replica_chart(replicas: Sequence[ReplicaState], status: StatusResult) -> Chart | None:
    measured = [r for r in replicas if r.lag_seconds is not None]
    if not measured:
        return None
    objectives = status.objectives
    bars = [
        Bar(
            r.name,
            r.name,
            r.lag_seconds or 0.0,
            not r.ok,
            f"replica {r.name}: lag {format_age(r.lag_seconds or 0.0)}",
        )
        for r in measured
    ]
    label = f"replica_lag {objectives.replica_lag}" if objectives.replica_lag else ""
    return bar_chart(
        "replicas",
        "Replica lag",
        "replica",
        bars,
        objectives.replica_lag_seconds,
        label,
        format_age,
    )


def _growth_chart(growth: Sequence[DayTotal]) -> Chart | None:
    if not growth:
        return None
    bars = [
        Bar(
            d.day.isoformat(),
            d.day.strftime("%m-%d"),
            float(d.total),
            False,
            f"{d.day.isoformat()}: {d.backups} backup(s), {human_size(d.added)} added, "
            f"{human_size(d.total)} in all",
        )
        for d in growth
    ]
    return bar_chart(
        "growth",
        "Stored backup bytes",
        "day",
        bars,
        None,
        "",
        lambda v: human_size(int(v)),
        unit="B",
    )


def gather_report(ctx: Context, since: timedelta) -> ReportView:
    """Every fact of the report over the last ``since``, from manifests and records only."""
    listing = ctx.catalog.listing("backup")
    status = gather_status(ctx, listing.items)
    now = status.checked_at
    start = now - since
    backups = _backup_rows(listing.items, start)
    snapshots = [(m.id, _aware(m.snapshot_at or m.created_at)) for m in listing.items]
    gaps = rpo_gaps(snapshots, now, status.objectives.rpo_seconds, since=start)
    timeline = None
    timeline_from = max(min((g.start for g in gaps), default=start), start)
    if gaps:
        timeline = timeline_chart(
            [(b.id, b.at) for b in backups],
            gaps,
            timeline_from,
            now,
            status.objectives.rpo_seconds,
            status.objectives.rpo,
            format_age,
        )
    drills = list(reversed(drill_records(ctx.storage, since=start)))
    rows, total, failed = _verification_rows(ctx, start)
    growth = _growth(listing.items, start)
    latest = drills[-1] if drills else latest_drill(ctx.storage)
    databases = sorted({db for m in listing.items if (db := getattr(m, "database", None))})
    stream_days = _stream_days(ctx, start) if status.stream is not None else None
    return ReportView(
        generated_at=now,
        period_start=start,
        since=format_duration(since),
        storage=ctx.storage.description,
        databases=databases,
        tool_version=__version__,
        status=status,
        backups=backups,
        gaps=gaps,
        worst_gap=worst_gap([g for g in gaps if not g.open]),
        gaps_over=sum(1 for g in gaps if g.over and not g.open),
        timeline=timeline,
        timeline_from=timeline_from,
        drills=drills,
        rto_chart=_rto_chart(drills, status),
        verifications=rows,
        verifications_total=total,
        verifications_failed=failed,
        replicas=status.replicas,
        replica_chart=_replica_chart(status.replicas, status),
        growth=growth,
        growth_chart=_growth_chart(growth),
        latest_drill=latest,
        unreadable=[key for key, _ in listing.unreadable],
        stream=status.stream,
        stream_days=stream_days,
        stream_chart=_stream_chart(stream_days or []),
    )
