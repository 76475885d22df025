"""``export-user``: one user's rows from every user-scoped table, read in one snapshot, stored
encrypted under ``exports/<user_id>/<id>/`` (one data object of COPY sections, the manifest
last), or written with ``--out`` as a plain zip archive for the data subject."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from drtool import __version__
from drtool.catalog.catalog import export_prefix
from drtool.catalog.manifest import ExportManifest
from drtool.crypto.keys import Recipient
from drtool.errors import UsageError
from drtool.ids import new_id
from drtool.log import get_logger
from drtool.pg.userdata.copy_out import TableStats, UserSnapshot, user_snapshot
from drtool.pg.userdata.tables import Discovery, NotExported, UserTable, discover
from drtool.services.context import Context
from drtool.services.keys import compression_field, configured_recipients, encryption_field
from drtool.services.userdata.export_zip import check_out_path, write_zip

ROWS_OBJECT = "rows"
ROWS_FILE = "rows.copy.zst.age"
# The stored stream: pg_dump plain-format COPY sections (docs/exports.md).
ENCODING = "pg-copy-text-sections/1"

log = get_logger("export")


@dataclass(frozen=True)
class ExportResult:
    """A stored export (``manifest``) or a written archive (``out``)."""

    id: str
    user_id: str
    tables: dict[str, int]
    warnings: list[str] = field(default_factory=list)
    not_exported: list[NotExported] = field(default_factory=list)
    platform: str | None = None
    out: Path | None = None
    redacted: list[str] = field(default_factory=list)
    manifest: ExportManifest | None = None
    seconds: float = 0.0


def discover_tables(ctx: Context, snap: UserSnapshot) -> Discovery:
    cfg = ctx.config.exports
    return discover(
        snap.conn,
        user_id_column=cfg.user_id_column,
        users_table=cfg.users_table,
        exclude_tables=cfg.exclude_tables,
        user_columns=cfg.user_columns,
    )


def check_user(snap: UserSnapshot, discovery: Discovery, user_id: str) -> str:
    """The user's canonical id (as the database spells it); exit 2 for an unknown or malformed
    id, or one that cannot name a storage folder."""
    users = discovery.users_table
    if not user_id or len(user_id) > 200 or not user_id.isprintable():
        raise UsageError(f"{user_id!r} is not a valid user id")
    found = snap.find_user(users, user_id)
    if found is None:
        raise UsageError(
            f"no user {user_id!r} in {users.qualified} ({users.user_column}); nothing was exported",
            hint=f"user ids are the {users.user_column} values of {users.qualified} "
            "(exports.users_table)",
        )
    export_prefix(found, "x")  # UsageError if the id cannot be a storage key segment
    return found


def not_exported_field(discovery: Discovery) -> list[dict[str, object]]:
    """The manifest's ``not_exported``: tables holding users' rows that are not exported."""
    return [n.as_dict() for n in discovery.not_exported]


def table_details(tables: list[UserTable], stats: dict[str, TableStats]) -> list[dict[str, object]]:
    """What a restore needs to read the stream back: order, columns, and each section's check."""
    return [
        {
            "table": t.qualified,
            "schema": t.schema,
            "name": t.name,
            "user_column": t.user_column,
            "columns": list(t.copy_columns),
            "types": [c.type for c in t.columns if not c.generated],
            "primary_key": list(t.primary_key),
            "users_table": t.is_users_table,
            "rows": stats[t.qualified].rows,
            "sha256": stats[t.qualified].hexdigest(),
        }
        for t in tables
    ]


def store_export(
    ctx: Context,
    snap: UserSnapshot,
    discovery: Discovery,
    user_id: str,
    recipients: list[Recipient],
) -> ExportManifest:
    """Stream the user's rows into one encrypted object, then commit the sealed manifest."""
    cfg = ctx.config
    started_at = ctx.clock()
    t0 = time.monotonic()
    item_id = new_id(started_at)
    stats: dict[str, TableStats] = {}
    with ctx.catalog.writer("export", item_id, export_prefix(user_id, item_id)) as item:
        obj = item.store(
            ROWS_OBJECT,
            ROWS_FILE,
            snap.sections(discovery.tables, user_id, stats),
            recipients=recipients,
            level=cfg.compression.level,
            threads=cfg.compression.threads,
            progress=ctx.progress("export", None),
        )
        users = discovery.users_table
        manifest = ExportManifest(
            id=item_id,
            created_at=started_at,
            snapshot_at=snap.taken_at,
            finished_at=ctx.clock(),
            tool_version=__version__,
            server_version=snap.server_version,
            database=snap.database,
            objects=item.entries(),
            compression=compression_field(cfg),
            encryption=encryption_field(recipients),
            tables={name: s.rows for name, s in stats.items()},
            timings={"export": round(obj.seconds, 3), "total": round(time.monotonic() - t0, 3)},
            user_id=user_id,
            users_table=users.qualified,
            user_id_column=cfg.exports.user_id_column,
            users_id_column=users.user_column,
            encoding=ENCODING,
            table_details=table_details(discovery.tables, stats),
            warnings=list(discovery.warnings),
            not_exported=not_exported_field(discovery),
            platform=discovery.platform.name if discovery.platform else None,
            server_major=snap.server_major,
            source=snap.target.describe(),
            host=socket.gethostname(),
        )
        return item.commit(manifest, seal=ROWS_OBJECT)


def export_user(ctx: Context, user_id: str, out: Path | None = None) -> ExportResult:
    """``export-user USER_ID [--out PATH]``."""
    started = time.monotonic()
    recipients = configured_recipients(ctx.config) if out is None else []
    if out is not None:
        check_out_path(out)
    target = ctx.database()
    with user_snapshot(
        target, "reading one user's rows", ctx.config.database.lock_wait_timeout
    ) as snap:
        discovery = discover_tables(ctx, snap)
        uid = check_user(snap, discovery, user_id)
        if out is not None:
            item_id = new_id(ctx.clock())
            done = write_zip(
                snap, discovery, uid, out, ctx.config.exports.redact_columns, item_id, ctx.clock()
            )
            if done.redacted:
                log.info("left out of %s: %s", out, ", ".join(done.redacted))
            log.info("wrote the export of user %s to %s", uid, out)
            return ExportResult(
                id=item_id,
                user_id=uid,
                tables=done.tables,
                warnings=list(discovery.warnings),
                not_exported=list(discovery.not_exported),
                platform=discovery.platform.name if discovery.platform else None,
                out=out,
                redacted=done.redacted,
                seconds=round(time.monotonic() - started, 3),
            )
        manifest = store_export(ctx, snap, discovery, uid, recipients)
    log.info(
        "export %s of user %s: %d rows in %d tables, %d bytes stored",
        manifest.id,
        uid,
        sum(manifest.tables.values()),
        len(manifest.tables),
        manifest.size,
    )
    return ExportResult(
        id=manifest.id,
        user_id=uid,
        tables=dict(manifest.tables),
        warnings=list(discovery.warnings),
        not_exported=list(discovery.not_exported),
        platform=discovery.platform.name if discovery.platform else None,
        manifest=manifest,
        seconds=round(time.monotonic() - started, 3),
    )
