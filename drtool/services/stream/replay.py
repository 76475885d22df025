"""Point-in-time recovery (``restore ID|latest --until TIME``, ``rehearse --until``): restore
the newest base backup taken before TIME, then replay the stored change stream on it up to
TIME, each source transaction as one target transaction, in commit order."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from drtool.catalog.catalog import SEGMENT_OBJECT
from drtool.catalog.manifest import BackupManifest, SegmentManifest
from drtool.catalog.records.stream_state import read_state
from drtool.catalog.seal import check_seal
from drtool.crypto.keys import Identity
from drtool.errors import DrtoolError, IntegrityError, UsageError
from drtool.log import get_logger
from drtool.pg.conn import Target, apply_copy_settings, connect
from drtool.pg.restore.target import open_session
from drtool.pg.stream.apply import Replayer, ReplayStats, XidSnapshot, quiet_triggers
from drtool.pg.stream.frames import FrameError, read_frames
from drtool.pg.stream.pgoutput import datetime_to_pg_time, pg_time_to_datetime
from drtool.pg.stream.slot import set_sequences
from drtool.pipeline.stages import Digest
from drtool.pipeline.store import check_digest, load
from drtool.services.context import Context
from drtool.services.keys import configured_identities
from drtool.services.restore.auth import resolve_backup
from drtool.services.restore.request import RestoreRequest, check_request, parse_to
from drtool.services.restore.run import RestoreResult, run_restore
from drtool.services.stream.chain import HINT, ReplayPlan, plan_replay

log = get_logger("stream")


def parse_until(text: str) -> datetime:
    """``--until``: an ISO 8601 time with its UTC offset (``2026-12-05T17:03:59Z``)."""
    try:
        value = datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise UsageError(
            f"--until {text!r}: expected an ISO 8601 time with its offset, e.g. "
            "2026-12-05T17:03:59Z or 2026-12-05T18:03:59+01:00",
            hint="a time without an offset is ambiguous in a recovery",
        )
    return value.astimezone(UTC)


def resolve_base(ctx: Context, ref: str, until: datetime) -> BackupManifest:
    """The backup to replay on: ``ref``, or for ``latest`` the newest backup whose snapshot is
    at or before ``until`` and that records its place in the stream."""
    if ref != "latest":
        manifest = resolve_backup(ctx, ref)
        if not isinstance(manifest, BackupManifest) or manifest.stream is None:
            raise UsageError(
                f"backup {ref} records no position in the change stream (taken by an older "
                "drtool, or from a standby): it cannot be a base for --until",
                hint="use `latest`, or a backup taken since `drtool stream run` started",
            )
        if (manifest.snapshot_at or manifest.created_at) > until:
            raise UsageError(
                f"backup {ref} was taken at {manifest.snapshot_at}, after --until {until}",
                hint="use `latest`: drtool picks the newest backup before that time",
            )
        return manifest
    for item in ctx.catalog.listing("backup").items:
        if (
            isinstance(item, BackupManifest)
            and item.stream is not None
            and (item.snapshot_at or item.created_at) <= until
        ):
            return item
    raise UsageError(
        f"no backup taken before {until.isoformat()} records a position in the change stream "
        f"in {ctx.where}",
        hint="point-in-time recovery starts from a backup taken while `drtool stream run` "
        "kept its slot; `drtool list` shows the backups",
    )


@dataclass
class PointInTime:
    """What ``--until`` did on top of the base backup."""

    until: datetime
    base: str
    generation: str | None
    segments: list[str]
    covered_to: datetime | None
    stats: ReplayStats = field(default_factory=ReplayStats)
    recovered_to: datetime | None = None
    sequences: int = 0
    triggers: str = "none"
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "until": self.until.isoformat(),
            "base_backup": self.base,
            "chain": self.generation,
            "segments": len(self.segments),
            "transactions_applied": self.stats.applied,
            "transactions_in_base": self.stats.skipped,
            "changes_applied": self.stats.changes,
            "recovered_to": self.recovered_to.isoformat() if self.recovered_to else None,
            "stored_through": self.covered_to.isoformat() if self.covered_to else None,
            "sequences_set": self.sequences,
            "triggers": self.triggers,
            "seconds": round(self.seconds, 3),
            "warnings": self.warnings,
        }

    def expected_counts(self, base_counts: dict[str, int]) -> dict[str, int]:
        """Rows each table should hold: the base backup's exact counts moved by every insert,
        delete and truncate replayed."""
        out = dict(base_counts)
        for name in self.stats.truncated:
            out[name] = 0
        for name, delta in self.stats.rows.items():
            base = 0 if name in self.stats.truncated else base_counts.get(name, 0)
            out[name] = base + delta
        return out


def prepare(ctx: Context, ref: str, until: datetime) -> tuple[ReplayPlan, list[str]]:
    """Choose the base backup and the segments, and check everything nothing can be changed
    by yet: the chain's continuity, a schema change before ``until``, and every segment's
    stored bytes (so an integrity failure leaves the target untouched)."""
    slot = ctx.config.stream.slot
    base = resolve_base(ctx, ref, until)
    state = read_state(ctx.storage, slot)
    through = (
        (state.generation, state.stored_through_at)
        if state is not None and state.stored_through_at is not None
        else None
    )
    plan = plan_replay(ctx.storage, slot, base, until, through)
    if plan.schema_limit is not None and until >= plan.schema_limit:
        raise UsageError(
            f"the schema changed after {plan.schema_limit.isoformat()} "
            f"({'; '.join(plan.schema_changes)}), which the change stream does not carry: "
            f"backup {base.id} cannot be replayed to {until.isoformat()}",
            hint="recover to a time before the change, or after the next base backup "
            "(`drtool list`: the stream takes one after every schema change)",
        )
    warnings = []
    if plan.covered_to is None or plan.covered_to < until:
        stored = plan.covered_to.isoformat() if plan.covered_to else "the base backup"
        warnings.append(
            f"changes committed after {stored} are not in storage: the database is recovered "
            f"as of then, not {until.isoformat()}"
        )
    if state is not None and state.not_captured:
        warnings.append(
            "not captured by the stream (the role cannot publish them), so as in the base "
            f"backup: {', '.join(state.not_captured)}"
        )
    if state is not None and state.not_replayable:
        warnings.append(
            "only INSERT and TRUNCATE are captured for (no replica identity): "
            f"{', '.join(state.not_replayable)}"
        )
    for seg in plan.segments:
        _check_stored(ctx, seg)
    return plan, warnings


def _check_stored(ctx: Context, seg: SegmentManifest) -> None:
    """The segment's object as stored: its size and SHA-256 (no key needed)."""
    obj = seg.object(SEGMENT_OBJECT)
    digest = Digest()
    try:
        for chunk in ctx.storage.get(obj.key):
            digest.update(chunk)
    except DrtoolError as exc:
        raise IntegrityError(
            f"stream segment {seg.id}: {exc.message}", hint=HINT, obj=SEGMENT_OBJECT
        ) from None
    check_digest(
        digest,
        size=obj.size,
        sha256=obj.sha256,
        what=f"stream segment {seg.id} (stored)",
        obj=SEGMENT_OBJECT,
    )


def replay(
    ctx: Context,
    plan: ReplayPlan,
    target: Target,
    until: datetime,
    identities: list[Identity],
) -> PointInTime:
    """Apply ``plan``'s segments to the restored ``target`` up to ``until``."""
    started = time.monotonic()
    base = plan.base
    assert base.stream is not None
    pit = PointInTime(
        until, base.id, plan.generation, [s.id for s in plan.segments], plan.covered_to
    )
    tables = sorted({name for seg in plan.segments for name in seg.relations})
    where = target.describe()
    with connect(target, "replaying the change stream", autocommit=False) as conn:
        apply_copy_settings(conn)
        conn.commit()
        with quiet_triggers(conn, tables) as how:
            pit.triggers = how
            replayer = Replayer(
                conn, XidSnapshot.parse(base.stream.snapshot), datetime_to_pg_time(until)
            )
            try:
                last_applied = _apply_segments(ctx, plan, replayer, identities)
            except BaseException:
                replayer.abandon()
                raise
            replayer.finish()
            if last_applied is not None:
                missing = set_sequences(conn, dict(last_applied.sequences))
                conn.commit()
                pit.sequences = len(last_applied.sequences) - len(missing)
    pit.stats = replayer.stats
    if replayer.stats.last_commit_time is not None:
        pit.recovered_to = pg_time_to_datetime(replayer.stats.last_commit_time)
    pit.seconds = time.monotonic() - started
    log.info(
        "replayed %d transactions (%d changes) from %d segments into %s, up to %s",
        pit.stats.applied,
        pit.stats.changes,
        len(plan.segments),
        where,
        pit.recovered_to.isoformat() if pit.recovered_to else "the base backup",
    )
    return pit


def _apply_segments(
    ctx: Context, plan: ReplayPlan, replayer: Replayer, identities: list[Identity]
) -> SegmentManifest | None:
    """Each segment authenticated (seal, then chunk by chunk) and applied in order, up to the
    first commit after the recovery target; the last segment a transaction was applied from."""
    last_applied: SegmentManifest | None = None
    for seg in plan.segments:
        what = f"stream segment {seg.id}"
        check_seal(ctx.storage, seg, SEGMENT_OBJECT, identities, what=what, hint=HINT)
        before = replayer.stats.applied
        chunks = load(ctx.storage, seg.object(SEGMENT_OBJECT).stored(), identities)
        try:
            replayer.apply(read_frames(chunks), what)
        except FrameError as exc:
            raise IntegrityError(f"{what}: {exc}", hint=HINT, obj=SEGMENT_OBJECT) from None
        finally:
            with contextlib.suppress(Exception):
                chunks.close()  # type: ignore[attr-defined]
        if replayer.stats.applied > before:
            last_applied = seg
        if replayer.stats.stopped:
            break
        ctx.check_abort()
    return last_applied


def check_until_request(req: RestoreRequest) -> None:
    if req.to_file is not None:
        raise UsageError("--until restores into a database (--to DSN), not --to-file")
    if req.tables or req.schema_only or req.data_only:
        raise UsageError(
            "--until recovers the whole database: it does not combine with --table, "
            "--schema-only or --data-only"
        )


def run_restore_until(ctx: Context, req: RestoreRequest) -> RestoreResult:
    """``restore ID|latest --to DSN --until TIME``."""
    assert req.until is not None
    check_request(req)
    check_until_request(req)
    identities = configured_identities(ctx.config)
    plan, warnings = prepare(ctx, req.ref, req.until)
    result = run_restore(ctx, replace(req, ref=plan.base.id, until=None))
    if req.dry_run:
        pit = PointInTime(
            req.until, plan.base.id, plan.generation, [s.id for s in plan.segments], plan.covered_to
        )
        pit.warnings = warnings
        return replace(result, point_in_time=pit.as_dict())
    assert req.to_dsn is not None
    target = parse_to(req.to_dsn)
    pit = replay(ctx, plan, target, req.until, identities)
    pit.warnings = warnings
    for warning in warnings:
        log.warning("%s", warning)
    counts = check_counts(target, pit.expected_counts(result.tables))
    return replace(result, tables=counts, point_in_time=pit.as_dict())


def check_counts(target: Target, expected: dict[str, int]) -> dict[str, int]:
    """The exact rows now in each table, which must be what the base and the replayed
    changes add up to."""
    with open_session(target) as session:
        counts = session.count_rows(sorted(expected))
    wrong = {t: (counts.get(t), n) for t, n in expected.items() if counts.get(t) != n}
    if wrong:
        detail = ", ".join(
            f"{t}: {got} rows, expected {n}" for t, (got, n) in sorted(wrong.items())
        )
        raise DrtoolError(
            f"after replaying the change stream the row counts differ: {detail}",
            hint="the target changed during the recovery, or the stream is incomplete",
        )
    return counts
