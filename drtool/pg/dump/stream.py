"""pg_dump and pg_dumpall as streaming sources; version checks against the server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from drtool.pg.conn import Target
from drtool.pg.tools.find import Tool, find_tool
from drtool.pg.tools.run import pgpass_env, run_capture, stream_stdout


def dump_tool(server_major: int) -> Tool:
    """pg_dump whose major version is >= the server's (OperationError otherwise)."""
    return find_tool("pg_dump", min_major=server_major)


def dumpall_tool(server_major: int) -> Tool:
    return find_tool("pg_dumpall", min_major=server_major)


def dump_stream(
    tool: Tool,
    target: Target,
    *,
    snapshot_id: str | None,
    lock_wait: timedelta,
    exclude_schemas: list[str],
    exclude_table_data: list[str],
    sections: tuple[str, ...] = (),
) -> Iterator[bytes]:
    """``pg_dump -Fc -Z0`` of the target in the given snapshot, streamed; compression is ours.
    ``sections``: only those (``pre-data``, ``data``, ``post-data``)."""
    argv = [
        str(tool.path),
        "--format=custom",
        "--compress=0",
        "--no-password",
        f"--lock-wait-timeout={int(lock_wait.total_seconds() * 1000)}",
        f"--dbname={target.conninfo}",
    ]
    if snapshot_id:
        argv.append(f"--snapshot={snapshot_id}")
    argv += [f"--exclude-schema={s}" for s in exclude_schemas]
    argv += [f"--exclude-table-data={t}" for t in exclude_table_data]
    argv += [f"--section={s}" for s in sections]
    with pgpass_env(target.password) as env:
        yield from stream_stdout(argv, env, "pg_dump")


def dump_globals(tool: Tool, target: Target) -> bytes:
    """Roles and tablespaces, no passwords: ``pg_dumpall --globals-only --no-role-passwords``."""
    argv = [
        str(tool.path),
        "--globals-only",
        "--no-role-passwords",
        "--no-password",
        f"--dbname={target.conninfo}",
    ]
    with pgpass_env(target.password) as env:
        return run_capture(argv, env, "pg_dumpall --globals-only").encode("utf-8")


def exact_pattern(schema: str, name: str) -> str:
    """A pg_dump pattern matching exactly one table: both parts double-quoted (inside quotes
    pattern characters are literal, a quote is doubled)."""
    return '"{}"."{}"'.format(schema.replace('"', '""'), name.replace('"', '""'))
