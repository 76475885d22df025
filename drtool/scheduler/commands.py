"""The drtool commands a schedule file may run, their arguments parsed without the CLI, and
each one's call of the same service function the CLI command makes (through ``run_job``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from drtool.errors import EXIT_INTEGRITY, EXIT_OBJECTIVE, EXIT_OK
from drtool.services.backup import BackupResult, run_backup
from drtool.services.context import Context
from drtool.services.jobs import run_job
from drtool.services.prune import PruneResult, run_prune
from drtool.services.rehearse import RehearseRequest, RehearseResult, rehearse
from drtool.services.status import check_status
from drtool.services.verify import VerifyResult, verify


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
    return Invocation(
        command, tuple(argv), frozenset(flags), tuple(sorted(options.items())), tuple(positionals)
    )


def _backup(ctx: Context, inv: Invocation) -> RunOutcome:
    label = inv.option("--label")
    result = run_job(
        ctx, "backup", lambda: run_backup(ctx, label=label), item_id_of=BackupResult.item_id
    )
    return RunOutcome(EXIT_OK, result.item_id())


def _verify(ctx: Context, inv: Invocation) -> RunOutcome:
    ref = inv.positionals[0] if inv.positionals else None
    result = run_job(
        ctx,
        "verify",
        lambda: verify(ctx, ref, all_items="--all" in inv.flags, deep="--deep" in inv.flags),
        item_id_of=VerifyResult.single_id,
        failed_of=VerifyResult.failed,
        failed_exit_code=EXIT_INTEGRITY,
        stats_of=VerifyResult.stats,
        summary_of=VerifyResult.summary,
    )
    return RunOutcome(
        EXIT_OK if result.ok else EXIT_INTEGRITY, result.single_id(), result.summary()
    )


def _rehearse(ctx: Context, inv: Invocation) -> RunOutcome:
    report = inv.option("--report")
    request = RehearseRequest(
        ref=inv.positionals[0] if inv.positionals else "latest",
        scratch=inv.option("--scratch"),
        report=Path(report) if report else None,
        keep="--keep" in inv.flags,
    )
    result = run_job(
        ctx,
        "rehearse",
        lambda: rehearse(ctx, request),
        item_id_of=RehearseResult.item_id,
        failed_of=RehearseResult.failed,
        failed_exit_code=EXIT_OBJECTIVE,
        stats_of=RehearseResult.stats,
        summary_of=RehearseResult.summary,
        events=("drill",),
    )
    return RunOutcome(
        EXIT_OK if result.passed else EXIT_OBJECTIVE, result.item_id(), result.summary()
    )


def _status(ctx: Context, _inv: Invocation) -> RunOutcome:
    result = check_status(ctx)
    return RunOutcome(EXIT_OK if result.ok else EXIT_OBJECTIVE, None, "; ".join(result.breaches))


def _prune(ctx: Context, inv: Invocation) -> RunOutcome:
    dry_run = "--dry-run" in inv.flags
    run_job(ctx, "prune", lambda: run_prune(ctx, dry_run=dry_run), stats_of=PruneResult.stats)
    return RunOutcome(EXIT_OK)


Runner = Callable[[Context, Invocation], RunOutcome]

RUNNERS: dict[str, Runner] = {
    "backup": _backup,
    "verify": _verify,
    "rehearse": _rehearse,
    "status": _status,
    "prune": _prune,
}


def run_invocation(ctx: Context, inv: Invocation) -> RunOutcome:
    return RUNNERS[inv.command](ctx, inv)
