"""DR health against the objectives, from manifests and small records only (never data objects):
newest backup and RPO exposure, last verification, last drill, job runs, and the breaches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from drtool.catalog.manifest import BackupManifest, Manifest
from drtool.catalog.records.drills import DrillRecord, latest_drill
from drtool.catalog.records.runs import JobRun, list_runs
from drtool.catalog.records.stream_state import read_state
from drtool.catalog.records.verifications import latest_verification
from drtool.config import ObjectivesConfig, format_duration
from drtool.errors import EXIT_OBJECTIVE, EXIT_OK
from drtool.services.bundle.drift import BundleDrift, bundle_drift, drift_breach
from drtool.services.context import Context
from drtool.services.jobs.replica_lag import ReplicaState, replica_breaches, replica_states

if TYPE_CHECKING:
    from drtool.services.stream.status import StreamStatus

# Objective names, as in the `drtool_objective_breached{objective=...}` metric.
OBJECTIVE_RPO = "rpo"
OBJECTIVE_RTO = "rto"
OBJECTIVE_VERIFY = "verify"
OBJECTIVE_DRILL = "drill"
OBJECTIVE_DRILL_AGE = "drill_age"
OBJECTIVE_REPLICA_LAG = "replica_lag"  # a replica behind objectives.replica_lag, or unreadable
OBJECTIVE_BUNDLE_DRIFT = "bundle_drift"  # a configured value differs from the newest bundle's
OBJECTIVE_STREAM_SLOT_LAG = "stream_slot_lag"  # services/stream/status.py judges both
OBJECTIVE_STREAM_RPO = "stream_rpo"
OBJECTIVE_NAMES = (
    OBJECTIVE_RPO,
    OBJECTIVE_RTO,
    OBJECTIVE_VERIFY,
    OBJECTIVE_DRILL,
    OBJECTIVE_DRILL_AGE,
    OBJECTIVE_REPLICA_LAG,
    OBJECTIVE_BUNDLE_DRIFT,
    OBJECTIVE_STREAM_SLOT_LAG,  # the stream's slot holds more WAL than stream.max_slot_lag
    OBJECTIVE_STREAM_RPO,  # stream.enabled and the stream is stopped or not storing
)


@dataclass(frozen=True)
class LastBackup:
    id: str
    at: datetime  # the snapshot time: the recovery point
    age_seconds: float
    created_at: datetime
    size: int
    label: str | None


@dataclass(frozen=True)
class LastVerify:
    id: str  # the verified item
    kind: str
    at: datetime
    ok: bool
    deep: bool
    problems: int
    record_id: str


@dataclass(frozen=True)
class LastDrill:
    id: str
    at: datetime
    verdict: str | None
    rto_seconds: float | None
    rpo_seconds: float | None
    backup_id: str | None
    age_seconds: float


@dataclass(frozen=True)
class Objectives:
    rpo: str
    rto: str
    drill_max_age: str | None
    rpo_seconds: float
    rto_seconds: float
    drill_max_age_seconds: float | None
    replica_lag: str | None = None
    replica_lag_seconds: float | None = None


@dataclass(frozen=True)
class StatusResult:
    ok: bool
    checked_at: datetime
    last_backup: LastBackup | None
    last_verify: LastVerify | None
    last_drill: LastDrill | None
    rpo_exposure_seconds: float | None
    objectives: Objectives
    breaches: list[str]
    breached: list[str]  # objective names (OBJECTIVE_NAMES) in breach
    jobs: list[JobRun]
    replicas: list[ReplicaState] = field(default_factory=list)
    bundle: BundleDrift | None = None
    stream: StreamStatus | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.ok else EXIT_OBJECTIVE

    def item_id(self) -> str | None:
        return None

    def summary(self) -> str | None:
        return "; ".join(self.breaches) or None


def format_age(seconds: float) -> str:
    """``3d 4h``, ``2h 5m``, ``4m 10s``, ``12s``: two units at most."""
    total = max(int(seconds), 0)
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size or (unit == "s" and not parts):
            parts.append(f"{total // size}{unit}")
            total %= size
        if len(parts) == 2:
            break
    return " ".join(parts)


def format_elapsed(seconds: float) -> str:
    """A measured duration such as a drill's RTO: ``0.9s``, ``9.4s`` below 10 s (a whole
    second would hide it), then as ``format_age``: ``12s``, ``4m 10s``."""
    if seconds < 9.95:  # what rounds to 10.0s reads as 10s
        return f"{max(seconds, 0.0):.1f}s"
    return format_age(seconds)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _seconds(now: datetime, then: datetime) -> float:
    return round((now - _aware(then)).total_seconds(), 3)


def _last_drill(record: DrillRecord | None, now: datetime) -> LastDrill | None:
    if record is None:
        return None
    at = _aware(record.created_at)
    return LastDrill(
        id=record.id,
        at=at,
        verdict=record.verdict,
        rto_seconds=record.rto_seconds,
        rpo_seconds=record.rpo_seconds,
        backup_id=record.backup_id,
        age_seconds=_seconds(now, at),
    )


def objectives_of(cfg: ObjectivesConfig) -> Objectives:
    age, lag = cfg.drill_max_age, cfg.replica_lag
    return Objectives(
        rpo=format_duration(cfg.rpo),
        rto=format_duration(cfg.rto),
        drill_max_age=format_duration(age) if age is not None else None,
        rpo_seconds=cfg.rpo.total_seconds(),
        rto_seconds=cfg.rto.total_seconds(),
        drill_max_age_seconds=age.total_seconds() if age is not None else None,
        replica_lag=format_duration(lag) if lag is not None else None,
        replica_lag_seconds=lag.total_seconds() if lag is not None else None,
    )


def breaches_of(
    cfg: ObjectivesConfig,
    backup: LastBackup | None,
    verify: LastVerify | None,
    drill: LastDrill | None,
    where: str,
    stream_rpo: float | None = None,
) -> list[tuple[str, str]]:
    """Every objective in breach: (objective name, what is wrong and against which objective).
    ``stream_rpo``: the change stream's RPO, when it stores changes on top of a backup."""
    found: list[tuple[str, str]] = []
    rpo = format_duration(cfg.rpo)
    if stream_rpo is not None and backup is not None and stream_rpo <= cfg.rpo.total_seconds():
        pass  # the stream keeps the recovery point fresh
    elif backup is None:
        found.append((OBJECTIVE_RPO, f"no complete backup in {where} (objective rpo {rpo})"))
    elif backup.age_seconds > cfg.rpo.total_seconds():
        found.append(
            (
                OBJECTIVE_RPO,
                f"newest backup {backup.id} is {format_age(backup.age_seconds)} old "
                f"(snapshot {backup.at.isoformat(timespec='seconds')}): objective rpo {rpo}",
            )
        )
    if verify is not None and not verify.ok:
        found.append(
            (
                OBJECTIVE_VERIFY,
                f"last verification failed: {verify.kind} {verify.id} "
                f"at {verify.at.isoformat(timespec='seconds')}, "
                f"{verify.problems} problem(s) (run `drtool verify {verify.id}` for details)",
            )
        )
    if drill is not None and drill.verdict is not None and drill.verdict != "pass":
        found.append((OBJECTIVE_DRILL, f"last drill {drill.id} failed (verdict {drill.verdict})"))
    rto_seconds = drill.rto_seconds if drill is not None else None
    if drill is not None and rto_seconds is not None and rto_seconds > cfg.rto.total_seconds():
        found.append(
            (
                OBJECTIVE_RTO,
                f"last drill {drill.id} recovered in {format_elapsed(rto_seconds)}: "
                f"objective rto {format_duration(cfg.rto)}",
            )
        )
    if cfg.drill_max_age is not None:
        max_age = format_duration(cfg.drill_max_age)
        if drill is None:
            found.append(
                (OBJECTIVE_DRILL_AGE, f"no drill recorded: objective drill_max_age {max_age}")
            )
        elif drill.age_seconds > cfg.drill_max_age.total_seconds():
            found.append(
                (
                    OBJECTIVE_DRILL_AGE,
                    f"last drill {drill.id} is {format_age(drill.age_seconds)} old: "
                    f"objective drill_max_age {max_age}",
                )
            )
    return found


def gather_status(ctx: Context, backups: Sequence[Manifest] | None = None) -> StatusResult:
    """Read the newest backup manifest, the newest verification and drill records, the
    job-run records and each replica's backup manifests (never a data object) and judge them
    against ``objectives``. ``backups``: the complete backups, newest first, when the caller
    has listed them already (the report)."""
    now = ctx.clock()
    if backups is None:
        backups = ctx.catalog.listing("backup").items
    backup: LastBackup | None = None
    if backups:
        newest = backups[0]
        at = newest.snapshot_at or newest.created_at
        backup = LastBackup(
            id=newest.id,
            at=at,
            age_seconds=_seconds(now, at),
            created_at=newest.created_at,
            size=newest.size,
            label=newest.label,
        )
    record = latest_verification(ctx.storage)
    verify = None
    if record is not None:
        verify = LastVerify(
            id=record.item_id,
            kind=record.kind,
            at=record.at,
            ok=record.ok,
            deep=record.deep,
            problems=len(record.problems),
            record_id=record.id,
        )
    drill = _last_drill(latest_drill(ctx.storage), now)
    cfg = ctx.config.objectives
    stream = _stream(ctx)
    stream_rpo = stream.rpo_seconds if stream is not None else None
    found = breaches_of(cfg, backup, verify, drill, ctx.storage.description, stream_rpo)
    if stream is not None:
        found += stream.breaches
    replicas = replica_states(ctx, backups)
    found += [(OBJECTIVE_REPLICA_LAG, text) for text in replica_breaches(replicas, cfg, format_age)]
    newest_backup = backups[0] if backups else None
    drift = bundle_drift(
        ctx.config, newest_backup if isinstance(newest_backup, BackupManifest) else None
    )
    if (text := drift_breach(drift)) is not None:
        found.append((OBJECTIVE_BUNDLE_DRIFT, text))
    return StatusResult(
        ok=not found,
        checked_at=now,
        last_backup=backup,
        last_verify=verify,
        last_drill=drill,
        rpo_exposure_seconds=_exposure(backup, stream_rpo),
        objectives=objectives_of(cfg),
        breaches=[text for _, text in found],
        breached=sorted({name for name, _ in found}),
        jobs=list_runs(ctx.storage),
        replicas=replicas,
        bundle=drift,
        stream=stream,
    )


def _stream(ctx: Context) -> StreamStatus | None:
    """The stream's status when it is enabled, or when it left a state record (its slot may
    still hold WAL on the server)."""
    if not ctx.config.stream.enabled and read_state(ctx.storage, ctx.config.stream.slot) is None:
        return None
    # Imported here: it reads the slot from the server (psycopg), which `status` needs only
    # with the stream on.
    from drtool.services.stream.status import stream_status

    return stream_status(ctx)


def _exposure(backup: LastBackup | None, stream_rpo: float | None) -> float | None:
    """RPO exposure: the age of the newest recovery point, a backup's snapshot or, with the
    stream storing changes on top of a backup, the newest stored change."""
    if backup is None:
        return None
    if stream_rpo is not None:
        return round(min(backup.age_seconds, stream_rpo), 3)
    return backup.age_seconds
