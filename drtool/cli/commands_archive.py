"""The ``archive`` commands (run, list, restore): thin shells over services.archive*."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import click

from drtool.cli.render_archive import (
    archive_list_result,
    archive_restore_result,
    archive_run_result,
)
from drtool.cli.state import common_options, from_option, get_state
from drtool.config import parse_duration
from drtool.services.archive.restore import parse_time
from drtool.services.archive.run import ArchiveRequest, ArchiveRunResult
from drtool.services.archive.view import list_archive
from drtool.services.context import Context
from drtool.services.jobs.audited import archive_restore_audited
from drtool.services.jobs.calls import archive_job


class DurationType(click.ParamType[timedelta, Any]):
    """``90s``, ``30m``, ``2h``: a number and a unit, as in the configuration."""

    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, timedelta):
            return value
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


DURATION = DurationType()


def archive_run_call(
    policy: str | None,
    dry_run: bool,
    batch_size: int | None,
    max_rows: int | None,
    sleep: timedelta,
    max_duration: timedelta | None,
    vacuum: bool,
) -> Callable[[Context], ArchiveRunResult]:
    """The call `archive run` makes with its parsed options (also a schedule's)."""
    request = ArchiveRequest(
        policy=policy,
        dry_run=dry_run,
        batch_size=batch_size,
        max_rows=max_rows,
        sleep_seconds=sleep.total_seconds(),
        max_duration=max_duration,
        vacuum=vacuum,
    )
    return lambda ctx: archive_job(ctx, request)


@click.group("archive")
def archive_group() -> None:
    """Archive-then-delete old rows (or purge them) per archival policy; list and restore."""


@archive_group.command("run")
@click.option("--policy", default=None, metavar="NAME", help="Only this policy (default: all).")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Count matching rows and the batches a run would make; store and delete nothing.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help="Rows per batch (default archival.batch_size); one short delete transaction each.",
)
@click.option(
    "--max-rows",
    type=click.IntRange(min=1),
    default=None,
    help="Archive or purge at most N rows per policy in this run.",
)
@click.option(
    "--sleep",
    "sleep",
    type=DURATION,
    default="0s",
    show_default=True,
    help="Pause between batches, e.g. 0.5s or 2s (less load on a busy primary).",
)
@click.option(
    "--max-duration",
    type=DURATION,
    default=None,
    help="Start no new batch after this long (e.g. 30m); the batch in flight completes.",
)
@click.option("--vacuum", is_flag=True, help="VACUUM (ANALYZE) each table afterwards.")
@common_options
def archive_run_cmd(
    policy: str | None,
    dry_run: bool,
    batch_size: int | None,
    max_rows: int | None,
    sleep: timedelta,
    max_duration: timedelta | None,
    vacuum: bool,
) -> int:
    """Archive-then-delete (or purge) the rows each policy matches, in primary-key order.

    Each batch is stored encrypted and read back before its rows are deleted, in a short
    transaction that deletes exactly the archived rows or nothing. A run that was killed is
    reconciled by the next one (runbooks/archive.md)."""
    state = get_state()
    call = archive_run_call(policy, dry_run, batch_size, max_rows, sleep, max_duration, vacuum)
    result = call(state.context())
    archive_run_result(result, state.json)
    return result.exit_code


@archive_group.command("list")
@click.option("--policy", default=None, metavar="NAME", help="Only this policy's batches.")
@from_option
@common_options
def archive_list_cmd(policy: str | None, source: str | None) -> None:
    """Archived batches and purge records, newest first, with their status."""
    state = get_state()
    archive_list_result(list_archive(state.context(source), policy), state.json)


@archive_group.command("restore")
@click.option("--policy", required=True, metavar="NAME", help="The policy whose rows come back.")
@click.option(
    "--since", default=None, metavar="T", help="Only rows at or after T (ISO date/time, UTC)."
)
@click.option("--until", default=None, metavar="T", help="Only rows before T (ISO date/time, UTC).")
@click.option(
    "--to",
    "to_dsn",
    required=True,
    metavar="DSN",
    help="Database to put the rows back into (its table must exist). Prefer PGPASSWORD or "
    "~/.pgpass to a password in the DSN.",
)
@from_option
@common_options
def archive_restore_cmd(
    policy: str, since: str | None, until: str | None, to_dsn: str, source: str | None
) -> None:
    """Put archived rows back: rows whose primary key is missing are inserted, present rows
    are left alone; every batch is authenticated before any of its rows is inserted."""
    state = get_state()
    result = archive_restore_audited(
        state.context(source),
        policy,
        to_dsn,
        since=parse_time(since, "--since"),
        until=parse_time(until, "--until"),
    )
    archive_restore_result(result, state.json)
