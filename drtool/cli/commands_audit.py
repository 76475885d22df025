"""The ``audit`` command: a thin shell over services.audit."""

from __future__ import annotations

from datetime import timedelta

import click

from drtool.cli.commands_archive import DURATION
from drtool.cli.render_audit import audit_list_result, audit_verify_result
from drtool.cli.state import common_options, from_option, get_state
from drtool.services.audit.view import list_audit, verify_audit


@click.command("audit")
@click.option(
    "--since",
    default=None,
    metavar="DURATION",
    type=DURATION,
    help="Only records of the last DURATION (e.g. 24h, 90d).",
)
@click.option("--user", default=None, metavar="USER_ID", help="Only records naming this user.")
@click.option(
    "--item", default=None, metavar="ID", help="Only records naming this item (id or kind:id)."
)
@click.option(
    "--verify",
    is_flag=True,
    help="Check the hash chain: exit 3 naming each removed, edited or reordered record.",
)
@from_option
@common_options
def audit_cmd(
    since: timedelta | None,
    user: str | None,
    item: str | None,
    verify: bool,
    source: str | None,
) -> int:
    """The audit trail of sensitive operations (restores, user exports and restores, archival
    deletions and restores, prune removals, bundle restores, decryptions), newest first."""
    state = get_state()
    ctx = state.context(source)
    if verify:
        result = verify_audit(ctx)
        audit_verify_result(result, state.json)
        return result.exit_code
    audit_list_result(list_audit(ctx, since=since, user=user, item=item), state.json)
    return 0
