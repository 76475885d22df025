"""The ``drtool`` entry point: global options, command registration, the one error handler."""

from __future__ import annotations

import itertools
import sys
import traceback
from pathlib import Path

import click

from drtool import __version__
from drtool.cli import render
from drtool.cli.commands import COMMANDS
from drtool.cli.commands_bundle import bundle_group
from drtool.cli.commands_replicate import replicate_cmd
from drtool.cli.commands_stream import stream_group
from drtool.cli.state import State
from drtool.errors import EXIT_FAILED, EXIT_USAGE, DrtoolError, UsageError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
@click.version_option(__version__, prog_name="drtool")
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


for command in COMMANDS:
    cli.add_command(command)
cli.add_command(replicate_cmd)
cli.add_command(bundle_group)
cli.add_command(stream_group)


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
            render.render_error(UsageError(exc.format_message()), True)
        else:
            exc.show()
        code = EXIT_USAGE if exc.exit_code == 2 else exc.exit_code
    except click.exceptions.Abort:
        sys.stderr.write("drtool: interrupted\n")
        code = 130
    except DrtoolError as exc:
        if verbose:
            render.render_traceback(traceback.format_exc(), json_logs)
        render.render_error(exc, as_json, json_logs)
        code = exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("drtool: interrupted; nothing partial was committed\n")
        code = 130
    except Exception as exc:
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
