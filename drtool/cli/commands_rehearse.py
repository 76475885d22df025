"""The ``rehearse`` command: a thin shell over services.rehearse; exit 4 when the drill failed
a check or an objective (an integrity failure raises: exit 3)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from drtool.cli.render_rehearse import rehearse_result
from drtool.cli.state import common_options, from_option, get_state
from drtool.services.context import Context, with_source
from drtool.services.jobs.calls import rehearse_job
from drtool.services.rehearse.run import RehearseRequest, RehearseResult
from drtool.services.stream.replay import parse_until


def rehearse_call(
    ref: str,
    scratch: str | None,
    report: Path | None,
    keep: bool,
    source: str | None = None,
    until: str | None = None,
) -> Callable[[Context], RehearseResult]:
    """The call `rehearse` makes with its parsed options (also a schedule's `rehearse ...`);
    ``source``: `--from NAME`, the replica the drill restores from and records to."""
    if until is not None and until.strip().lower() != "now":
        parse_until(until)  # a bad time is exit 2 now, not when a scheduled drill runs
    request = RehearseRequest(ref=ref, scratch=scratch, report=report, keep=keep, until=until)
    return lambda ctx: rehearse_job(with_source(ctx, source), request)


@click.command("rehearse")
@click.argument("ref", metavar="[ID|latest]", required=False, default="latest")
@click.option(
    "--scratch",
    metavar="DSN",
    default=None,
    help="Restore into a fresh database created on this server (and dropped afterwards) "
    "instead of rehearsal.scratch; `ephemeral` starts a throwaway cluster from the local "
    "PostgreSQL binaries. Never the production database (refused, exit 5).",
)
@click.option(
    "--report",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Also write a drill report here (for compliance review): Markdown, or HTML when "
    "PATH ends in .html.",
)
@click.option(
    "--keep",
    is_flag=True,
    help="Keep the scratch database (or ephemeral cluster) for inspection and print how to "
    "reach it and how to remove it.",
)
@click.option(
    "--until",
    metavar="TIME",
    default=None,
    help="A point-in-time drill: the newest backup before TIME (ISO 8601 with offset, or "
    "`now`: the drill's start) plus the change stream replayed up to TIME; RPO is what the "
    "stream had not stored of that time.",
)
@from_option
@common_options
def rehearse_cmd(
    ref: str,
    scratch: str | None,
    report: Path | None,
    keep: bool,
    until: str | None,
    source: str | None,
) -> int:
    """DR drill: restore backup ID (default `latest`) into scratch, validate it, record RTO/RPO.

    The restore is the `restore` command's (integrity first). Validation: exact row counts
    equal to the manifest's, every rehearsal.checks query true, and the roles, schemas and
    extensions the application needs present. RTO is measured from start to validated; RPO
    is the restored snapshot's age, plus the worst gap between backups over 30 days. The
    drill is recorded in drills/<id>.json. Exits 4 naming each failed check or breached
    objective, 3 if the backup failed integrity."""
    state = get_state()
    result = rehearse_call(ref, scratch, report, keep, source, until)(state.context(source))
    rehearse_result(result, state.json)
    return result.exit_code
