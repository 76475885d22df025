"""The per-user commands: ``export-user``, ``export-users`` and ``restore-user``. Thin shells
over services.export, services.export_users and services.restore_user."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from drtool.cli.render_export import export_result, export_users_result, restore_user_result
from drtool.cli.state import common_options, from_option, get_state
from drtool.services.context import Context
from drtool.services.jobs.audited import export_user_audited, restore_user_audited
from drtool.services.jobs.calls import export_users_job
from drtool.services.userdata.export_users import ExportUsersResult, check_selection
from drtool.services.userdata.restore_user import RestoreUserRequest


@click.command("export-user")
@click.argument("user_id", metavar="USER_ID")
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write a plain zip archive for the data subject here (one JSON Lines file per table, "
    "manifest.json, README.txt; exports.redact_columns and, on Supabase, the auth secrets "
    "left out) instead of storing an encrypted export. Never overwrites a file (exit 2).",
)
@common_options
def export_user_cmd(user_id: str, out: Path | None) -> None:
    """Every row of one user from every user-scoped table, read in one snapshot.

    Without --out: encrypted and stored under exports/<user_id>/<id>/ (restorable with
    restore-user). An unknown or malformed USER_ID exits 2 and stores nothing."""
    state = get_state()
    export_result(export_user_audited(state.context(), user_id, out), state.json)


def export_users_call(
    all_users: bool, changed_since: str | None
) -> Callable[[Context], ExportUsersResult]:
    """The call `export-users` makes with its parsed options (also a schedule's); the
    selection is checked here, before anything runs (a schedule file: when it is loaded)."""
    check_selection(all_users, changed_since)
    return lambda ctx: export_users_job(ctx, all_users=all_users, changed_since=changed_since)


@click.command("export-users")
@click.option("--all", "all_users", is_flag=True, help="Every user in exports.users_table.")
@click.option(
    "--changed-since",
    metavar="DURATION",
    default=None,
    help="Only users with a row created or updated within DURATION (e.g. 25h), judged by "
    "updated_at/created_at/inserted_at/modified_at columns; deletions are not seen.",
)
@common_options
def export_users_cmd(all_users: bool, changed_since: str | None) -> int:
    """Stored per-user exports for many users (the scheduled job).

    Each user is exported in its own snapshot and committed on its own; a failed user does
    not stop the others. Exits 1 if any user failed, naming them."""
    state = get_state()
    result = export_users_call(all_users, changed_since)(state.context())
    export_users_result(result, state.json)
    return result.exit_code


@click.command("restore-user")
@click.argument("user_id", metavar="USER_ID")
@click.option(
    "--from-export",
    "from_export",
    metavar="ID",
    default=None,
    help="A stored export of this user (`drtool list --kind export`).",
)
@click.option(
    "--from-backup",
    "from_backup",
    metavar="ID",
    default=None,
    help="A backup (or `latest`): restored into a scratch database "
    "(rehearsal.scratch), this user's rows taken from there.",
)
@click.option(
    "--to",
    "to_dsn",
    metavar="DSN",
    required=True,
    help="The database to restore into; its tables must exist. Prefer PGPASSWORD or "
    "~/.pgpass to a password in the DSN.",
)
@click.option(
    "--mode",
    type=click.Choice(["insert-missing", "replace"]),
    default="insert-missing",
    show_default=True,
    help="insert-missing: add the user's rows that are absent (by primary key), leave "
    "the rest; replace: make the user's rows exactly the exported ones. Both give rows "
    "detached by ON DELETE SET NULL (user column NULL) back to the user.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Per table, how many rows would be inserted, updated or deleted; no change.",
)
@from_option
@common_options
def restore_user_cmd(
    user_id: str,
    from_export: str | None,
    from_backup: str | None,
    to_dsn: str,
    mode: str,
    dry_run: bool,
    source: str | None,
) -> None:
    """Bring back one user's rows, in one transaction; other users' rows are never changed.

    Runs as the role in --to: it must own the tables (or be a superuser) so that row-level
    security does not apply and user triggers can be disabled for the transaction
    (docs/exports.md)."""
    state = get_state()
    request = RestoreUserRequest(
        user_id=user_id,
        to_dsn=to_dsn,
        from_export=from_export,
        from_backup=from_backup,
        mode=mode,
        dry_run=dry_run,
    )
    restore_user_result(restore_user_audited(state.context(source), request), state.json)
