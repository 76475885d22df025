"""The ``status`` command: a thin shell over services.status; exit 4 when an objective is
breached."""

from __future__ import annotations

from collections.abc import Callable

import click

from drtool.cli.render_status import status_result
from drtool.cli.state import common_options, get_state
from drtool.services.context import Context
from drtool.services.jobs.status import StatusResult, check_status


def status_call() -> Callable[[Context], StatusResult]:
    """The call `status` makes (also a schedule's `status`)."""
    return check_status


@click.command("status")
@common_options
def status_cmd() -> int:
    """Health against the objectives: last backup, verify, drill, RPO exposure, replicas.

    Reads manifests and small records only (never backup data), so health checks and alerts
    can call it often. Exits 4 when there is no complete backup, the newest is older than
    objectives.rpo, the last verification or drill failed, the last drill took longer than
    objectives.rto, or it is older than objectives.drill_max_age (if set), and when a replica
    (storage.replicas) cannot be read or lags more than objectives.replica_lag (if set): the
    age of the oldest primary backup it lacks. Also writes metrics.textfile when configured."""
    state = get_state()
    result = status_call()(state.context())
    status_result(result, state.json)
    return result.exit_code
