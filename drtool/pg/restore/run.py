"""Running pg_restore against a target: what to restore (selection, clean, ownership), from a
stream (EOF only after the producer's final checks) or a spooled file; the schema script at
the start of a dump; a data-only reload through psql in one transaction."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from psycopg import sql

from drtool.errors import OperationError, SubprocessError
from drtool.log import get_logger
from drtool.pg.restore.pg_restore import LONG_TAIL_LINES, FedProcess, Toc, parse_toc
from drtool.pg.tools.find import Tool, find_tool
from drtool.pg.tools.run import stream_stdout

log = get_logger("pg.restore")


def psql_tool(min_major: int | None = None) -> Tool:
    return find_tool("psql", min_major=min_major)


@dataclass(frozen=True)
class Selection:
    """What part of a dump to restore: ``(schema, table)`` pairs, schema only or data only.

    pg_restore matches every ``--table`` name in every ``--schema`` given (a cross product);
    ``covers`` and ``names`` say which tables a selection really restores. pg_restore takes
    ``-n``/``-t`` names literally (not patterns): spaces, dots, quotes and case pass as they
    are, each its own argument."""

    tables: tuple[tuple[str, str], ...] = ()
    schema_only: bool = False
    data_only: bool = False

    def filter_args(self) -> list[str]:
        args: list[str] = []
        for schema in dict.fromkeys(s for s, _ in self.tables):
            args += ["--schema", schema]
        for table in dict.fromkeys(t for _, t in self.tables):
            args += ["--table", table]
        return args

    def args(self) -> list[str]:
        flags = ["--schema-only"] if self.schema_only else []
        flags += ["--data-only"] if self.data_only else []
        return flags + self.filter_args()

    def names(self) -> set[str]:
        """``schema.table`` of every pair the cross product matches (names compared whole:
        a dot inside a schema or table name is no separator)."""
        schemas = dict.fromkeys(s for s, _ in self.tables)
        tables = dict.fromkeys(t for _, t in self.tables)
        return {f"{s}.{t}" for s in schemas for t in tables}

    def covers(self, schema: str, table: str) -> bool:
        if not self.tables:
            return True
        schemas = {s for s, _ in self.tables}
        names = {t for _, t in self.tables}
        return schema in schemas and table in names


@dataclass(frozen=True)
class RestoreOptions:
    """pg_restore's behaviour, independent of where the dump comes from."""

    selection: Selection = Selection()
    clean: bool = False  # --clean --if-exists: replace the dump's objects, leave others alone
    no_owner: bool = False  # --no-owner: ownership only
    no_privileges: bool = False  # --no-privileges: GRANT/REVOKE and default privileges
    jobs: int = 1  # > 1 needs a file; 1 runs in a single transaction
    # Data-only loads run in TOC order, not foreign-key order; a superuser can disable the
    # triggers (foreign keys included) for the load.
    disable_triggers: bool = False
    use_list: Path | None = None  # pg_restore --use-list: only (and in the order of) these

    def content_args(self) -> list[str]:
        """What to restore, independent of where it goes."""
        argv = ["--clean", "--if-exists"] if self.clean else []
        argv += ["--no-owner"] if self.no_owner else []
        argv += ["--no-privileges"] if self.no_privileges else []
        argv += ["--disable-triggers"] if self.disable_triggers else []
        argv += [f"--use-list={self.use_list}"] if self.use_list is not None else []
        return argv + self.selection.args()

    def argv(self, tool: Tool, conninfo: str, file: Path | None = None) -> list[str]:
        argv = [str(tool.path), f"--dbname={conninfo}", "--exit-on-error", "--no-password"]
        argv += ["--single-transaction"] if self.jobs == 1 else [f"--jobs={self.jobs}"]
        argv += self.content_args()
        return argv + ([str(file)] if file is not None else [])

    def script_argv(self, tool: Tool) -> list[str]:
        """pg_restore writing the restore as an SQL script to stdout (for ScriptFilter)."""
        return [str(tool.path), "--file=-", *self.content_args()]


def _close(chunks: Iterable[bytes]) -> None:
    close = getattr(chunks, "close", None)
    if callable(close):
        with contextlib.suppress(Exception):
            close()


def _read_prefix(
    argv: list[str], env: Mapping[str, str], chunks: Iterable[bytes], what: str
) -> bytes:
    """Run ``argv`` (pg_restore reading a dump from stdin) on the start of ``chunks``:
    pg_restore needs only the header and TOC, so pulling stops as soon as it closes its
    stdin; ``chunks`` is closed (e.g. a download stops) either way. Returns its stdout."""
    proc = FedProcess(argv, env, what, capture_stdout=True)
    try:
        for chunk in chunks:
            if not proc.write(chunk):
                break
    except BaseException:
        proc.kill()
        raise
    finally:
        _close(chunks)
    return proc.finish()


def read_schema_script(
    tool: Tool, env: Mapping[str, str], chunks: Iterable[bytes], args: list[str]
) -> str:
    """The schema script of a dump streamed in ``chunks`` (``pg_restore --schema-only
    --file=-`` with ``args``: selection, ownership options, a list file)."""
    argv = [str(tool.path), "--schema-only", "--file=-", *args]
    return _read_prefix(argv, env, chunks, "pg_restore --schema-only").decode("utf-8", "replace")


def read_toc(tool: Tool, env: Mapping[str, str], chunks: Iterable[bytes]) -> Toc:
    """The table of contents of a dump streamed in ``chunks`` (``pg_restore --list``)."""
    listing = _read_prefix([str(tool.path), "--list"], env, chunks, "pg_restore --list")
    return parse_toc(listing.decode("utf-8", "replace"))


def restore_stream(argv: list[str], env: Mapping[str, str], chunks: Iterable[bytes]) -> bool:
    """Feed a dump stream to pg_restore reading stdin (``argv`` without a file).

    EOF is sent only after ``chunks`` is exhausted without error, i.e. after the producer's
    final checks passed; if it raises, pg_restore is killed first, so a --single-transaction
    restore never commits. Returns False if pg_restore finished before reading everything (a
    selection that needs only a prefix of the dump): pulling stops there."""
    proc = FedProcess(argv, env, "pg_restore", False, LONG_TAIL_LINES)
    complete = True
    try:
        for chunk in chunks:
            if not proc.write(chunk):
                complete = False
                break
    except BaseException:
        if proc.exited_ok():
            log.warning(
                "pg_restore had already completed from the authenticated part of the dump "
                "before the failure below; what it restored was authenticated"
            )
        proc.kill()
        raise
    finally:
        _close(chunks)
    proc.finish()
    return complete


def restore_file(argv: list[str], env: Mapping[str, str]) -> None:
    """Run pg_restore on a dump file (``argv`` ends with the file); SubprocessError on failure,
    killed if interrupted."""
    proc = FedProcess(argv, env, "pg_restore", False, LONG_TAIL_LINES)
    try:
        proc.finish()
    except SubprocessError:
        raise
    except BaseException:
        proc.kill()
        raise


def list_file(tool: Tool, env: Mapping[str, str], path: Path) -> Toc:
    """The TOC of a dump file: proof that pg_restore can read it."""
    proc = FedProcess([str(tool.path), "--list", str(path)], env, "pg_restore --list", True)
    try:
        return parse_toc(proc.finish().decode("utf-8", "replace"))
    except BaseException:
        proc.kill()
        raise


def _large_objects(restore: Tool, env: Mapping[str, str], file: Path) -> list[int]:
    """OIDs of the large objects in a dump file (its ``BLOB`` TOC entries, one per object).
    pg_dump 17 and later group them in ``BLOB METADATA`` entries whose listing names only the
    first OID: such a dump is refused before anything changes."""
    toc = list_file(restore, env, file)
    if any(e.kind.startswith("BLOB METADATA") for e in toc.entries):
        raise OperationError(
            "--data-only --force cannot replace the large objects of this dump: pg_dump "
            f"{toc.header.get('Dumped by pg_dump version', '17 or later')} lists them in groups",
            hint="restore into a fresh database, or with --force (without --data-only)",
        )
    return sorted(int(e.name) for e in toc.entries if e.kind == "BLOB" and e.name.isdigit())


@dataclass(frozen=True)
class Reload:
    """A data-only reload through psql: the tools, the target's conninfo, the selection, the
    ``(schema, table)`` pairs to empty first."""

    restore: Tool
    psql: Tool
    conninfo: str
    selection: Selection
    truncate: list[tuple[str, str]]
    disable_triggers: bool = False


def reload_data(reload: Reload, env: Mapping[str, str], file: Path) -> None:
    """Empty ``truncate`` and reload the dump's data in ONE transaction: pg_restore writes the
    data-only script, psql runs it after a TRUNCATE (of each table ONLY, not of an inheritance
    parent's children) with --single-transaction and ON_ERROR_STOP, so any failure leaves the
    tables as they were.

    A reload without ``--table`` also recreates the dump's large objects (pg_restore's
    data-only script creates each with ``lo_create``, its owner, comment and contents): the
    target's large objects with the same OIDs are unlinked first, in the same transaction
    (as ``pg_restore --clean`` does), and other large objects are left alone. With
    ``--table`` pg_restore leaves large objects out."""
    restore, psql, selection = reload.restore, reload.psql, reload.selection
    # ONLY: an inheritance parent's children are tables of their own, reloaded only if
    # selected (TRUNCATE without ONLY would empty them too).
    tables = sql.SQL(", ").join(
        sql.SQL("ONLY {}").format(sql.Identifier(s, t)) for s, t in reload.truncate
    )
    statements = [sql.SQL("TRUNCATE TABLE {};\n").format(tables)]
    oids = [] if selection.tables else _large_objects(restore, env, file)
    if oids:
        statements.append(
            sql.SQL(
                "SELECT count(pg_catalog.lo_unlink(oid)) FROM pg_catalog.pg_largeobject_metadata"
                " WHERE oid = ANY({}::pg_catalog.oid[]);\n"
            ).format(sql.Literal(oids))
        )
    prelude = sql.Composed(statements).as_string(None).encode()
    script_argv = [str(restore.path), "--data-only", "--file=-", *selection.filter_args()]
    script_argv += ["--disable-triggers"] if reload.disable_triggers else []
    psql_argv = [str(psql.path), "--no-psqlrc", "--quiet", "--no-password"]
    psql_argv += ["--set=ON_ERROR_STOP=1", "--single-transaction"]
    psql_argv.append(f"--dbname={reload.conninfo}")
    proc = FedProcess([*psql_argv, "--file=-"], env, "psql", False, LONG_TAIL_LINES)
    script = stream_stdout([*script_argv, str(file)], env, "pg_restore --data-only")
    try:
        if proc.write(prelude):
            for chunk in script:
                if not proc.write(chunk):
                    break
    except BaseException:
        proc.kill()
        raise
    finally:
        _close(script)
    proc.finish()
