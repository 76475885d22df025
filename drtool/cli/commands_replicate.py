"""The ``replicate`` command: a thin shell over services.replicate, one job per replica."""

from __future__ import annotations

from collections.abc import Callable

import click

from drtool.cli.render_replicate import replicate_result
from drtool.cli.state import common_options, get_state
from drtool.services.context import Context
from drtool.services.jobs.calls import replicate_job
from drtool.services.replicate.run import DEFAULT_JOBS, ReplicateResult


def replicate_call(to: str | None, jobs: int) -> Callable[[Context], ReplicateResult]:
    """The call `replicate` makes with its parsed options (also a schedule's)."""
    return lambda ctx: replicate_job(ctx, to=to, jobs=jobs)


@click.command("replicate")
@click.option(
    "--to",
    "to",
    metavar="NAME",
    default=None,
    help="Only the replica NAME (from storage.replicas); default: every replica.",
)
@click.option(
    "--jobs",
    type=click.IntRange(1, 32),
    default=DEFAULT_JOBS,
    show_default=True,
    help="Items copied in parallel.",
)
@common_options
def replicate_cmd(to: str | None, jobs: int) -> int:
    """Copy every complete item a replica lacks and verify it there.

    Backups, exports, settled archive batches and purge records, drill and verification
    records: bytes unchanged (no re-encryption), server-side when the replica is on the same
    S3 endpoint, streamed otherwise. Each object is verified on the replica (size and SHA-256
    of the stored bytes, no key needed) before the item's manifest is written there, last.
    Items the replica's retention would remove at once are not copied. A rerun after an
    interruption copies nothing twice. Exit 1 if a replica is unreachable, 3 if an item on
    the primary is damaged (it is never copied as good)."""
    state = get_state()
    result = replicate_call(to, jobs)(state.context())
    replicate_result(result, state.json)
    return result.exit_code
