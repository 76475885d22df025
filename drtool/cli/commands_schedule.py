"""The ``schedule`` commands: thin shells over drtool.scheduler.api (cli sits above the
scheduler in the layers contract; the scheduler never imports cli)."""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Any

import click

from drtool.cli.render_schedule import schedule_listing
from drtool.cli.state import State, common_options, get_state
from drtool.config import Config, parse_duration


def _api() -> Any:
    # Imported when a schedule command runs: APScheduler stays out of every other command's
    # start-up time.
    from drtool.scheduler import api

    return api


def _parser() -> Any:
    # The schedule files' commands are parsed by this CLI's command tree (imported here: it
    # imports this module's group through drtool.cli.main).
    from drtool.cli.schedule_line import parse_schedule_command

    return parse_schedule_command


def _duration(_ctx: click.Context, _param: click.Parameter, value: str) -> timedelta:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


@click.group("schedule")
def schedule_group() -> None:
    """The cron container's scheduler: run the jobs in schedule.dir, list them, check them."""


@schedule_group.command("run")
@click.option(
    "--run-now",
    "run_now",
    multiple=True,
    metavar="JOB",
    help="Also run JOB once right away (repeatable).",
)
@click.option(
    "--grace",
    default="60s",
    metavar="DURATION",
    show_default=True,
    callback=_duration,
    help="On SIGTERM/SIGINT, how long a running job may take to finish before it is aborted.",
)
@click.option(
    "--misfire-grace",
    default="1h",
    metavar="DURATION",
    show_default=True,
    callback=_duration,
    help="A fire time missed by at most this much (scheduler down) runs once on start.",
)
@click.option(
    "--abort-wait",
    default="30s",
    metavar="DURATION",
    show_default=True,
    callback=_duration,
    help="After aborting a job (timeout, or --grace over), how long it may take to stop; a "
    "job still running then is recorded as failed and the scheduler exits 1.",
)
@common_options
def schedule_run(
    run_now: tuple[str, ...], grace: timedelta, misfire_grace: timedelta, abort_wait: timedelta
) -> None:
    """Run the scheduled jobs until SIGTERM/SIGINT; serve /metrics and /healthz on
    metrics.listen.

    Each run holds a lease in storage (scheduler/<job>.json), so a second scheduler on the same
    storage skips the run (logged and counted) rather than overlapping. On SIGTERM no new run
    starts; a running job gets --grace to finish, then it is aborted cleanly (nothing partial
    is committed) and the scheduler exits 0."""
    state = get_state()
    config = state.config()
    _api().run_scheduler(
        config,
        _parser(),
        grace_seconds=grace.total_seconds(),
        misfire_grace_seconds=misfire_grace.total_seconds(),
        abort_wait_seconds=abort_wait.total_seconds(),
        run_now=run_now,
        companions=_companions(config, state),
    )


def _companions(config: Config, state: State) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``stream run`` beside the jobs when ``stream.enabled`` (the same drtool, config and
    log format)."""
    if not config.stream.enabled:
        return ()
    argv = [sys.executable, "-m", "drtool", "--log-format", state.log_format]
    if state.config_path is not None:
        argv += ["--config", str(state.config_path)]
    return (("stream run", (*argv, "stream", "run")),)


@schedule_group.command("list")
@click.option("--count", default=3, show_default=True, help="Next fire times per job.")
@common_options
def schedule_list(count: int) -> None:
    """Every job (disabled ones marked) with its next fire times in its own time zone."""
    state = get_state()
    schedule_listing(_api().list_schedules(state.config(), _parser(), count), state.json)


@schedule_group.command("check")
@common_options
def schedule_check() -> None:
    """Validate the schedule files: cron, command, arguments, keys, time zone, durations.
    Exits 2 naming the file and key of every problem."""
    state = get_state()
    schedule_listing(_api().check_schedules(state.config(), _parser()), state.json, check=True)
