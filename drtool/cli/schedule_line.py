"""A schedule file's ``command:`` parsed by the CLI's own click command tree, so every
option, check and message is declared once, into the job call the scheduler runs (passed
to drtool.scheduler, which sits below cli and never imports click)."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from typing import Any

import click

from drtool.cli.commands import backup_call
from drtool.cli.commands_archive import archive_run_call
from drtool.cli.commands_export import export_users_call
from drtool.cli.commands_prune import prune_call
from drtool.cli.commands_rehearse import rehearse_call
from drtool.cli.commands_replicate import replicate_call
from drtool.cli.commands_report import report_call
from drtool.cli.commands_status import status_call
from drtool.cli.commands_verify import verify_call
from drtool.cli.main import cli
from drtool.cli.state import SCHEDULE_LINE
from drtool.errors import UsageError
from drtool.scheduler.commands import JobCall
from drtool.services.context import Context
from drtool.services.jobs.job import Outcome

# The commands a schedule may run (by command path), and the call each makes with the
# parameters its click command parsed.
SCHEDULABLE: dict[str, Callable[..., Callable[[Context], Outcome]]] = {
    "backup": backup_call,
    "verify": verify_call,
    "rehearse": rehearse_call,
    "prune": prune_call,
    "status": status_call,
    "export-users": export_users_call,
    "archive run": archive_run_call,
    "replicate": replicate_call,
    "report": report_call,
}


def _can_run() -> str:
    return "a schedule can run " + ", ".join(f"`{path}`" for path in SCHEDULABLE)


def parse_schedule_command(argv: Sequence[str]) -> JobCall:
    """``argv`` (a schedule's ``command:``, without ``drtool``) parsed by the CLI's command
    tree: its options converted and checked by their click types and callbacks. UsageError
    with click's message for an unknown command or a bad argument, or naming the commands a
    schedule can run."""
    # No help option: `--help` in a schedule is an unknown option, not help on stdout.
    ctx = click.Context(cli, info_name="drtool", help_option_names=[])
    ctx.meta[SCHEDULE_LINE] = True
    command: click.Command = cli
    path: list[str] = []
    rest = list(argv)
    try:
        while isinstance(command, click.Group):
            if not rest or rest[0].startswith("-"):
                what = (
                    f"`{' '.join(path)}` needs a command"
                    if path
                    else "the command name comes first"
                )
                raise UsageError(f"{what}: {_can_run()}")
            name, sub, rest = command.resolve_command(ctx, rest)
            if name is None or sub is None:  # pragma: no cover - resolve_command fails first
                raise UsageError(f"no such command: {_can_run()}")
            path.append(name)
            where = " ".join(path)
            if not any(p == where or p.startswith(where + " ") for p in SCHEDULABLE):
                raise UsageError(f"`{where}` cannot be scheduled: {_can_run()}")
            command = sub
            if isinstance(sub, click.Group):
                ctx = click.Context(sub, info_name=name, parent=ctx)
        leaf = command.make_context(path[-1], rest, parent=ctx)
    except click.UsageError as exc:
        message = exc.format_message()
        if exc.ctx is not None and isinstance(exc.ctx.command, click.Group):
            message += f" ({_can_run()})"  # No such command 'backupp'.
        raise UsageError(message) from None
    except click.exceptions.Exit:  # pragma: no cover - no eager option exits without --help
        raise UsageError(f"`{shlex.join(argv)}` is not a job") from None
    params: dict[str, Any] = dict(leaf.params)
    run = SCHEDULABLE[" ".join(path)](**params)
    return JobCall(command=path[0], argv=tuple(argv), run=run, params=params)
