"""The ``report`` command: a thin shell over services.report (one self-contained HTML file)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import click

from drtool.cli.commands_archive import DURATION
from drtool.cli.render_report import report_result
from drtool.cli.state import common_options, get_state
from drtool.services.context import Context
from drtool.services.report.run import DEFAULT_SINCE, ReportResult, write_report


def report_call(out: Path, since: timedelta) -> Callable[[Context], ReportResult]:
    """The call `report` makes with its parsed options (also a schedule's `report ...`)."""
    return lambda ctx: write_report(ctx, out, since)


@click.command("report")
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="The HTML file to write (replaced atomically).",
)
@click.option(
    "--since",
    type=DURATION,
    default=DEFAULT_SINCE,
    metavar="DURATION",
    show_default="90d",
    help="The period the report covers, up to now (e.g. 30d, 12w).",
)
@common_options
def report_cmd(out: Path, since: timedelta) -> int:
    """A self-contained HTML report: the verdict `status` gives, objectives, backups timeline
    with the RPO gaps, RTO per drill, verifications, replica lag, storage growth and the
    latest drill's validation.

    Reads manifests and small records only (no decryption key). One file with inline CSS and
    SVG charts, no scripts, nothing fetched: it opens offline, as an e-mail attachment, and
    prints. Exits 0 when the report was written, whatever its verdict (`status` exits 4 on a
    breach); 2 for a bad --since or an --out that cannot be written."""
    state = get_state()
    result = report_call(out, since)(state.context())
    report_result(result, state.json)
    return result.exit_code
