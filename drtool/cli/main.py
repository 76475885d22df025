"""The ``drtool`` entry point: global options, command registration, the one error handler.

Commands are loaded on first use (``LazyGroup``), so ``drtool --version`` or ``drtool status``
does not import what ``backup`` or ``archive`` need (psycopg, boto3, cryptography, ...)."""

from __future__ import annotations

import importlib
import itertools
import sys
import traceback
from pathlib import Path

import click

from drtool.cli.state import State
from drtool.errors import EXIT_FAILED, EXIT_USAGE, DrtoolError, UsageError

# Command name -> "module:attribute" of its click command; imported when first resolved.
LAZY_COMMANDS: dict[str, str] = {
    "init": "drtool.cli.commands:init_cmd",
    "keys": "drtool.cli.commands:keys_group",
    "backup": "drtool.cli.commands:backup_cmd",
    "list": "drtool.cli.commands:list_cmd",
    "show": "drtool.cli.commands:show_cmd",
    "demo": "drtool.cli.commands:demo_cmd",
    "verify": "drtool.cli.commands_verify:verify_cmd",
    "restore": "drtool.cli.commands_restore:restore_cmd",
    "status": "drtool.cli.commands_status:status_cmd",
    "rehearse": "drtool.cli.commands_rehearse:rehearse_cmd",
    "prune": "drtool.cli.commands_prune:prune_cmd",
    "schedule": "drtool.cli.commands_schedule:schedule_group",
    "export-user": "drtool.cli.commands_export:export_user_cmd",
    "export-users": "drtool.cli.commands_export:export_users_cmd",
    "restore-user": "drtool.cli.commands_export:restore_user_cmd",
    "archive": "drtool.cli.commands_archive:archive_group",
    "audit": "drtool.cli.commands_audit:audit_cmd",
    "replicate": "drtool.cli.commands_replicate:replicate_cmd",
    "bundle": "drtool.cli.commands_bundle:bundle_group",
    "report": "drtool.cli.commands_report:report_cmd",
    "stream": "drtool.cli.commands_stream:stream_group",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported when resolved (listing them for ``--help``
    imports them all, for their short help)."""

    def __init__(self, *args: object, lazy: dict[str, str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy = dict(lazy)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            module, _, attr = self.lazy[cmd_name].partition(":")
            command = getattr(importlib.import_module(module), attr)
            assert isinstance(command, click.Command) and command.name == cmd_name
            self.add_command(command)
        return super().get_command(ctx, cmd_name)


def _show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """click's ``version_option`` output; the version is read only when asked for."""
    if not value or ctx.resilient_parsing:
        return
    from drtool import __version__

    click.echo(f"drtool, version {__version__}", color=ctx.color)
    ctx.exit()


@click.group(
    cls=LazyGroup,
    lazy=LAZY_COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Configuration file (default: $DRTOOL_CONFIG, then ./drtool.yaml).",
)
@click.option("--json", "json_out", is_flag=True, help="Print the result as one JSON document.")
@click.option("-v", "--verbose", is_flag=True, help="Debug logs and tracebacks.")
@click.option("-q", "--quiet", is_flag=True, help="Warnings and errors only.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log lines on stderr as text or JSON objects.",
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_show_version,
    help="Show the version and exit.",
)
@click.pass_context
def cli(
    ctx: click.Context,
    config_path: Path | None,
    json_out: bool,
    verbose: bool,
    quiet: bool,
    log_format: str,
) -> None:
    """drtool: encrypted backups, verification, restore and DR drills for PostgreSQL."""
    state = ctx.ensure_object(State)
    state.config_path = config_path
    state.json = state.json or json_out
    state.verbose = state.verbose or verbose
    state.quiet = state.quiet or quiet
    state.log_format = log_format
    state.apply_logging()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    as_json = "--json" in args
    verbose = "-v" in args or "--verbose" in args
    json_logs = any(a == "--log-format=json" for a in args) or any(
        a == "--log-format" and b == "json" for a, b in itertools.pairwise(args)
    )
    try:
        result = cli.main(args=args, prog_name="drtool", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.ClickException as exc:
        if as_json:
            from drtool.cli import render  # here, not at the top: it imports every manifest

            render.render_error(UsageError(exc.format_message()), True)
        else:
            exc.show()
        code = EXIT_USAGE if exc.exit_code == 2 else exc.exit_code
    except click.exceptions.Abort:
        sys.stderr.write("drtool: interrupted\n")
        code = 130
    except DrtoolError as exc:
        from drtool.cli import render

        if verbose:
            render.render_traceback(traceback.format_exc(), json_logs)
        render.render_error(exc, as_json, json_logs)
        code = exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("drtool: interrupted; nothing partial was committed\n")
        code = 130
    except Exception as exc:
        from drtool.cli import render

        if verbose:
            render.render_traceback(traceback.format_exc(), json_logs)
        err = DrtoolError(
            f"unexpected error: {type(exc).__name__}: {exc}",
            hint="run again with -v for the traceback, and report it",
        )
        err.exit_code = EXIT_FAILED
        render.render_error(err, as_json, json_logs)
        code = EXIT_FAILED
    sys.exit(code)
