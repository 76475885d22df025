"""The ``bundle`` commands: a thin shell over services.bundle."""

from __future__ import annotations

from pathlib import Path

import click

from drtool.cli.render_bundle import bundle_restore_result, bundle_show_result
from drtool.cli.state import common_options, from_option, get_state
from drtool.services.bundle.run import show_bundle
from drtool.services.jobs.audited import bundle_restore_audited


@click.group("bundle")
def bundle_group() -> None:
    """The configuration & secrets bundle stored with each backup (docs/bundle.md)."""


@bundle_group.command("show")
@click.argument("ref", metavar="ID|latest")
@from_option
@common_options
def bundle_show(ref: str, source: str | None) -> None:
    """Names, sizes, fingerprints and capture time of backup ID's bundle (no key needed;
    never a value)."""
    state = get_state()
    bundle_show_result(show_bundle(state.context(source), ref), state.json)


@bundle_group.command("restore")
@click.argument("ref", metavar="ID|latest")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="A new (or empty) directory to create, mode 0700: each file by its name in the "
    "bundle and an `env` file of NAME='value' lines, all 0600. A non-empty one is refused "
    "(exit 5); nothing partial is ever left.",
)
@from_option
@common_options
def bundle_restore(ref: str, out: Path, source: str | None) -> None:
    """Decrypt backup ID's bundle into --out, checked against the manifest's names, sizes and
    fingerprints (exit 3 on any difference). Needs encryption.identity_file holding a key
    among bundle.recipients."""
    state = get_state()
    bundle_restore_result(bundle_restore_audited(state.context(source), ref, out), state.json)
