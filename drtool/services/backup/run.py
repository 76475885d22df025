"""The backup use case: snapshot, exact row counts, pg_dump streamed through the data path,
globals, and the manifest written last."""

from __future__ import annotations

import fnmatch
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from drtool import __version__
from drtool.catalog.catalog import (
    BUNDLE_FILE,
    BUNDLE_OBJECT,
    DUMP_FILE,
    DUMP_OBJECT,
    GLOBALS_FILE,
    GLOBALS_OBJECT,
    PARALLEL_FORMAT,
    PRE_DATA_OBJECT,
    backup_prefix,
)
from drtool.catalog.manifest import BackupManifest, BundleInfo, StreamPoint
from drtool.catalog.writer import ItemWriter
from drtool.crypto.keys import Recipient
from drtool.errors import EXIT_OK, DrtoolError, SubprocessError, UsageError
from drtool.ids import new_id
from drtool.log import get_logger
from drtool.pg.conn import Target
from drtool.pg.dump.dependencies import Dependency, dependency_warnings, find_dependencies
from drtool.pg.dump.snapshot import Snapshot, TableRef, advisory_lock, open_snapshot
from drtool.pg.dump.stream import dump_globals, dump_stream, dump_tool, dumpall_tool
from drtool.pg.platform.detect import PlatformFacts, detect
from drtool.services.backup.parallel import (
    ParallelData,
    check_rows,
    manifest_order,
    plan_parallel,
    store_parallel,
)
from drtool.services.bundle.capture import Capture, bundle_recipients, open_capture
from drtool.services.context import Context
from drtool.services.keys import compression_field, configured_recipients, encryption_field
from drtool.services.recovery_doc import store_recovery_doc

MAX_LABEL_CHARS = 200

log = get_logger("backup")


@dataclass(frozen=True)
class BackupResult:
    manifest: BackupManifest

    exit_code = EXIT_OK  # a backup that did not complete raises

    def item_id(self) -> str:
        return self.manifest.id

    def summary(self) -> str | None:
        return None

    @property
    def warnings(self) -> list[str]:
        return list(self.manifest.warnings)


def _check_label(label: str | None) -> str | None:
    if label is None:
        return None
    if len(label) > MAX_LABEL_CHARS or not label.isprintable():
        raise UsageError(f"--label must be printable text of at most {MAX_LABEL_CHARS} characters")
    return label


def _matches(table: TableRef, patterns: list[str]) -> bool:
    for pattern in patterns:
        full = pattern if "." in pattern else f"public.{pattern}"
        if fnmatch.fnmatchcase(table.qualified, full):
            return True
    return False


@dataclass
class _Inspection:
    """What the snapshot's catalogs say before pg_dump starts: the hosting platform, and what
    the configured exclusions break (judged once the row counts are known)."""

    platform: PlatformFacts | None
    dependencies: list[Dependency]
    problems: list[str]

    def warnings(self, counts: Mapping[str, int]) -> list[str]:
        return self.problems + dependency_warnings(self.dependencies, counts)


def _inspect(snap: Snapshot, exclude_schemas: list[str], excluded_data: list[str]) -> _Inspection:
    """Platform detection and the exclusion check, in the snapshot. Neither failing fails the
    backup, but a failure is a warning: a backup is never silently ok."""
    problems: list[str] = []
    platform: PlatformFacts | None = None
    try:
        platform = snap.inspect(detect, "detecting the hosting platform")
    except DrtoolError as exc:
        problems.append(
            f"the hosting platform could not be detected ({exc.message}): the manifest "
            "records none, so a restore into a managed platform's fresh project cannot plan "
            "around it"
        )
    dependencies: list[Dependency] = []
    try:
        dependencies = snap.inspect(
            lambda conn: find_dependencies(conn, exclude_schemas, excluded_data),
            "checking what backup.exclude_schemas and backup.exclude_table_data leave out",
        )
    except DrtoolError as exc:
        problems.append(
            f"could not check what the backup's exclusions break ({exc.message}): this "
            "backup may not restore"
        )
    return _Inspection(platform, dependencies, problems)


class _Counter:
    """Counts rows in the snapshot on a thread while pg_dump streams."""

    def __init__(self, snap: Snapshot, tables: list[TableRef]) -> None:
        self.counts: dict[str, int] = {}
        self.error: BaseException | None = None
        self.seconds = 0.0
        self._thread = threading.Thread(target=self._run, args=(snap, tables), daemon=True)
        self._thread.start()

    def _run(self, snap: Snapshot, tables: list[TableRef]) -> None:
        started = time.monotonic()
        try:
            self.counts = snap.count_rows(tables)
        except BaseException as exc:
            self.error = exc
        self.seconds = time.monotonic() - started

    def result(self) -> dict[str, int]:
        self._thread.join()
        if self.error is not None:
            raise self.error
        return self.counts


def _store_globals(
    ctx: Context, item: ItemWriter, server_major: int, recipients: list[Recipient]
) -> dict[str, str]:
    """Roles and tablespaces; managed services may forbid it, which is recorded, not fatal."""
    target = ctx.database()
    if not ctx.config.backup.globals:
        return {"status": "disabled"}
    try:
        data = dump_globals(dumpall_tool(server_major), target)
    except SubprocessError as exc:
        log.warning("globals not stored (recorded in the manifest): %s", exc.message)
        return {"status": "unavailable", "reason": exc.message[-500:]}
    item.store(
        GLOBALS_OBJECT,
        GLOBALS_FILE,
        [data],
        recipients=recipients,
        level=ctx.config.compression.level,
    )
    return {"status": "stored"}


def _store_bundle(ctx: Context, item: ItemWriter, capture: Capture) -> BundleInfo:
    """The configuration & secrets bundle, encrypted to ``bundle.recipients``."""
    recipients = bundle_recipients(ctx.config)
    item.store(
        BUNDLE_OBJECT,
        BUNDLE_FILE,
        capture.stream(),
        recipients=recipients,
        level=ctx.config.compression.level,
    )
    return capture.info(recipients)


def run_backup(ctx: Context, label: str | None = None, jobs: int | None = None) -> BackupResult:
    """Full logical backup of the configured database; the manifest is the last write.
    ``jobs`` (default ``backup.jobs``): 1 writes one custom-format dump, N > 1 the parallel
    format with N workers."""
    cfg = ctx.config
    label = _check_label(label)
    jobs = cfg.backup.jobs if jobs is None else jobs
    if jobs < 1:
        raise UsageError("--jobs must be at least 1")
    recipients = configured_recipients(cfg)
    target = ctx.database()
    started_at = ctx.clock()
    item_id = new_id(started_at)
    # Files and variables are checked (and opened) before anything starts: a missing one
    # fails the backup with exit 2, and no backup item is left.
    capture = open_capture(cfg, started_at)
    try:
        return _run(ctx, label, recipients, target, item_id, started_at, capture, jobs)
    finally:
        if capture is not None:
            capture.close()


def _run(
    ctx: Context,
    label: str | None,
    recipients: list[Recipient],
    target: Target,
    item_id: str,
    started_at: datetime,
    capture: Capture | None,
    jobs: int,
) -> BackupResult:
    cfg = ctx.config
    data: ParallelData | None = None
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    with (
        advisory_lock(target, f"drtool:backup:{ctx.storage.description}"),
        ctx.catalog.writer("backup", item_id, backup_prefix(item_id)) as item,
    ):
        with open_snapshot(
            target, cfg.backup.exclude_schemas, cfg.database.lock_wait_timeout
        ) as snap:
            tool = dump_tool(snap.server_major)
            excluded_data = [t for t in snap.tables if _matches(t, cfg.backup.exclude_table_data)]
            inspection = _inspect(
                snap, cfg.backup.exclude_schemas, [t.qualified for t in excluded_data]
            )
            timings["snapshot"] = time.monotonic() - t0
            plans = plan_parallel(ctx, snap, excluded_data) if jobs > 1 else None
            counter = _Counter(snap, snap.tables)
            log.info(
                "backup %s of %s: pg_dump %s, server %s, %d tables",
                item_id,
                target.describe(),
                tool.version,
                snap.server_version,
                len(snap.tables),
            )
            t_dump = time.monotonic()
            if plans is not None:
                data = store_parallel(ctx, item, snap, tool, recipients, plans, jobs)
            else:
                item.store(
                    DUMP_OBJECT,
                    DUMP_FILE,
                    dump_stream(
                        tool,
                        target,
                        snapshot_id=snap.snapshot_id,
                        lock_wait=cfg.database.lock_wait_timeout,
                        exclude_schemas=cfg.backup.exclude_schemas,
                        exclude_table_data=cfg.backup.exclude_table_data,
                    ),
                    recipients=recipients,
                    level=cfg.compression.level,
                    threads=cfg.compression.threads,
                    progress=ctx.progress("dump", None),
                )
            timings["dump"] = time.monotonic() - t_dump
            counts = counter.result()
            timings["count_rows"] = counter.seconds
            if data is not None:
                check_rows(item_id, data, counts)
        t1 = time.monotonic()
        globals_info = _store_globals(ctx, item, snap.server_major, recipients)
        timings["globals"] = time.monotonic() - t1
        bundle = None
        if capture is not None:
            t2 = time.monotonic()
            bundle = _store_bundle(ctx, item, capture)
            timings["bundle"] = time.monotonic() - t2
        excluded_rows = {t.qualified: counts.get(t.qualified, 0) for t in excluded_data}
        warnings = inspection.warnings(counts)
        for text in warnings:
            log.warning("backup %s: %s", item_id, text)
        platform = inspection.platform
        tables = {name: (0 if name in excluded_rows else n) for name, n in counts.items()}
        timings["total"] = time.monotonic() - t0
        manifest = BackupManifest(
            id=item_id,
            created_at=started_at,
            snapshot_at=snap.taken_at,
            finished_at=ctx.clock(),
            label=label,
            tool_version=__version__,
            server_version=snap.server_version,
            pg_dump_version=tool.version,
            database=snap.database,
            objects=item.entries() if data is None else manifest_order(item.entries()),
            compression=compression_field(cfg),
            encryption=encryption_field(recipients),
            tables=tables,
            timings={k: round(v, 3) for k, v in timings.items()},
            server_major=snap.server_major,
            source=target.describe(),
            host=socket.gethostname(),
            excluded_schemas=list(cfg.backup.exclude_schemas),
            excluded_table_data=excluded_rows,
            globals=globals_info,
            dump_format=PARALLEL_FORMAT if data is not None else "custom",
            platform=platform.name if platform else None,
            platform_details=platform.details() if platform else None,
            warnings=warnings,
            **({"bundle": bundle} if bundle is not None else {}),
            **(
                {"stream": StreamPoint(lsn=snap.wal_lsn, snapshot=snap.xid_snapshot)}
                if snap.wal_lsn is not None and snap.xid_snapshot is not None
                else {}
            ),
            **(
                {"parts": data.parts, "copy_settings": data.copy_settings}
                if data is not None
                else {}
            ),
        )
        # RECOVERY.md is rendered from the manifest, then listed in it: stored just before it.
        manifest = store_recovery_doc(ctx, item, manifest)
        manifest = item.commit(manifest, seal=DUMP_OBJECT if data is None else PRE_DATA_OBJECT)
    log.info("backup %s complete: %d bytes stored", item_id, manifest.size)
    return BackupResult(manifest)
