"""The ``restore`` command: a thin shell over services.restore."""

from __future__ import annotations

from pathlib import Path

import click

from drtool.cli.render_restore import restore_result
from drtool.cli.state import common_options, from_option, get_state
from drtool.services.jobs.audited import restore_audited
from drtool.services.restore.run import RestoreRequest
from drtool.services.stream.replay import parse_until


@click.command("restore")
@click.argument("ref", metavar="ID|latest")
@click.option(
    "--to",
    "to_dsn",
    metavar="DSN",
    default=None,
    help="Target database (postgresql://... or key=value). Prefer PGPASSWORD or ~/.pgpass to a "
    "password in the DSN: it is never passed on, but your shell's history keeps it.",
)
@click.option(
    "--to-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the verified plain custom-format dump here (mode 0600) for a manual "
    "pg_restore; never overwrites a file.",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1, max=64),
    default=1,
    show_default=True,
    help="Parallel pg_restore jobs. 1 streams into one transaction; N > 1 first decrypts the "
    "dump to a spool file in restore.spool_dir (pg_restore -j needs a seekable file). A "
    "parallel-format backup (backup --jobs N) loads with N COPY streams, without a spool.",
)
@click.option(
    "--table",
    "tables",
    multiple=True,
    metavar="T",
    help="Only this table: schema.table, or table (schema public). Repeatable.",
)
@click.option("--schema-only", is_flag=True, help="Only the schema, no data.")
@click.option(
    "--data-only",
    is_flag=True,
    help="Only the data; the tables must exist and be empty (--force empties them first, in "
    "the same transaction as the reload).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Restore into a database that has user tables: objects in the backup are dropped "
    "and recreated (pg_restore --clean --if-exists), other objects are left alone.",
)
@click.option(
    "--no-owner",
    is_flag=True,
    help="Skip ownership only: objects end up owned by the restoring user; grants and "
    "default privileges stay (pg_restore --no-owner).",
)
@click.option(
    "--no-privileges",
    is_flag=True,
    help="Skip GRANT/REVOKE and default privileges (pg_restore --no-privileges).",
)
@click.option(
    "--role-map",
    "role_map",
    multiple=True,
    metavar="FROM=TO",
    help="Give FROM's ownerships, grants, default privileges and policies to TO. Repeatable.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Authenticate the backup, check the target and print the plan; change nothing.",
)
@click.option(
    "--until",
    "until",
    metavar="TIME",
    default=None,
    help="Point in time (ISO 8601 with offset, e.g. 2026-12-05T17:03:59Z): restore the newest "
    "backup before TIME (ID: that one), then replay the stored change stream up to TIME "
    "(docs/streaming.md).",
)
@from_option
@common_options
def restore_cmd(
    ref: str,
    to_dsn: str | None,
    to_file: Path | None,
    jobs: int,
    tables: tuple[str, ...],
    schema_only: bool,
    data_only: bool,
    force: bool,
    no_owner: bool,
    no_privileges: bool,
    role_map: tuple[str, ...],
    dry_run: bool,
    until: str | None,
    source: str | None,
) -> None:
    """Restore backup ID (or `latest`) into a database, or write its dump to a file.

    The backup is authenticated before anything reaches the target; a target with user
    tables is refused (exit 5) unless --force; an integrity failure (exit 3) leaves the
    target as it was."""
    state = get_state()
    request = RestoreRequest(
        ref=ref,
        to_dsn=to_dsn,
        to_file=to_file,
        jobs=jobs,
        tables=tables,
        schema_only=schema_only,
        data_only=data_only,
        force=force,
        no_owner=no_owner,
        no_privileges=no_privileges,
        role_map=role_map,
        dry_run=dry_run,
        until=parse_until(until) if until is not None else None,
    )
    restore_result(restore_audited(state.context(source), request), state.json)
