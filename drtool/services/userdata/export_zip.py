"""``export-user --out PATH``: the plain archive for a data subject (GDPR Art. 15/20): one JSON
Lines file per table, ``manifest.json`` and ``README.txt`` in a zip, written to a temp file
beside PATH and published only when complete; ``exports.redact_columns`` are left out, and on a
managed platform (Supabase) its credential columns (password hashes, tokens) too."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from drtool import __version__
from drtool.errors import OperationError, UsageError
from drtool.pg.userdata.copy_out import UserSnapshot
from drtool.pg.userdata.tables import Discovery, UserTable, split_name
from drtool.platforms import Platform

ZIP_FORMAT = "drtool-user-export"
ZIP_VERSION = 1

README = """\
Personal data export
====================

This archive holds every row stored about one user ({user_id}) in the database
"{database}", read in one consistent snapshot at {snapshot}.

Files
-----
- <schema>.<table>.jsonl : one file per table, JSON Lines (RFC 8259 JSON, one object per
  line, UTF-8). Each object is one row; its keys are the table's column names. Binary
  values (bytea) are hex strings starting with "\\x"; timestamps are ISO 8601.
- manifest.json : the list of tables with their row counts and the SHA-256 of each file,
  the export time, and the columns left out of this archive.
- README.txt : this file.

{redacted}
"""


# Why a column is left out of the archive (manifest.json ``redactions``).
CONFIGURED = "exports.redact_columns"


@dataclass(frozen=True)
class ZipOutcome:
    tables: dict[str, int]
    redacted: list[str]


def check_out_path(out: Path) -> None:
    """Refuse an existing PATH (never overwritten) or a missing directory: exit 2."""
    if out.exists() or out.is_symlink():
        raise UsageError(
            f"--out {out} already exists; refusing to overwrite it", hint="choose a new file name"
        )
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: directory {out.parent} does not exist")


def redactions(
    columns: list[str], tables: list[UserTable], platform: Platform | None = None
) -> dict[str, dict[str, str]]:
    """By table, the columns left out and why: exports.redact_columns (schema.table.column),
    and the platform's credential columns (``Platform.secret_columns``) that the table has."""
    out: dict[str, dict[str, str]] = {t.qualified: {} for t in tables}
    for entry in columns:
        table, dot, column = entry.rpartition(".")
        if not dot or not column:
            raise UsageError(f"exports.redact_columns: {entry!r} is not schema.table.column")
        schema, name = split_name(table, "exports.redact_columns")
        if f"{schema}.{name}" in out:
            out[f"{schema}.{name}"][column] = CONFIGURED
    if platform is not None:
        present = {t.qualified: {c.name for c in t.columns} for t in tables}
        for entry in sorted(platform.secret_columns):
            table, _, column = entry.rpartition(".")
            if column in present.get(table, ()):
                out[table].setdefault(column, f"{platform.title} credential")
    return out


def file_name(table: UserTable) -> str:
    return f"{table.schema}.{table.name}.jsonl".replace("/", "_")


def write_zip(
    snap: UserSnapshot,
    discovery: Discovery,
    user_id: str,
    out: Path,
    redact_columns: list[str],
    item_id: str,
    now: datetime,
) -> ZipOutcome:
    omit = redactions(redact_columns, discovery.tables, discovery.platform)
    part = out.parent / f".{out.name}.{secrets.token_hex(4)}.part"
    files: dict[str, dict[str, object]] = {}
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            with zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
                for table in discovery.tables:
                    digest, rows, size = hashlib.sha256(), 0, 0
                    with zf.open(file_name(table), "w", force_zip64=True) as entry:
                        for chunk in snap.json_rows(table, user_id, list(omit[table.qualified])):
                            entry.write(chunk)
                            digest.update(chunk)
                            rows += chunk.count(b"\n")
                            size += len(chunk)
                    files[table.qualified] = {
                        "file": file_name(table),
                        "rows": rows,
                        "bytes": size,
                        "sha256": digest.hexdigest(),
                    }
                redacted = [f"{t}.{c}" for t, cols in omit.items() for c in cols]
                why = [
                    {"column": f"{t}.{c}", "reason": reason}
                    for t, cols in omit.items()
                    for c, reason in cols.items()
                ]
                manifest = {
                    "format": ZIP_FORMAT,
                    "version": ZIP_VERSION,
                    "id": item_id,
                    "user_id": user_id,
                    "exported_at": now.isoformat(),
                    "snapshot_at": snap.taken_at.isoformat(),
                    "database": snap.database,
                    "users_table": discovery.users_table.qualified,
                    "platform": discovery.platform.name if discovery.platform else None,
                    "tables": files,
                    "redacted_columns": redacted,
                    "redactions": why,
                    "not_exported": [n.as_dict() for n in discovery.not_exported],
                    "tool_version": __version__,
                }
                zf.writestr("manifest.json", json.dumps(manifest, indent=2) + "\n")
                zf.writestr("README.txt", _readme(user_id, snap, redacted))
            fh.flush()
            os.fsync(fh.fileno())
        _publish(part, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
    return ZipOutcome({t: int(f["rows"]) for t, f in files.items()}, redacted)  # type: ignore[call-overload]


def _readme(user_id: str, snap: UserSnapshot, redacted: list[str]) -> str:
    note = (
        "Left out of this archive (credentials the service stores for you, not personal\n"
        "data in readable form): " + ", ".join(redacted)
        if redacted
        else "No column was left out."
    )
    return README.format(
        user_id=user_id, database=snap.database, snapshot=snap.taken_at.isoformat(), redacted=note
    )


def _publish(part: Path, out: Path) -> None:
    """Link, not rename: a file that appeared at PATH meanwhile is never replaced."""
    try:
        os.link(part, out)
    except FileExistsError:
        raise UsageError(f"--out {out} already exists; refusing to overwrite it") from None
    except OSError as exc:
        raise OperationError(f"could not write {out}: {exc.strerror}") from exc
    with contextlib.suppress(OSError):
        dfd = os.open(out.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
