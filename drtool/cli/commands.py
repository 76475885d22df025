"""Click commands for the foundation: init, keys, backup, list, show, demo. Thin shells
(registered by name in drtool.cli.main)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from drtool.cli import render
from drtool.cli.state import common_options, from_option, get_state
from drtool.services import catalog_view, keys, setup
from drtool.services.backup import BackupResult
from drtool.services.context import Context
from drtool.services.jobs.calls import backup_job

KINDS = click.Choice(["backup", "export", "archive", "drill"])


@click.command("init")
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path),
    default=Path("."),
    show_default=True,
    help="Where to write drtool.yaml and the identity file.",
)
@common_options
def init_cmd(directory: Path) -> None:
    """Write a commented starter drtool.yaml and a new age identity; print next steps."""
    render.init_result(setup.init_project(directory), get_state().json)


@click.group("keys")
def keys_group() -> None:
    """Age X25519 keys: generate an identity, show its public recipient."""


@keys_group.command("generate")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="Identity file to create (mode 0600, age's own format).",
)
@common_options
def keys_generate(out: Path) -> None:
    """New age X25519 identity; prints its public recipient."""
    render.key_result(keys.generate_key(out), get_state().json)


@keys_group.command("recipient")
@click.option(
    "--identity",
    type=click.Path(path_type=Path),
    required=True,
    help="An age identity file (AGE-SECRET-KEY-1...).",
)
@common_options
def keys_recipient(identity: Path) -> None:
    """Print the public recipient (age1...) of an identity."""
    render.key_result(keys.recipient_of(identity), get_state().json)


def backup_call(label: str | None, jobs: int | None = None) -> Callable[[Context], BackupResult]:
    """The call `backup` makes with its parsed options (also a schedule's `backup ...`)."""
    return lambda ctx: backup_job(ctx, label, jobs)


@click.command("backup")
@click.option("--label", default=None, help="Free text recorded in the manifest.")
@click.option(
    "--jobs",
    type=click.IntRange(min=1, max=64),
    default=None,
    help="Parallel workers (default backup.jobs, 1). 1 writes one custom-format pg_dump; "
    "N > 1 the parallel format: the schema from pg_dump and N COPY streams over one "
    "snapshot, one object per table part (docs/format.md).",
)
@common_options
def backup_cmd(label: str | None, jobs: int | None) -> int:
    """Full logical backup of the configured database; prints the new backup id last."""
    state = get_state()
    result = backup_call(label, jobs)(state.context())
    render.backup_result(result, state.json)
    return result.exit_code


@click.command("list")
@click.option("--kind", type=KINDS, default=None, help="Only items of this kind.")
@click.option("--limit", type=int, default=None, help="At most N items.")
@from_option
@common_options
def list_cmd(kind: str | None, limit: int | None, source: str | None) -> None:
    """The catalog of complete items, newest first."""
    state = get_state()
    items = catalog_view.list_items(state.context(source), kind, limit)  # type: ignore[arg-type]
    render.list_result(items, state.json)


@click.command("show")
@click.argument("item_id", metavar="ID")
@from_option
@common_options
def show_cmd(item_id: str, source: str | None) -> None:
    """One item's manifest (ID or `latest`)."""
    state = get_state()
    render.show_result(catalog_view.show_item(state.context(source), item_id), state.json)


@click.command("demo")
@click.option("--keep", is_flag=True, help="Keep the demo directory (config, key, storage).")
@click.option(
    "--scale",
    type=float,
    default=0.2,
    show_default=True,
    help="Sample database size factor (1.0 is about 100 MB).",
)
@common_options
def demo_cmd(keep: bool, scale: float) -> None:
    """Self-contained tour: throwaway PostgreSQL with sample OmniCRM data, local storage,
    backup -> list -> verify --deep -> rehearse -> status, with the measured RTO and RPO."""
    from drtool.services.demo import run_demo

    state = get_state()
    render.demo_result(run_demo(keep=keep, scale=scale, progress_shown=not state.quiet), state.json)
