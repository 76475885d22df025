"""Where a drill restores: an ephemeral cluster from local PostgreSQL binaries, or a fresh,
uniquely named database on a server (never the production database). Both are removed when
the drill ends, however it ends, unless ``--keep``."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

from drtool.errors import DatabaseError, DrtoolError, OperationError, RefusedError, UsageError
from drtool.log import REDACTOR, get_logger
from drtool.pg.cluster.ephemeral import EphemeralCluster
from drtool.pg.conn import Target, parse_target
from drtool.pg.scratch import (
    create_database,
    database_exists,
    drop_database,
    location,
    server_facts,
    server_identity,
)
from drtool.pg.tools.find import find_tool
from drtool.services.context import Context

EPHEMERAL = "ephemeral"
SCRATCH_DB_PREFIX = "drtool_drill_"
PGPASS_FILE = "drill.pgpass"
# Index builds dominate the tail of a restore; the scratch cluster is ours alone.
DRILL_SETTINGS: dict[str, str] = {"maintenance_work_mem": "128MB"}

log = get_logger("rehearse")


@dataclass(frozen=True)
class ScratchSpec:
    """``ephemeral``, or a server (the DSN's database is only where drtool connects to create
    and drop the scratch database); ``setting`` names where it came from, for messages."""

    kind: str
    server: Target | None
    setting: str


@dataclass(frozen=True)
class KeptScratch:
    """How to reach a scratch kept with ``--keep``: never a password, at most a 0600 file."""

    dsn: str
    password_file: str | None
    remove_hint: str


@dataclass
class Scratch:
    kind: str
    target: Target  # the scratch database, with its password
    description: str  # host:port/database
    database: str
    server_major: int
    server_version: str
    kept: KeptScratch | None = None
    removed: bool = False


def scratch_database_name(drill_id: str) -> str:
    return SCRATCH_DB_PREFIX + re.sub(r"[^a-z0-9]", "_", drill_id.lower())


def scratch_spec(ctx: Context, option: str | None) -> ScratchSpec:
    """``--scratch`` wins over ``rehearsal.scratch``. A DSN whose host, port and database are
    the production database's is refused here, before anything is created (exit 5)."""
    setting = "--scratch" if option is not None else "rehearsal.scratch"
    value = (option if option is not None else ctx.config.rehearsal.scratch).strip()
    if value == EPHEMERAL:
        return ScratchSpec(EPHEMERAL, None, setting)
    try:
        server = parse_target(value)
    except UsageError:
        raise UsageError(
            f"{setting} is neither `ephemeral` nor a valid PostgreSQL connection string"
        ) from None
    production = ctx.database()
    if location(server) == location(production):
        raise _production_refusal(setting, production)
    return ScratchSpec("server", server, setting)


def _production_refusal(setting: str, production: Target) -> RefusedError:
    return RefusedError(
        f"{setting} points at the production database ({production.describe()}, database.dsn): "
        "a drill never restores there",
        hint=f"set {setting} to another server or database, or use the ephemeral scratch "
        "(rehearsal.scratch: ephemeral)",
    )


def check_not_production(ctx: Context, spec: ScratchSpec) -> None:
    """The same database under another name (an IP for a host name, a proxy) is still the
    production database: compare the servers' system identifiers and the database names."""
    assert spec.server is not None
    # connect() words its errors "connecting for <doing> on host:port/db failed: ...".
    mine = server_identity(spec.server, f"identifying the scratch server ({spec.setting})")
    production = ctx.database()
    try:
        theirs = server_identity(production, "identifying the production database")
    except DrtoolError as exc:
        log.warning(
            "could not reach the production database to compare it with %s (%s); relying on "
            "host, port and database name",
            spec.setting,
            exc.message,
        )
        return
    if mine.same_database(theirs):
        raise _production_refusal(spec.setting, production)


@contextlib.contextmanager
def open_scratch(
    ctx: Context, spec: ScratchSpec, drill_id: str, min_major: int | None, keep: bool
) -> Iterator[Scratch]:
    name = scratch_database_name(drill_id)
    if spec.kind == EPHEMERAL:
        with _ephemeral(name, min_major, keep) as scratch:
            yield scratch
    else:
        check_not_production(ctx, spec)
        with _on_server(spec, name, min_major, keep) as scratch:
            yield scratch


def _check_initdb(min_major: int | None) -> None:
    if min_major is None:
        return
    tool = find_tool("initdb")
    if tool.major < min_major:
        raise OperationError(
            f"the backup is from PostgreSQL {min_major}, and the newest local PostgreSQL "
            f"server is {tool.major} ({tool.path}): a drill restores into {min_major} or newer",
            hint=f"install postgresql-{min_major} (apt-get install postgresql-{min_major}) or "
            "set DRTOOL_PG_BINDIR to its bin directory, or rehearse on a server: --scratch DSN "
            "(rehearsal.scratch)",
        )


@contextlib.contextmanager
def _ephemeral(name: str, min_major: int | None, keep: bool) -> Iterator[Scratch]:
    _check_initdb(min_major)
    password = secrets.token_urlsafe(24)
    REDACTOR.add(password)
    cluster = EphemeralCluster(min_major=min_major, password=password, settings=DRILL_SETTINGS)
    log.info("starting an ephemeral PostgreSQL cluster for the drill")
    cluster.start()
    scratch: Scratch | None = None
    interrupted = False
    try:
        dsn = cluster.create_database(name)
        scratch = Scratch(
            kind=EPHEMERAL,
            target=parse_target(dsn, password),
            description=f"{cluster.host}:{cluster.port}/{name}",
            database=name,
            server_major=cluster.major,
            server_version=cluster.version,
        )
        log.info("ephemeral PostgreSQL %s on %s:%d", cluster.version, cluster.host, cluster.port)
        yield scratch
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        interrupted = True  # Ctrl-C, SIGTERM: stopped even with --keep
        raise
    finally:
        if keep and scratch is not None and not interrupted:
            _keep_ephemeral(cluster, scratch, password)
        else:
            cluster.stop()
            if scratch is not None:
                scratch.removed = True


def _keep_ephemeral(cluster: EphemeralCluster, scratch: Scratch, password: str) -> None:
    """Leave the cluster running; its password goes to a 0600 pgpass file next to the data
    directory (removed with it), never to the terminal."""
    pgpass = cluster.data_dir.parent / PGPASS_FILE
    line = f"{cluster.host}:{cluster.port}:*:{cluster.superuser}:{_pgpass_escape(password)}\n"
    fd = os.open(pgpass, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(line)
    cluster.detach()
    scratch.kept = KeptScratch(
        dsn=cluster.dsn(scratch.database),
        password_file=str(pgpass),
        remove_hint=cluster.stop_hint,
    )
    log.info("kept the ephemeral cluster: %s", scratch.kept.dsn)


def _pgpass_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


@contextlib.contextmanager
def _on_server(
    spec: ScratchSpec, name: str, min_major: int | None, keep: bool
) -> Iterator[Scratch]:
    assert spec.server is not None
    server = spec.server
    major, version = server_facts(server)
    where = server.with_dbname(name).describe()
    if min_major is not None and major < min_major:
        raise UsageError(
            f"the scratch server {server.describe()} ({spec.setting}) is PostgreSQL {major}, "
            f"the backup is from {min_major}: rehearse on {min_major} or newer",
            hint="a dump restores into the same or a newer PostgreSQL major, never an older one",
        )
    if database_exists(server, name):
        raise RefusedError(f"the scratch database {where} already exists; not touching it")
    log.info("creating the scratch database %s", where)
    target = create_database(server, name)
    scratch = Scratch(
        kind="server",
        target=target,
        description=where,
        database=name,
        server_major=major,
        server_version=version,
    )
    interrupted = False
    try:
        yield scratch
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        interrupted = True
        raise
    finally:
        if keep and not interrupted:
            scratch.kept = KeptScratch(
                dsn=target.conninfo,
                password_file=None,
                remove_hint=f"psql '{server.conninfo}' -c 'DROP DATABASE {name}'",
            )
            log.info("kept the scratch database %s", where)
        else:
            _drop(server, name, where, scratch)


def _drop(server: Target, name: str, where: str, scratch: Scratch) -> None:
    try:
        drop_database(server, name)
        scratch.removed = True
    except DatabaseError as exc:
        log.warning(
            "could not drop the scratch database %s: %s; drop it by hand (DROP DATABASE %s)",
            where,
            exc.message,
            name,
        )
