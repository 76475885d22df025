"""``stream run``: keep a logical replication slot and store committed changes as sealed,
chained segments (docs/streaming.md). The slot is advanced only after the segment holding the
changes is stored: a crash at any point loses nothing, and what was stored but not yet
confirmed is recognised by its LSN on restart and never stored twice."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from drtool import __version__
from drtool.catalog.catalog import SEGMENT_FILE, SEGMENT_OBJECT, segment_prefix
from drtool.catalog.manifest import BackupManifest, SegmentManifest
from drtool.catalog.records.stream_state import StreamState, read_state, write_state
from drtool.catalog.segments import newest_segment
from drtool.config import StreamConfig
from drtool.errors import EXIT_OK, DrtoolError, OperationError
from drtool.ids import new_id
from drtool.log import get_logger, redact
from drtool.pg.conn import Target, apply_copy_settings, connect, server_version
from drtool.pg.dump.snapshot import advisory_lock
from drtool.pg.stream.frames import format_lsn, parse_lsn
from drtool.pg.stream.slot import (
    PUBLISH_ALL,
    PUBLISH_INSERTS,
    Conn,
    TableFacts,
    advance_slot,
    check_slot,
    check_source,
    create_slot,
    flush_lsn,
    insert_only_publication,
    peek_changes,
    read_sequences,
    slot_state,
    sync_publication,
    table_facts,
)
from drtool.services.backup import run_backup
from drtool.services.context import Context
from drtool.services.keys import compression_field, configured_recipients, encryption_field
from drtool.services.stream.capture import SegmentFacts, frames

log = get_logger("stream")

BASE_LABEL = "stream base backup"


def lock_name(slot: str) -> str:
    """The advisory lock a ``stream run`` holds: one per slot, and ``stream drop`` waits."""
    return f"drtool:stream:{slot}"


class StreamStopped(Exception):
    """The base backup was asked to stop because the stream is stopping."""


@dataclass(frozen=True)
class Tables:
    """What ``stream run`` publishes, and what it cannot."""

    full: list[TableFacts]  # every change published
    inserts_only: list[TableFacts]  # no usable replica identity: INSERT and TRUNCATE only
    not_captured: list[TableFacts]  # the role does not own them: not published at all

    @property
    def shapes(self) -> dict[str, str]:
        return {t.qualified: t.shape for t in (*self.full, *self.inserts_only)}


def choose_tables(facts: list[TableFacts], cfg: StreamConfig, skip: set[str]) -> Tables:
    chosen = [
        t
        for t in facts
        if (cfg.tables is None or t.qualified in cfg.tables) and t.qualified not in skip
    ]
    return Tables(
        full=[t for t in chosen if t.ownable and t.replayable],
        inserts_only=[t for t in chosen if t.ownable and not t.replayable],
        not_captured=[t for t in chosen if not t.ownable],
    )


@dataclass
class StreamRunResult:
    slot: str
    generation: str
    segments: int
    changes: int
    base_backups: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    exit_code: int = EXIT_OK

    def item_id(self) -> str | None:
        return None

    def summary(self) -> str:
        return f"stream {self.slot}: {self.segments} segments, {self.changes} changes stored" + (
            f", base backups {', '.join(self.base_backups)}" if self.base_backups else ""
        )

    def stats(self) -> dict[str, float]:
        return {"segments": float(self.segments), "changes": float(self.changes)}


@dataclass
class _Position:
    generation: str
    generation_lsn: str
    sequence: int  # of the newest stored segment (0: none yet)
    predecessor: str | None
    confirmed: int  # where the slot is (as this process left it)
    empty_through: str | None = None


class _BaseBackup:
    """A base backup on a thread, stopped (its objects removed) when the stream stops."""

    def __init__(self, ctx: Context, stop: threading.Event) -> None:
        self.result: BackupManifest | None = None
        self.error: BaseException | None = None

        def abort() -> None:
            if stop.is_set():
                raise StreamStopped("the stream is stopping")

        self._ctx = Context(
            ctx.config, ctx.storage, ctx.clock, ctx.progress, abort, source=ctx.source
        )
        self._thread = threading.Thread(target=self._run, name="base-backup", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.result = run_backup(self._ctx, BASE_LABEL).manifest
        except BaseException as exc:
            self.error = exc

    def done(self) -> bool:
        return not self._thread.is_alive()

    def join(self) -> None:
        self._thread.join()


class Streamer:
    """One ``stream run``: a connection to the source holding the slot's position."""

    def __init__(
        self,
        ctx: Context,
        conn: Conn,
        target: Target,
        stop: threading.Event,
        on_breach: Callable[[str], None] | None = None,
    ) -> None:
        self.ctx = ctx
        self.on_breach = on_breach
        self.lag_noticed_at: float | None = None
        self.cfg = ctx.config.stream
        self.conn = conn
        self.target = target
        self.stop = stop
        self.slot = self.cfg.slot
        self.publications = [self.cfg.publication, insert_only_publication(self.cfg.publication)]
        self.recipients = configured_recipients(ctx.config)
        self.result = StreamRunResult(self.slot, "", 0, 0)
        self.tables = Tables([], [], [])
        self.shapes: dict[str, str] = {}
        self.last_check: datetime | None = None
        # Schema changes seen but not yet recorded in a segment, and since when they may be.
        self.pending_changes: list[str] = []
        self.relation_shapes: dict[int, tuple[object, ...]] = {}
        self.stored_through: datetime | None = None
        self.base: _BaseBackup | None = None
        self.base_due_at: float = 0.0  # monotonic time the next base backup is due
        self.base_needed = False
        self.rate: float | None = None
        self.pos: _Position
        self.slot_bytes: tuple[int, int] | None = None

    # -- start -------------------------------------------------------------------------------

    def start(self) -> None:
        check_source(self.conn)
        record = read_state(self.ctx.storage, self.slot)
        if record is not None and record.table_shapes:
            # DDL while the stream was stopped: seen now, possible since the last check.
            self.shapes = dict(record.table_shapes)
            self.last_check = record.updated_at
            self.pending_changes = self._sync_tables()
        else:
            self._sync_tables(initial=True)
        self.pos = self._resume()
        self.result.generation = self.pos.generation
        self._plan_base_backup()

    def _sync_tables(self, initial: bool = False) -> list[str]:
        """Publish what can be published; returns the schema changes since the last check."""
        cfg = self.ctx.config
        skip = set(cfg.backup.exclude_table_data)
        facts = table_facts(self.conn, list(cfg.backup.exclude_schemas))
        tables = choose_tables(facts, self.cfg, skip)
        sync_publication(self.conn, self.publications[0], PUBLISH_ALL, tables.full)
        sync_publication(self.conn, self.publications[1], PUBLISH_INSERTS, tables.inserts_only)
        shapes = tables.shapes
        changes: list[str] = []
        if not initial:
            for name, shape in sorted(shapes.items()):
                old = self.shapes.get(name)
                if old is None:
                    changes.append(f"new table {name}")
                elif old != shape:
                    changes.append(f"changed table {name}")
            changes += [f"dropped table {n}" for n in sorted(set(self.shapes) - set(shapes))]
        if initial or [t.qualified for t in tables.inserts_only] != [
            t.qualified for t in self.tables.inserts_only
        ]:
            self._name_limits(tables)
        self.tables = tables
        self.shapes = shapes
        return changes

    def _name_limits(self, tables: Tables) -> None:
        warnings = []
        if tables.inserts_only:
            warnings.append(
                "tables without a usable replica identity (no primary key, REPLICA IDENTITY "
                "NOTHING): only their INSERT and TRUNCATE are captured, their UPDATE and "
                "DELETE cannot be replayed (and are not published, so the application's "
                "UPDATE and DELETE keep working): "
                + ", ".join(t.qualified for t in tables.inserts_only)
                + " (fix: ALTER TABLE ... REPLICA IDENTITY FULL, or add a primary key)"
            )
        if tables.not_captured:
            warnings.append(
                "tables the connected role does not own cannot be published, so their changes "
                "are not captured (a restore --until has them as in the base backup): "
                + ", ".join(t.qualified for t in tables.not_captured)
            )
        for warning in warnings:
            log.warning("stream %s: %s", self.slot, warning)
        self.result.warnings = warnings

    def _resume(self) -> _Position:
        """Where the chain continues: create the slot (a new generation), or check the slot
        against the newest stored segment and the state record."""
        state = slot_state(self.conn, self.slot)
        if state is None:
            lsn = format_lsn(create_slot(self.conn, self.slot))
            log.info("stream %s: created the replication slot at %s", self.slot, lsn)
            return self._new_generation(lsn, "the slot was created")
        check_slot(state, self.target.dbname)
        if state.active:
            raise OperationError(
                f"replication slot {self.slot} is in use by process {state.active_pid}",
                hint="another `drtool stream run` (or a subscriber) uses it",
            )
        newest = newest_segment(self.ctx.storage, self.slot)
        record = read_state(self.ctx.storage, self.slot)
        confirmed = state.confirmed_lsn
        if newest is None:
            if (
                record is not None
                and record.newest_segment is None
                and (
                    parse_lsn(record.generation_lsn) == confirmed
                    or (
                        record.empty_through_lsn
                        and parse_lsn(record.empty_through_lsn) >= confirmed
                    )
                )
            ):
                return _Position(record.generation, record.generation_lsn, 0, None, confirmed)
            return self._new_generation(format_lsn(confirmed), "no segment was stored yet")
        end = parse_lsn(newest.to_lsn)
        pos = _Position(newest.generation, newest.generation_lsn, newest.sequence, newest.id, end)
        if confirmed < end:
            # Stored, but the process died before the slot was advanced: skip what is stored.
            advance_slot(self.conn, self.slot, newest.to_lsn)
            log.info(
                "stream %s: segment %s was stored but not confirmed; slot advanced to %s",
                self.slot,
                newest.id,
                newest.to_lsn,
            )
            return pos
        if confirmed == end:
            return pos
        empty = record.empty_through_lsn if record is not None else None
        if (
            record is not None
            and record.generation == newest.generation
            and record.newest_segment == newest.id
            and empty is not None
            and confirmed <= parse_lsn(empty)
        ):
            pos.confirmed = confirmed
            pos.empty_through = format_lsn(confirmed)
            return pos
        return self._new_generation(
            format_lsn(confirmed),
            f"the slot is at {format_lsn(confirmed)}, past the newest stored segment "
            f"({newest.id}, {newest.to_lsn}): changes in between are not in storage",
        )

    def _new_generation(self, lsn: str, why: str) -> _Position:
        generation = new_id(self.ctx.clock())
        log.warning(
            "stream %s: new chain %s from %s (%s); a base backup starts it",
            self.slot,
            generation,
            lsn,
            why,
        )
        self.base_needed = True
        return _Position(generation, lsn, 0, None, parse_lsn(lsn))

    def _plan_base_backup(self) -> None:
        """A base backup is due when no backup since the chain began is younger than
        ``stream.base_backup_every``."""
        if self.base_needed:
            self.base_due_at = 0.0
            return
        start = parse_lsn(self.pos.generation_lsn)
        newest: BackupManifest | None = None
        for item in self.ctx.catalog.listing("backup").items:
            if (
                isinstance(item, BackupManifest)
                and item.stream is not None
                and parse_lsn(item.stream.lsn) >= start
            ):
                newest = item
                break
        if newest is None:
            self.base_needed = True
            self.base_due_at = 0.0
            return
        age = (self.ctx.clock() - (newest.snapshot_at or newest.created_at)).total_seconds()
        self.base_due_at = time.monotonic() + self.cfg.base_backup_every.total_seconds() - age

    # -- cycles ------------------------------------------------------------------------------

    def cycle(self) -> bool:
        """Store what is committed; True if more is pending (a segment reached its size)."""
        checked_at = self.ctx.clock()
        changes = self.pending_changes + self._sync_tables()
        self.pending_changes = []
        if changes:
            for change in changes:
                log.warning("stream %s: schema change: %s", self.slot, change)
            self.base_needed = True
        self._check_position()
        upto = flush_lsn(self.conn)
        started = time.monotonic()
        facts = SegmentFacts(known_shapes=self.relation_shapes)
        seg_id = new_id(checked_at)
        stored: SegmentManifest | None = None
        with peek_changes(
            self.conn, self.slot, self.publications, upto, self.cfg.segment_max_changes
        ) as rows:
            first = next(rows, None)
            if first is not None or changes:
                body = frames(_chain(first, rows), facts)
                stored = self._store(seg_id, checked_at, body, facts, changes)
        if facts.changed_relations:
            for name in facts.changed_relations:
                log.warning("stream %s: schema change: changed table %s", self.slot, name)
            self.base_needed = True
        if stored is not None:
            advance_slot(self.conn, self.slot, stored.to_lsn)
            self.pos.confirmed = parse_lsn(stored.to_lsn)
            self.pos.sequence = stored.sequence
            self.pos.predecessor = stored.id
            self.pos.empty_through = None
            self.result.segments += 1
            self.result.changes += stored.changes
            seconds = max(time.monotonic() - started, 1e-6)
            self.rate = stored.changes / seconds
            log.info(
                "stream %s: segment #%d %s: %d transactions, %d changes, up to %s",
                self.slot,
                stored.sequence,
                stored.id,
                stored.transactions,
                stored.changes,
                stored.to_lsn,
            )
        capped = facts.messages >= self.cfg.segment_max_changes
        if not capped and parse_lsn(upto) > self.pos.confirmed:
            # Nothing (more) published up to ``upto``: move the slot over it, so the server can
            # recycle that WAL. The state record says so first (a crash in between is then
            # recognised as ours, not as a gap).
            self.pos.empty_through = upto
            self._write_state(running=True)
            advance_slot(self.conn, self.slot, upto)
            self.pos.confirmed = parse_lsn(upto)
        if not capped:
            self.stored_through = checked_at
        self.last_check = checked_at
        self._write_state(running=True)
        return capped

    def _check_position(self) -> None:
        state = slot_state(self.conn, self.slot)
        if state is None:
            raise OperationError(
                f"replication slot {self.slot} was dropped while the stream ran",
                hint="`drtool stream run` again creates a new slot and a new chain",
            )
        self.slot_bytes = (state.retained_bytes, state.pending_bytes)
        self._check_lag(state.retained_bytes)
        if state.confirmed_lsn != self.pos.confirmed:
            self.pos = self._new_generation(
                format_lsn(state.confirmed_lsn),
                f"someone else moved the slot (to {format_lsn(state.confirmed_lsn)}, drtool "
                f"left it at {format_lsn(self.pos.confirmed)})",
            )
            self.result.generation = self.pos.generation

    def _check_lag(self, retained: int) -> None:
        """Above stream.max_slot_lag: warn, and notify (breach) at most once an hour."""
        limit = self.cfg.max_slot_lag
        if retained <= limit:
            self.lag_noticed_at = None
            return
        text = (
            f"replication slot {self.slot} holds {retained} bytes of WAL on the server, above "
            f"stream.max_slot_lag ({limit}): the stream is not keeping up; if it cannot catch "
            "up, `drtool stream drop` before the server's disk fills (runbooks/pitr.md)"
        )
        log.warning("stream %s: %s", self.slot, text)
        now = time.monotonic()
        if self.on_breach is not None and (
            self.lag_noticed_at is None or now - self.lag_noticed_at >= 3600
        ):
            self.lag_noticed_at = now
            self.on_breach(text)

    def _store(
        self,
        seg_id: str,
        checked_at: datetime,
        body: object,
        facts: SegmentFacts,
        changes: list[str],
    ) -> SegmentManifest:
        cfg = self.ctx.config
        with self.ctx.catalog.writer("segment", seg_id, segment_prefix(self.slot, seg_id)) as w:
            w.store(
                SEGMENT_OBJECT,
                SEGMENT_FILE,
                body,  # type: ignore[arg-type]
                recipients=self.recipients,
                level=cfg.compression.level,
            )
            sequences = read_sequences(self.conn, list(cfg.backup.exclude_schemas))
            _major, version = server_version(self.conn)
            from_lsn = format_lsn(self.pos.confirmed)
            manifest = SegmentManifest(
                id=seg_id,
                created_at=checked_at,
                finished_at=self.ctx.clock(),
                tool_version=__version__,
                server_version=version,
                database=self.target.dbname,
                objects=w.entries(),
                compression=compression_field(cfg),
                encryption=encryption_field(self.recipients),
                slot=self.slot,
                generation=self.pos.generation,
                generation_lsn=self.pos.generation_lsn,
                sequence=self.pos.sequence + 1,
                predecessor=self.pos.predecessor,
                from_lsn=from_lsn,
                to_lsn=format_lsn(facts.to_lsn) if facts.to_lsn is not None else from_lsn,
                first_commit_at=facts.first_commit_at,
                last_commit_at=facts.last_commit_at,
                transactions=facts.transactions,
                changes=facts.changes,
                relations=facts.relations,
                sequences=sequences,
                schema_changes=changes
                + [
                    f"changed table {name}"
                    for name in facts.changed_relations
                    if f"changed table {name}" not in changes
                ],
                schema_changed_after=_changed_after(self.last_check, facts, changes),
            )
            return w.commit(manifest, seal=SEGMENT_OBJECT)

    # -- base backups --------------------------------------------------------------------------

    def tend_base_backup(self, wait: bool) -> None:
        if self.base is not None and (wait or self.base.done()):
            self.base.join()
            base, self.base = self.base, None
            if base.result is not None:
                log.info("stream %s: base backup %s stored", self.slot, base.result.id)
                self.result.base_backups.append(base.result.id)
                self.base_due_at = time.monotonic() + self.cfg.base_backup_every.total_seconds()
            elif isinstance(base.error, StreamStopped):
                log.info("stream %s: the base backup was stopped with the stream", self.slot)
            else:
                message = (
                    base.error.message
                    if isinstance(base.error, DrtoolError)
                    else type(base.error).__name__
                )
                log.warning("stream %s: the base backup failed: %s", self.slot, redact(message))
                self.base_needed = True
                self.base_due_at = time.monotonic() + 60  # retry in a minute
        if self.stop.is_set() or self.base is not None:
            return
        if self.base_needed or time.monotonic() >= self.base_due_at:
            if time.monotonic() < self.base_due_at and not self.base_needed:
                return
            self.base_needed = False
            self.base_due_at = time.monotonic() + self.cfg.base_backup_every.total_seconds()
            log.info("stream %s: starting a base backup", self.slot)
            self.base = _BaseBackup(self.ctx, self.stop)
            if wait:
                self.tend_base_backup(wait=True)

    # -- state ---------------------------------------------------------------------------------

    def _write_state(self, running: bool) -> None:
        now = self.ctx.clock()
        retained, pending = self.slot_bytes if self.slot_bytes else (None, None)
        state = StreamState(
            slot=self.slot,
            generation=self.pos.generation,
            generation_lsn=self.pos.generation_lsn,
            running=running,
            host=socket.gethostname(),
            pid=os.getpid(),
            updated_at=now,
            stored_through_at=self.stored_through,
            newest_segment=self.pos.predecessor,
            newest_sequence=self.pos.sequence,
            newest_to_lsn=format_lsn(self.pos.confirmed),
            empty_through_lsn=self.pos.empty_through,
            slot_retained_bytes=retained,
            slot_pending_bytes=pending,
            segments_stored=self.result.segments,
            changes_stored=self.result.changes,
            changes_per_second=round(self.rate, 1) if self.rate is not None else None,
            not_replayable=[t.qualified for t in self.tables.inserts_only],
            not_captured=[t.qualified for t in self.tables.not_captured],
            base_backup_due=self.base_needed,
            stopped_at=None if running else now,
            table_shapes=self.shapes,
        )
        try:
            write_state(self.ctx.storage, state)
        except DrtoolError as exc:
            log.warning("stream %s: could not write its state record: %s", self.slot, exc)

    def finish(self) -> None:
        if self.base is not None:
            self.tend_base_backup(wait=True)
        self._write_state(running=False)


def _changed_after(
    last_check: datetime | None, facts: SegmentFacts, changes: list[str]
) -> datetime | None:
    """Since when the schema may differ: the previous check, or later, the last commit the
    stream carried with a relation's old shape (the DDL came after it)."""
    if not changes and not facts.changed_relations:
        return None
    found = [t for t in (last_check, facts.old_shape_until) if t is not None]
    return max(found) if found else facts.first_commit_at


def _chain(
    first: tuple[int, int, bytes] | None, rest: Iterator[tuple[int, int, bytes]]
) -> Iterator[tuple[int, int, bytes]]:
    if first is not None:
        yield first
    yield from rest


def run_stream(
    ctx: Context,
    stop: threading.Event,
    *,
    once: bool = False,
    on_breach: Callable[[str], None] | None = None,
) -> StreamRunResult:
    """Capture until ``stop`` is set (SIGTERM), then flush what is committed and exit;
    ``once``: one pass (a base backup first if one is due), for cron-style use and tests."""
    cfg = ctx.config.stream
    target = ctx.database()
    with (
        advisory_lock(target, lock_name(cfg.slot)),
        connect(target, f"continuous archiving (slot {cfg.slot})") as conn,
    ):
        apply_copy_settings(conn)
        conn.execute("set statement_timeout = 0")
        streamer = Streamer(ctx, conn, target, stop, on_breach)
        streamer.start()
        log.info(
            "stream %s: running (chain %s, flush every %ss)",
            cfg.slot,
            streamer.pos.generation,
            int(cfg.flush_interval.total_seconds()),
        )
        try:
            if once:
                streamer.tend_base_backup(wait=True)
                while streamer.cycle():
                    pass
                if streamer.base_needed:  # a schema change: its base backup, then the rest
                    streamer.tend_base_backup(wait=True)
                    while streamer.cycle():
                        pass
                return streamer.result
            while True:
                started = time.monotonic()
                streamer.tend_base_backup(wait=False)
                pending = streamer.cycle()
                if stop.is_set():
                    while streamer.cycle():  # the final flush
                        pass
                    break
                if not pending:
                    # A segment at least every flush_interval: the cycle's own time counts.
                    spent = time.monotonic() - started
                    stop.wait(max(0.0, cfg.flush_interval.total_seconds() - spent))
            return streamer.result
        finally:
            streamer.finish()
