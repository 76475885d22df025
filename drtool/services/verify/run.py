"""The verify use case: which items, their checks (services/verify/checks.py), the result,
a verification record per item, and throughput in the log."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from drtool import __version__
from drtool.catalog.catalog import MANIFEST_NAME, backup_prefix, object_key, path_id
from drtool.catalog.manifest import Manifest
from drtool.catalog.records.stream_state import read_state
from drtool.catalog.records.verifications import Problem, VerificationRecord, write_verification
from drtool.crypto.keys import Identity
from drtool.errors import (
    EXIT_INTEGRITY,
    EXIT_OK,
    DrtoolError,
    IntegrityError,
    KeyMissingError,
    UsageError,
)
from drtool.ids import is_valid_id, new_id
from drtool.log import get_logger
from drtool.services.context import Context
from drtool.services.keys import configured_identities
from drtool.services.stream.chain import check_links, iter_chain
from drtool.services.verify.checks import TAMPERED_HINT, Checker, KeyedProblem, Meter

__all__ = ["KeyedProblem", "Problem", "VerifyItem", "VerifyResult", "verify"]

MB = 1_000_000

log = get_logger("verify")


@dataclass(frozen=True)
class VerifyItem:
    id: str
    kind: str
    ok: bool
    deep: bool
    problems: list[KeyedProblem]
    seconds: float
    bytes_read: int
    plain_bytes: int
    verified_at: datetime


@dataclass(frozen=True)
class VerifyResult:
    items: list[VerifyItem]
    ok: bool
    storage: str = ""  # where the problems' keys are: s3://bucket/prefix or a file:// directory

    def location(self, key: str) -> str:
        """The full address of a stored key, to look up in the bucket or directory."""
        return f"{self.storage.rstrip('/')}/{key}" if self.storage else key

    # What the CLI exits with and the job wrapper (services/jobs/job.py) records and reports.
    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.ok else EXIT_INTEGRITY

    def item_id(self) -> str | None:
        return self.items[0].id if len(self.items) == 1 else None

    def stats(self) -> dict[str, float]:
        failed = sum(1 for item in self.items if not item.ok)
        return {"items_verified": len(self.items), "items_failed": failed}

    def summary(self) -> str:
        failed = [item for item in self.items if not item.ok]
        if not failed:
            return f"{len(self.items)} item(s) verified ok"
        first = failed[0]
        text = f"{len(failed)} of {len(self.items)} item(s) failed verification: "
        text += f"{first.kind} {first.id}"
        if first.problems:
            problem = first.problems[0]
            where = problem.object + (f" ({problem.key})" if problem.key else "")
            text += f" ({where}: {problem.problem})"
        return text


@dataclass(frozen=True)
class _Unreadable:
    """A manifest that exists but cannot be trusted: the item is reported as failed."""

    id: str
    kind: str
    problem: str
    key: str | None = None  # the manifest's storage key, when known


def _kind_of(manifest_key: str) -> str:
    return "export" if manifest_key.startswith("exports/") else "backup"


def _identities(ctx: Context) -> list[Identity]:
    found = configured_identities(ctx.config, required=False)
    if not found:
        raise KeyMissingError(
            "verify --deep decrypts every object and needs the decryption identity: "
            "encryption.identity_file (or DRTOOL_ENCRYPTION__KEY) is not configured on this host",
            hint="set encryption.identity_file, or run `drtool verify` without --deep "
            "(it checks the stored bytes and needs no key)",
        )
    return found


def _targets(ctx: Context, ref: str | None, all_items: bool) -> list[Manifest | _Unreadable]:
    """What to verify, newest first. A manifest that exists but cannot be read or trusted is a
    failed item, not skipped, when it is among what was asked for (``--all``, or newer than
    ``latest``: a damaged newest backup must not hide behind the one before it)."""
    if ref is not None and ref != "latest":
        try:
            return [ctx.catalog.find(ref)]
        except IntegrityError as exc:
            return [_Unreadable(ref, "backup", exc.message, _backup_manifest_key(ref))]
    listing = ctx.catalog.listing(None if all_items else "backup")
    unreadable = [
        _Unreadable(path_id(key), _kind_of(key), msg, key) for key, msg in listing.unreadable
    ]
    targets: list[Manifest | _Unreadable] = []
    if all_items:
        targets = [*listing.items, *unreadable]
    elif listing.items:
        newest = listing.items[0]
        targets = [newest, *(u for u in unreadable if u.id > newest.id)]
    else:
        targets = list(unreadable)
    if not targets:
        raise UsageError(
            f"there is no complete backup in {ctx.storage.description}",
            hint="run `drtool backup` first",
        )
    targets.sort(key=lambda t: t.id, reverse=True)
    return targets


def _backup_manifest_key(item_id: str) -> str | None:
    try:
        return object_key(backup_prefix(item_id), MANIFEST_NAME)
    except DrtoolError:
        return None


def _record(ctx: Context, item: VerifyItem) -> None:
    """Store the run's record; failing to store it does not change what was found."""
    if not is_valid_id(item.id):
        log.warning("no verification record for %r: not a drtool id", item.id)
        return
    record = VerificationRecord(
        id=new_id(ctx.clock()),
        item_id=item.id,
        kind=item.kind,
        at=item.verified_at,
        deep=item.deep,
        ok=item.ok,
        problems=[problem.record() for problem in item.problems],
        seconds=item.seconds,
        bytes=item.bytes_read,
        plain_bytes=item.plain_bytes,
        tool_version=__version__,
    )
    try:
        write_verification(ctx.storage, record)
    except DrtoolError as exc:
        log.error("could not store the verification record of %s: %s", item.id, exc.message)


def _rate(n: int, seconds: float) -> float:
    return n / MB / max(seconds, 1e-6)


def _log_outcome(item: VerifyItem) -> None:
    outcome = "ok" if item.ok else f"FAILED ({len(item.problems)} problem(s))"
    rates = f"{item.bytes_read / MB:.1f} MB stored at {_rate(item.bytes_read, item.seconds):.1f}"
    rates += " MB/s"
    if item.deep:
        rates += f", {item.plain_bytes / MB:.1f} MB plain at "
        rates += f"{_rate(item.plain_bytes, item.seconds):.1f} MB/s"
    how = "deep" if item.deep else "stored bytes"
    log.info("%s %s %s (%s): %s, %.1fs", item.kind, item.id, outcome, how, rates, item.seconds)
    for p in item.problems:
        chunk = f" chunk {p.chunk}" if p.chunk is not None else ""
        key = f" ({p.key})" if p.key else ""
        log.warning("%s %s: %s%s%s: %s", item.kind, item.id, p.object, key, chunk, p.problem)


def _verify_one(ctx: Context, checker: Checker, target: Manifest | _Unreadable) -> VerifyItem:
    at = ctx.clock()
    started = time.monotonic()
    meter = Meter()
    if isinstance(target, _Unreadable):
        problems = [
            KeyedProblem(MANIFEST_NAME, None, target.problem, TAMPERED_HINT, key=target.key)
        ]
    else:
        problems = checker.item(target, meter)
    item = VerifyItem(
        id=target.id,
        kind=target.kind,
        ok=not problems,
        deep=checker.deep,
        problems=problems,
        seconds=round(time.monotonic() - started, 3),
        bytes_read=meter.stored,
        plain_bytes=meter.plain,
        verified_at=at,
    )
    _log_outcome(item)
    _record(ctx, item)
    return item


def _stream_items(ctx: Context, checker: Checker) -> list[VerifyItem]:
    """The change stream: each chain's continuity (a gap, a missing or a reordered segment is
    a failed item named by the chain), then every segment like any item."""
    slot = ctx.config.stream.slot
    items: list[VerifyItem] = []
    state = read_state(ctx.storage, slot)
    for generation, chain in iter_chain(ctx.storage, slot):
        problems: list[KeyedProblem] = []
        try:
            check_links(chain)
        except IntegrityError as exc:
            problems.append(KeyedProblem(MANIFEST_NAME, None, exc.message, exc.hint))
        if state is not None and state.generation == generation:
            newest = chain[-1].sequence
            if state.newest_sequence > newest:
                missing = state.newest_sequence - newest
                problems.append(
                    KeyedProblem(
                        MANIFEST_NAME,
                        None,
                        f"the newest {missing} segment(s) are missing: the stream stored "
                        f"#{state.newest_sequence}, storage ends at #{newest}",
                        TAMPERED_HINT,
                    )
                )
        item = VerifyItem(
            id=generation,
            kind="stream",
            ok=not problems,
            deep=checker.deep,
            problems=problems,
            seconds=0.0,
            bytes_read=0,
            plain_bytes=0,
            verified_at=ctx.clock(),
        )
        _log_outcome(item)
        items.append(item)
        items += [_verify_one(ctx, checker, seg) for seg in chain]
    return items


def verify(
    ctx: Context,
    ref: str | None = None,
    *,
    all_items: bool = False,
    deep: bool = False,
    stream: bool = False,
) -> VerifyResult:
    """Verify one item (an id, or ``latest``, the default) or ``--all``; every problem of every
    item is collected. Unknown ids and an empty catalog are usage errors (exit 2); a missing
    identity for ``deep`` too, before anything is read. ``stream`` (and ``--all``): the
    change stream's chains and segments too (``stream`` alone: only them)."""
    if all_items and ref is not None:
        raise UsageError("give an ID or --all, not both")
    if stream and ref is not None:
        raise UsageError("give an ID or --stream, not both")
    checker = Checker(ctx.storage, _identities(ctx) if deep else [], ctx.progress)
    items: list[VerifyItem] = []
    if not stream or all_items:
        items = [_verify_one(ctx, checker, target) for target in _targets(ctx, ref, all_items)]
    if stream or all_items:
        found = _stream_items(ctx, checker)
        if stream and not found and not all_items:
            raise UsageError(
                f"no change stream segments of slot {ctx.config.stream.slot} in "
                f"{ctx.storage.description}",
                hint="`drtool stream run` stores them",
            )
        items += found
    return VerifyResult(items, all(item.ok for item in items), ctx.storage.description)
