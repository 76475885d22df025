"""Per-invocation CLI state: global flags, and the context built lazily from the configuration."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from drtool.log import setup_logging

if TYPE_CHECKING:
    from drtool.config import Config
    from drtool.services.context import Context


@dataclass
class State:
    config_path: Path | None = None
    json: bool = False
    verbose: bool = False
    quiet: bool = False
    log_format: str = "text"
    _contexts: dict[str | None, Context] = field(default_factory=dict, repr=False)

    def apply_logging(self) -> None:
        level = logging.DEBUG if self.verbose else (logging.WARNING if self.quiet else logging.INFO)
        setup_logging(level, self.log_format)

    def config(self) -> Config:
        from drtool.config import load_config  # pydantic: not needed by --version or --help

        return load_config(self.config_path)

    def context(self, source: str | None = None) -> Context:
        """The context on the primary storage, or with ``source`` on that replica (`--from
        NAME`): only that storage is opened; an unknown NAME exits 2 before anything runs."""
        if source not in self._contexts:
            from drtool.cli.progress import progress_factory
            from drtool.services.context import build_context

            show = sys.stderr.isatty() and not self.quiet
            self._contexts[source] = build_context(
                self.config(), progress=progress_factory(show), source=source
            )
        return self._contexts[source]


def get_state() -> State:
    ctx = click.get_current_context()
    state = ctx.find_object(State)
    if state is None:  # pragma: no cover - the group always sets it
        state = ctx.ensure_object(State)
    return state


F = TypeVar("F", bound=Callable[..., Any])


# Set in ``click.Context.meta`` while a schedule file's command line is parsed.
SCHEDULE_LINE = "drtool.schedule_line"


def _set_flag(name: str) -> Callable[[click.Context, click.Parameter, bool], None]:
    def callback(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        if value and ctx.meta.get(SCHEDULE_LINE):
            raise click.BadParameter(
                "has no effect in a schedule: the scheduler logs each run itself "
                "(schedule run --log-format json)"
            )
        if value:
            state = ctx.find_object(State) or ctx.ensure_object(State)
            setattr(state, name, True)
            state.apply_logging()

    return callback


def from_option(func: F) -> F:
    """``--from NAME``: read the replica NAME instead of the primary storage (SPEC
    "Replication"); whatever the command records goes to that replica too."""
    return click.option(
        "--from",
        "source",
        metavar="NAME",
        default=None,
        help="Read the replica NAME (storage.replicas) instead of the primary storage, which "
        "is never touched: records this command writes (verification, drill, restore, run "
        "records) go to that replica.",
    )(func)


def common_options(func: F) -> F:
    """--json, -v and -q are accepted after the command name as well as before it."""
    func = click.option(
        "--json",
        "json_flag",
        is_flag=True,
        expose_value=False,
        callback=_set_flag("json"),
        help="Print the result as one JSON document on stdout.",
    )(func)
    func = click.option(
        "-v",
        "--verbose",
        "verbose_flag",
        is_flag=True,
        expose_value=False,
        callback=_set_flag("verbose"),
        help="Debug logs and tracebacks.",
    )(func)
    func = click.option(
        "-q",
        "--quiet",
        "quiet_flag",
        is_flag=True,
        expose_value=False,
        callback=_set_flag("quiet"),
        help="Warnings and errors only.",
    )(func)
    return func
