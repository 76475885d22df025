"""Restores that rewrite pg_restore's SQL script on its way to psql: role mapping
(``--role-map FROM=TO``), loading a managed platform's existing tables (``auth.users`` in a
fresh Supabase project) through staging tables, and dropping ``SET SESSION AUTHORIZATION``
for a restoring user that may not switch roles.

The pipeline is ``dump chunks -> pg_restore --file=- -> ScriptFilter -> psql``. psql runs
the script in ONE transaction that only a final ``COMMIT`` sent by us ends: if the dump
stream fails authentication, pg_restore fails or anything else goes wrong, psql is killed
before that and the server rolls everything back. COPY data passes through untouched; only
statement lines are looked at, so the filter costs little beyond the copy itself.
"""

from __future__ import annotations

import contextlib
import io
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from psycopg import sql

from drtool.errors import SubprocessError
from drtool.pg.dump.sql_text import IDENT, quote_ident, unquote
from drtool.pg.restore.pg_restore import LONG_TAIL_LINES, FedProcess

READ_CHUNK = 1 << 16
_COPY = re.compile(rf"^COPY ({IDENT})\.({IDENT}) (\(.*\) )?FROM stdin;$")
_END_OF_DATA = b"\n\\.\n"

# Statement lines that name roles, and which group holds the role (list).
_ROLE_LIST = rf"{IDENT}(?:, *{IDENT})*"
_ROLE_LINES = (
    re.compile(rf"^(ALTER .+ OWNER TO )({IDENT})(;)$"),
    re.compile(rf"^((?:GRANT|REVOKE) .+ (?:TO|FROM) )({_ROLE_LIST})((?: WITH GRANT OPTION)?;)$"),
    re.compile(rf"^(ALTER DEFAULT PRIVILEGES FOR ROLE )({IDENT})( .*)$"),
    re.compile(rf"^(SET SESSION AUTHORIZATION )({IDENT})(;)$"),
    re.compile(rf"^(CREATE POLICY .+ TO )({_ROLE_LIST})((?: USING| WITH CHECK|;).*|)$"),
)
_DEFAULT_TO = re.compile(rf"( (?:TO|FROM) )({_ROLE_LIST})(;)$")
_GRANTED_BY = re.compile(rf"( GRANTED BY )({IDENT})")
_SESSION_AUTH = re.compile(r"^(?:SET SESSION AUTHORIZATION .+|RESET SESSION AUTHORIZATION);$")


def _map_list(text: str, mapping: Mapping[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        raw = match.group(0)
        name = unquote(raw)
        return quote_ident(mapping[name]) if name in mapping else raw

    return re.sub(IDENT, one, text)


def map_roles(line: str, mapping: Mapping[str, str]) -> str:
    """``line`` with the roles ``mapping`` names replaced where the line names a role (owner,
    grantee, default privileges' role and grantees, policy roles, GRANTED BY)."""
    if not mapping:
        return line
    for pattern in _ROLE_LINES:
        match = pattern.match(line)
        if match is None:
            continue
        head, roles, tail = match.group(1), match.group(2), match.group(3)
        if pattern.pattern.startswith("^(ALTER DEFAULT"):
            tail = _DEFAULT_TO.sub(
                lambda m: m.group(1) + _map_list(m.group(2), mapping) + ";", tail
            )
        out = head + _map_list(roles, mapping) + tail
        return _GRANTED_BY.sub(lambda m: m.group(1) + _map_list(m.group(2), mapping), out)
    return line


@dataclass
class Staged:
    """A platform table whose rows go through a staging table: the COPY's columns and the
    staging table's name."""

    schema: str
    table: str
    columns: str  # "(a, b, c) " as in the COPY statement, or ""
    stage: str


@dataclass
class ScriptFilter:
    """Rewrites a pg_restore script stream. ``stage``: ``schema.table`` names whose COPY is
    redirected into a temporary staging table; ``insert_order`` is the order their rows are
    then inserted in (parents first); ``keep_existing``: ON CONFLICT DO NOTHING."""

    role_map: Mapping[str, str] = field(default_factory=dict)
    drop_session_authorization: bool = False
    stage: frozenset[str] = frozenset()
    insert_order: tuple[str, ...] = ()
    keep_existing: bool = False
    staged: dict[str, Staged] = field(default_factory=dict)
    _pending: bytes = b""
    _in_data: bool = False
    _data_start: bool = False
    _inserted: bool = False

    def _statement(self, line: str) -> str:
        if self.drop_session_authorization and _SESSION_AUTH.match(line):
            return "-- (drtool) " + line
        match = _COPY.match(line)
        if match and self.stage:
            schema, table = unquote(match.group(1)), unquote(match.group(2))
            name = f"{schema}.{table}"
            if name in self.stage:
                stage = f"drtool_stage_{len(self.staged) + 1}"
                self.staged[name] = Staged(schema, table, match.group(3) or "", stage)
                create = sql.SQL("CREATE TEMPORARY TABLE {} (LIKE {}) ON COMMIT DROP;").format(
                    sql.Identifier(stage), sql.Identifier(schema, table)
                )
                copy = f"COPY pg_temp.{quote_ident(stage)} {match.group(3) or ''}FROM stdin;"
                return create.as_string(None) + "\n" + copy
        return map_roles(line, self.role_map)

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        """The filtered script for one more chunk of pg_restore's output."""
        data = self._pending + chunk
        self._pending = b""
        pos = 0
        while pos < len(data):
            if self._in_data:
                if self._data_start:
                    # An empty COPY: the end marker is the first line.
                    if len(data) - pos < 3:
                        break
                    self._data_start = False
                    if data.startswith(b"\\.\n", pos):
                        yield data[pos : pos + 3]
                        pos += 3
                        self._in_data = False
                        yield from self._after_data()
                        continue
                end = data.find(_END_OF_DATA, pos)
                if end < 0:
                    # Keep a possible start of the end marker for the next chunk.
                    cut = max(pos, len(data) - (len(_END_OF_DATA) - 1))
                    if cut > pos:
                        yield data[pos:cut]
                    pos = cut
                    break
                stop = end + len(_END_OF_DATA)
                yield data[pos:stop]
                pos = stop
                self._in_data = False
                yield from self._after_data()
                continue
            newline = data.find(b"\n", pos)
            if newline < 0:
                break
            line = data[pos:newline].decode("utf-8", "surrogateescape")
            pos = newline + 1
            yield self._statement(line).encode("utf-8", "surrogateescape") + b"\n"
            if _COPY.match(line):
                self._in_data = True
                self._data_start = True
        self._pending = data[pos:]

    def _after_data(self) -> Iterator[bytes]:
        """Once the last staged table's rows are in, insert every staged table's rows into
        the real tables: still in the data section, before the foreign keys and triggers of
        the post-data section are created."""
        if self.stage and not self._inserted and set(self.staged) >= self.stage:
            self._inserted = True
            yield self._inserts()

    def finish(self) -> bytes:
        """What ends the script: staged rows not inserted yet (a selection that left some
        staged tables out)."""
        out = self._pending + (self._inserts() if not self._inserted else b"")
        self._pending = b""
        self._inserted = True
        return out

    def _inserts(self) -> bytes:
        out: list[bytes] = []
        order = [n for n in self.insert_order if n in self.staged]
        order += [n for n in self.staged if n not in order]
        for name in order:
            s = self.staged[name]
            cols = sql.SQL(s.columns.strip()) if s.columns else sql.SQL("")
            select = sql.SQL("SELECT {} FROM pg_temp.{}").format(
                sql.SQL(s.columns.strip()[1:-1]) if s.columns else sql.SQL("*"),
                sql.Identifier(s.stage),
            )
            stmt = sql.SQL("INSERT INTO {} {} OVERRIDING SYSTEM VALUE {}{};").format(
                sql.Identifier(s.schema, s.table),
                cols,
                select,
                sql.SQL(" ON CONFLICT DO NOTHING") if self.keep_existing else sql.SQL(""),
            )
            out.append(stmt.as_string(None).encode("utf-8") + b"\n")
        return b"".join(out)


@dataclass
class _Pump:
    """Moves pg_restore's script through the filter into psql on a thread. If psql stops
    reading (an error), pg_restore is killed so that nothing waits on a full pipe."""

    restore: FedProcess
    flt: ScriptFilter
    sink: FedProcess
    error: BaseException | None = None
    sink_closed: bool = False
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        stdout = self.restore.proc.stdout
        assert isinstance(stdout, io.BufferedReader)
        try:
            while chunk := stdout.read1(READ_CHUNK):
                for piece in self.flt.feed(chunk):
                    if not self.sink.write(piece):
                        self.sink_closed = True
                        self.restore.kill()
                        return
        except BaseException as exc:
            self.error = exc
            self.restore.kill()

    def join(self, timeout: float | None = None) -> None:
        if self.thread is not None:
            self.thread.join(timeout)


def restore_through_psql(
    restore_argv: list[str],
    psql_argv: list[str],
    env: Mapping[str, str],
    chunks: Iterable[bytes],
    flt: ScriptFilter,
) -> None:
    """``pg_restore --file=-`` fed ``chunks`` (EOF only after they are exhausted without
    error), its script filtered into ``psql`` inside one transaction that is committed only
    when pg_restore succeeded and the whole script was sent."""
    psql = FedProcess(psql_argv, env, "psql", False, LONG_TAIL_LINES)
    restore = FedProcess(restore_argv, env, "pg_restore", False, LONG_TAIL_LINES, pipe_stdout=True)
    pump = _Pump(restore, flt, psql)
    try:
        psql.write(b"BEGIN;\n")
        pump.start()
        for chunk in chunks:
            if not restore.write(chunk):
                break
        try:
            restore.finish()
        finally:
            pump.join()
        if pump.error is not None:
            raise pump.error
        if pump.sink_closed or psql.closed_early:
            psql.finish()  # raises with psql's error message
            raise SubprocessError("psql stopped reading the restore script")
        psql.write(flt.finish() + b"COMMIT;\n")
        psql.finish()
    except BaseException as exc:
        # psql first: without our COMMIT its transaction is rolled back.
        failed_sql = pump.sink_closed or psql.closed_early
        psql_error: SubprocessError | None = None
        if failed_sql and isinstance(exc, SubprocessError) and "psql" not in exc.message:
            try:
                psql.finish()
            except SubprocessError as err:
                psql_error = err
        psql.kill()
        restore.kill()
        pump.join(timeout=5)
        close = getattr(chunks, "close", None)
        if callable(close):
            with contextlib.suppress(Exception):
                close()
        if psql_error is not None:
            raise psql_error from exc
        raise
