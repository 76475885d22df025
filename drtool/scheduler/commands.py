"""The drtool commands a schedule file may run, their arguments parsed without the CLI, and
each one's call of the same service function the CLI command makes (through ``run_job``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from drtool.config import parse_duration
from drtool.errors import UsageError
from drtool.services.archive import ArchiveRequest
from drtool.services.context import Context
from drtool.services.export_users import check_selection
from drtool.services.job_calls import (
    archive_job,
    backup_job,
    export_users_job,
    prune_job,
    rehearse_job,
    verify_job,
)
from drtool.services.jobs import Outcome
from drtool.services.rehearse import RehearseRequest
from drtool.services.status import check_status


@dataclass(frozen=True)
class CommandSpec:
    flags: frozenset[str] = frozenset()
    options: frozenset[str] = frozenset()
    max_positionals: int = 0


SPECS: dict[str, CommandSpec] = {
    "backup": CommandSpec(options=frozenset({"--label"})),
    "verify": CommandSpec(flags=frozenset({"--all", "--deep"}), max_positionals=1),
    "rehearse": CommandSpec(
        flags=frozenset({"--keep"}), options=frozenset({"--scratch", "--report"}), max_positionals=1
    ),
    "prune": CommandSpec(flags=frozenset({"--dry-run"})),
    "status": CommandSpec(),
    "export-users": CommandSpec(flags=frozenset({"--all"}), options=frozenset({"--changed-since"})),
    "archive": CommandSpec(
        flags=frozenset({"--dry-run", "--vacuum"}),
        options=frozenset({"--policy", "--batch-size", "--max-rows", "--sleep", "--max-duration"}),
        max_positionals=1,
    ),
}


@dataclass(frozen=True)
class Invocation:
    """One parsed command line: the command, its flags, options and positional arguments."""

    command: str
    argv: tuple[str, ...]
    flags: frozenset[str] = frozenset()
    options: tuple[tuple[str, str], ...] = ()
    positionals: tuple[str, ...] = ()

    def option(self, name: str) -> str | None:
        return dict(self.options).get(name)


@dataclass(frozen=True)
class RunOutcome:
    exit_code: int
    item_id: str | None = None
    summary: str | None = None


def _outcome(result: Outcome) -> RunOutcome:
    return RunOutcome(result.exit_code, result.item_id(), result.summary())


def parse_command(argv: list[str]) -> Invocation:
    """ValueError naming the unknown command or the bad argument."""
    command, rest = argv[0], argv[1:]
    spec = SPECS.get(command)
    if spec is None:
        raise ValueError(
            f"unknown command {command!r}: a schedule can run {', '.join(sorted(SPECS))}"
        )
    flags: set[str] = set()
    options: dict[str, str] = {}
    positionals: list[str] = []
    tokens = iter(rest)
    for token in tokens:
        name, eq, value = token.partition("=")
        if token.startswith("-") and name in spec.options:
            if not eq:
                value = next(tokens, "")
                if not value or value.startswith("-"):
                    raise ValueError(f"{command}: option {name} needs a value")
            options[name] = value
        elif token.startswith("-") and token in spec.flags:
            flags.add(token)
        elif token.startswith("-"):
            known = sorted(spec.flags | spec.options)
            raise ValueError(
                f"{command}: unknown option {name!r} (accepted: {', '.join(known) or 'none'})"
            )
        else:
            positionals.append(token)
    if len(positionals) > spec.max_positionals:
        raise ValueError(f"{command}: unexpected argument {positionals[spec.max_positionals]!r}")
    if command == "export-users":
        try:
            check_selection("--all" in flags, options.get("--changed-since"))
        except UsageError as exc:
            raise ValueError(exc.message) from None
    if command == "archive":
        _check_archive(positionals, options)
    return Invocation(
        command, tuple(argv), frozenset(flags), tuple(sorted(options.items())), tuple(positionals)
    )


def _check_archive(positionals: list[str], options: dict[str, str]) -> None:
    if positionals != ["run"]:
        raise ValueError("archive: a schedule can run `archive run [options]` only")
    for name in ("--batch-size", "--max-rows"):
        if name in options and not (options[name].isdigit() and int(options[name]) >= 1):
            raise ValueError(f"archive: {name} needs a positive integer")
    for name in ("--sleep", "--max-duration"):
        if name in options:
            try:
                parse_duration(options[name])
            except ValueError as exc:
                raise ValueError(f"archive: {name}: {exc}") from None


def _int_option(inv: Invocation, name: str) -> int | None:
    value = inv.option(name)
    return int(value) if value is not None else None


def _archive(ctx: Context, inv: Invocation) -> RunOutcome:
    sleep, max_duration = inv.option("--sleep"), inv.option("--max-duration")
    request = ArchiveRequest(
        policy=inv.option("--policy"),
        dry_run="--dry-run" in inv.flags,
        batch_size=_int_option(inv, "--batch-size"),
        max_rows=_int_option(inv, "--max-rows"),
        sleep_seconds=parse_duration(sleep).total_seconds() if sleep else 0.0,
        max_duration=parse_duration(max_duration) if max_duration else None,
        vacuum="--vacuum" in inv.flags,
    )
    return _outcome(archive_job(ctx, request))


def _backup(ctx: Context, inv: Invocation) -> RunOutcome:
    label = inv.option("--label")
    return _outcome(backup_job(ctx, label))


def _verify(ctx: Context, inv: Invocation) -> RunOutcome:
    ref = inv.positionals[0] if inv.positionals else None
    return _outcome(
        verify_job(ctx, ref, all_items="--all" in inv.flags, deep="--deep" in inv.flags)
    )


def _rehearse(ctx: Context, inv: Invocation) -> RunOutcome:
    report = inv.option("--report")
    request = RehearseRequest(
        ref=inv.positionals[0] if inv.positionals else "latest",
        scratch=inv.option("--scratch"),
        report=Path(report) if report else None,
        keep="--keep" in inv.flags,
    )
    return _outcome(rehearse_job(ctx, request))


def _status(ctx: Context, _inv: Invocation) -> RunOutcome:
    return _outcome(check_status(ctx))


def _prune(ctx: Context, inv: Invocation) -> RunOutcome:
    dry_run = "--dry-run" in inv.flags
    return _outcome(prune_job(ctx, dry_run=dry_run))


def _export_users(ctx: Context, inv: Invocation) -> RunOutcome:
    result = export_users_job(
        ctx, all_users="--all" in inv.flags, changed_since=inv.option("--changed-since")
    )
    return _outcome(result)


Runner = Callable[[Context, Invocation], RunOutcome]

RUNNERS: dict[str, Runner] = {
    "backup": _backup,
    "verify": _verify,
    "rehearse": _rehearse,
    "status": _status,
    "prune": _prune,
    "export-users": _export_users,
    "archive": _archive,
}


def run_invocation(ctx: Context, inv: Invocation) -> RunOutcome:
    return RUNNERS[inv.command](ctx, inv)
