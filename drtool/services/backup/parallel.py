"""The parallel format's objects: N workers sharing the backup's exported snapshot store the
schema before and after the data (pg_dump sections) and one COPY stream per table part,
each through the one data path; the rows each part carried are checked against the
snapshot's exact counts."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

from drtool.catalog.catalog import (
    POST_DATA_FILE,
    POST_DATA_OBJECT,
    PRE_DATA_FILE,
    PRE_DATA_OBJECT,
    data_object,
)
from drtool.catalog.manifest import ObjectEntry, TablePart
from drtool.catalog.writer import ItemWriter
from drtool.crypto.keys import Recipient
from drtool.errors import IntegrityError
from drtool.log import get_logger
from drtool.pg.conn import COPY_SETTINGS, Target
from drtool.pg.dump.copy_out import (
    CopyCount,
    PartPlan,
    locked_parts,
    script_header,
    snapshot_reader,
)
from drtool.pg.dump.snapshot import Snapshot, TableRef
from drtool.pg.dump.stream import dump_stream, exact_pattern
from drtool.pg.tools.find import Tool
from drtool.pipeline.stages import ProgressFn
from drtool.services.context import Context

BLOCK_BYTES = 8192
# PostgreSQL 14 reads a ctid range with a TID Range Scan; before, every range scans the table.
TID_RANGE_SCAN_MAJOR = 14

log = get_logger("backup")


@dataclass
class ParallelData:
    """What the workers stored: the parts (manifest order) and their rows per table."""

    parts: list[TablePart] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    copy_settings: dict[str, str] = field(default_factory=dict)


class _Stopped(Exception):
    """Another worker failed: this one stops its stream (and its upload is discarded)."""


@dataclass
class _Task:
    name: str
    filename: str
    weight: int
    part: PartPlan | None = None  # None: a pg_dump section
    sections: tuple[str, ...] = ()


class _Pool:
    """N worker threads, each with its own connection in the snapshot, taking the largest
    remaining task first; the first failure stops them all and is raised in the caller."""

    def __init__(self, ctx: Context, item: ItemWriter, job: _Job, jobs: int) -> None:
        self.ctx, self.item, self.job = ctx, item, job
        self.tasks = sorted(job.tasks, key=lambda t: -t.weight)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.counts: dict[str, CopyCount] = {}
        self.encoding = "UTF8"
        self.threads = [
            threading.Thread(target=self._work, name=f"backup-worker-{i}", daemon=True)
            for i in range(min(jobs, len(self.tasks)))
        ]

    def run(self) -> None:
        for thread in self.threads:
            thread.start()
        try:
            for thread in self.threads:
                thread.join()
        finally:
            self.stop.set()
        if self.error is not None:
            raise self.error

    def _next(self) -> _Task | None:
        with self.lock:
            if self.stop.is_set() or not self.tasks:
                return None
            return self.tasks.pop(0)

    def _guard(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            if self.stop.is_set():
                raise _Stopped()
            yield chunk

    def _work(self) -> None:
        job = self.job
        try:
            with snapshot_reader(job.target, job.snap.snapshot_id, job.lock_wait) as reader:
                self.encoding = reader.encoding
                while (task := self._next()) is not None:
                    if task.part is None:
                        source = job.section(task.sections)
                    else:
                        count = self.counts[task.name] = CopyCount()
                        source = reader.rows(task.part, count)
                    stored = self.item.store(
                        task.name,
                        task.filename,
                        self._guard(source),
                        recipients=job.recipients,
                        level=self.ctx.config.compression.level,
                        progress=job.progress,
                    )
                    log.debug(
                        "%s (%s): %d bytes in %.2fs",
                        task.name,
                        task.part.table.qualified if task.part else ",".join(task.sections),
                        stored.plain_size,
                        stored.seconds,
                    )
        except _Stopped:
            return
        except BaseException as exc:
            with self.lock:
                if self.error is None:
                    self.error = exc
            self.stop.set()


@dataclass
class _Job:
    target: Target
    snap: Snapshot
    tool: Tool
    recipients: list[Recipient]
    exclude_schemas: list[str]
    exclude_table_data: list[str]
    lock_wait: timedelta
    progress: ProgressFn | None
    tasks: list[_Task] = field(default_factory=list)

    def section(self, sections: tuple[str, ...]) -> Iterator[bytes]:
        return dump_stream(
            self.tool,
            self.target,
            snapshot_id=self.snap.snapshot_id,
            lock_wait=self.lock_wait,
            exclude_schemas=self.exclude_schemas,
            exclude_table_data=self.exclude_table_data,
            sections=sections,
        )


def plan_parallel(ctx: Context, snap: Snapshot, excluded_data: list[TableRef]) -> list[PartPlan]:
    """In the snapshot's transaction, before the row counts start (they hold its connection):
    lock the tables to copy and cut them into parts."""
    excluded = {t.qualified for t in excluded_data}
    copied = [t for t in snap.tables if t.qualified not in excluded]
    split_pages = max(1, ctx.config.backup.split_table_size // BLOCK_BYTES)
    if snap.server_major < TID_RANGE_SCAN_MAJOR:
        split_pages = 0  # each range would be a whole-table scan: no split
    return snap.inspect(
        lambda conn: locked_parts(conn, copied, split_pages),
        "locking and sizing the tables to copy",
    )


def store_parallel(
    ctx: Context,
    item: ItemWriter,
    snap: Snapshot,
    tool: Tool,
    recipients: list[Recipient],
    plans: list[PartPlan],
    jobs: int,
) -> ParallelData:
    """Store the parallel format's objects in ``snap`` with ``jobs`` workers.

    ``pre-data`` is ``pg_dump --section=pre-data --section=data`` without the rows of the
    tables copied here (so sequence values, large objects and extension configuration tables
    come with it); ``post-data`` the indexes, constraints, triggers and policies."""
    cfg = ctx.config
    copied = list({p.table.qualified: p.table for p in plans}.values())
    job = _Job(
        target=ctx.database(),
        snap=snap,
        tool=tool,
        recipients=recipients,
        exclude_schemas=list(cfg.backup.exclude_schemas),
        exclude_table_data=[
            *cfg.backup.exclude_table_data,
            *(exact_pattern(t.schema, t.name) for t in copied),
        ],
        lock_wait=cfg.database.lock_wait_timeout,
        progress=ctx.progress("dump", None),
    )
    job.tasks.append(_Task(PRE_DATA_OBJECT, PRE_DATA_FILE, 2**62, None, ("pre-data", "data")))
    job.tasks.append(_Task(POST_DATA_OBJECT, POST_DATA_FILE, 2**61, None, ("post-data",)))
    names: dict[str, PartPlan] = {}
    for number, plan in enumerate(plans, start=1):
        name, filename = data_object(number)
        names[name] = plan
        # A ctid range holds about split_pages pages; a whole table its own size.
        weight = plan.pages if plan.count == 1 else -(-plan.pages // plan.count)
        job.tasks.append(_Task(name, filename, weight, plan))
    log.info(
        "parallel backup: %d workers, %d tables in %d data objects",
        jobs,
        len(copied),
        len(plans),
    )
    started = time.monotonic()
    pool = _Pool(ctx, item, job, jobs)
    pool.run()
    log.debug("parallel phase took %.1fs", time.monotonic() - started)
    data = ParallelData(copy_settings={**COPY_SETTINGS, "row_security": "off"})
    for name, plan in names.items():
        rows = pool.counts[name].rows
        data.parts.append(
            TablePart(
                object=name,
                table=plan.table.qualified,
                schema_name=plan.table.schema,
                table_name=plan.table.name,
                part=plan.index,
                parts=plan.count,
                columns=list(plan.columns),
                where=plan.where(),
                rows=rows,
                header_size=len(script_header(plan, pool.encoding)),
            )
        )
        data.rows[plan.table.qualified] = data.rows.get(plan.table.qualified, 0) + rows
    data.copy_settings["client_encoding"] = pool.encoding
    return data


def check_rows(item_id: str, data: ParallelData, counts: dict[str, int]) -> None:
    """Each table's parts together carry exactly the rows the snapshot counted."""
    wrong = {t: (n, counts.get(t)) for t, n in data.rows.items() if counts.get(t) != n}
    if wrong:
        table, (copied, counted) = next(iter(sorted(wrong.items())))
        raise IntegrityError(
            f"backup {item_id}: the COPY streams of {table} carried {copied} rows, the "
            f"snapshot counts {counted}",
            hint="this should never happen; report it with the backup's log",
        )


def manifest_order(entries: list[ObjectEntry]) -> list[ObjectEntry]:
    """The objects as a restore uses them: pre-data, the data objects by name, post-data,
    then the rest (globals, bundle) as stored (workers finish in any order)."""
    rank = {PRE_DATA_OBJECT: 0, POST_DATA_OBJECT: 2}

    def key(entry: ObjectEntry) -> tuple[int, str]:
        if entry.name in rank:
            return rank[entry.name], ""
        if entry.name.startswith("data-"):
            return 1, entry.name
        return 3, ""

    return sorted(entries, key=key)
