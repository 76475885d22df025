"""The ``verify`` command: a thin shell over services.verify; exit 3 when any item failed."""

from __future__ import annotations

from collections.abc import Callable

import click

from drtool.cli.render_verify import verify_result
from drtool.cli.state import common_options, from_option, get_state
from drtool.services.context import Context, with_source
from drtool.services.jobs.calls import verify_job
from drtool.services.verify.run import VerifyResult


def verify_call(
    item_id: str | None,
    all_items: bool,
    deep: bool,
    source: str | None = None,
    stream: bool = False,
) -> Callable[[Context], VerifyResult]:
    """The call `verify` makes with its parsed options (also a schedule's `verify ...`);
    ``source``: `--from NAME`, the replica it reads and records to."""
    return lambda ctx: verify_job(
        with_source(ctx, source), item_id, all_items=all_items, deep=deep, stream=stream
    )


@click.command("verify")
@click.argument("item_id", metavar="[ID|latest]", required=False)
@click.option("--all", "all_items", is_flag=True, help="Every complete item, not just one.")
@click.option(
    "--deep",
    is_flag=True,
    help="Also decrypt and authenticate every chunk, check plaintext checksums, the manifest "
    "seal and the dump's table of contents (needs encryption.identity_file).",
)
@click.option(
    "--stream",
    is_flag=True,
    help="The change stream instead: every chain's continuity (a gap, a missing or a "
    "reordered segment fails) and every segment (--all includes it).",
)
@from_option
@common_options
def verify_cmd(
    item_id: str | None, all_items: bool, deep: bool, stream: bool, source: str | None
) -> int:
    """Check that stored items are complete and intact (no key needed without --deep).

    Without an argument, the latest backup. Exits 3 if any item failed; every problem found
    is reported and a verification record is stored for each item."""
    state = get_state()
    result = verify_call(item_id, all_items, deep, source, stream)(state.context(source))
    verify_result(result, state.json)
    return result.exit_code
