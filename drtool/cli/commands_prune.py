"""The ``prune`` command: a thin shell over services.prune, run as the `prune` job."""

from __future__ import annotations

from collections.abc import Callable

import click

from drtool.cli.render_prune import prune_result
from drtool.cli.state import common_options, get_state
from drtool.services.context import Context
from drtool.services.jobs.calls import prune_job
from drtool.services.retention.prune import PruneResult


def prune_call(dry_run: bool) -> Callable[[Context], PruneResult]:
    """The call `prune` makes with its parsed options (also a schedule's `prune ...`)."""
    return lambda ctx: prune_job(ctx, dry_run=dry_run)


@click.command("prune")
@click.option("--dry-run", is_flag=True, help="List what would be removed and why; delete nothing.")
@common_options
def prune_cmd(dry_run: bool) -> int:
    """Apply retention to backups and exports; clean up abandoned uploads and partial items.

    Keeps what retention.keep_last/daily/weekly/monthly/yearly select, and always the newest
    complete backup and the newest verified one (saying why); skips items under Object Lock.
    Exports older than retention.exports_max_age go (each user's newest stays). Leftovers of
    killed runs go once older than retention.abandoned_after. Never touches drill records.

    Then the same on each replica (storage.replicas), judged by the items there: its own
    newest complete and newest verified backups are kept. A replica that cannot be pruned
    is named (exit 1) after the primary and the other replicas were."""
    state = get_state()
    result = prune_call(dry_run)(state.context())
    prune_result(result, state.json)
    return result.exit_code
