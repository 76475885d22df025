"""One replication run per replica: plan what it lacks, copy the items in parallel
(``jobs`` at a time), report each item that failed, and the replica's totals."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from drtool.errors import (
    EXIT_FAILED,
    EXIT_INTEGRITY,
    EXIT_OK,
    DrtoolError,
    IntegrityError,
    OperationError,
    RefusedError,
    UsageError,
)
from drtool.log import get_logger
from drtool.pipeline.stages import ProgressFn
from drtool.services.context import Context
from drtool.services.lease import Lease, lease_key
from drtool.services.replicate.item import ItemCopied, ItemCopier
from drtool.services.replicate.plan import ItemToCopy, plan_replica
from drtool.storage.copy import MULTIPART_COPY_THRESHOLD_BYTES, server_side_possible

DEFAULT_JOBS = 2
log = get_logger("replicate")


@dataclass(frozen=True)
class Failure:
    id: str
    error: str
    kind: str = ""
    exit_code: int = EXIT_FAILED


@dataclass(frozen=True)
class ReplicaResult:
    """One replica's run (SPEC "Results": ``replicas`` entries). ``verified``: items that are
    now complete on the replica and were verified there in this run; ``error``: why the
    replica could not be worked on at all (unreachable, denied)."""

    name: str
    url: str
    copied: list[str] = field(default_factory=list)
    verified: int = 0
    failed: list[Failure] = field(default_factory=list)
    bytes: int = 0
    seconds: float = 0.0
    server_side: bool = False
    not_copied: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    error_exit_code: int | None = None

    @property
    def exit_code(self) -> int:
        codes = [f.exit_code for f in self.failed]
        if self.error_exit_code is not None:
            codes.append(self.error_exit_code)
        if EXIT_INTEGRITY in codes:
            return EXIT_INTEGRITY
        return max(codes, default=EXIT_OK)

    def item_id(self) -> str | None:
        return self.copied[-1] if self.copied else None

    def summary(self) -> str:
        text = f"replica {self.name}: {len(self.copied)} item(s) copied, {self.bytes} bytes"
        if self.failed:
            text += f", {len(self.failed)} failed ({self.failed[0].id}: {self.failed[0].error})"
        if self.error:
            text += f"; {self.error}"
        return text

    def stats(self) -> dict[str, float]:
        return {
            "items_copied": float(len(self.copied)),
            "items_failed": float(len(self.failed)),
            "bytes_copied": float(self.bytes),
        }


@dataclass(frozen=True)
class ReplicateResult:
    replicas: list[ReplicaResult]

    @property
    def exit_code(self) -> int:
        codes = [r.exit_code for r in self.replicas]
        return EXIT_INTEGRITY if EXIT_INTEGRITY in codes else max(codes, default=EXIT_OK)

    def item_id(self) -> str | None:
        return None

    def summary(self) -> str:
        return "; ".join(r.summary() for r in self.replicas)


def replica_names(ctx: Context, to: str | None) -> list[str]:
    """``--to NAME`` (checked), or every configured replica; none configured is exit 2."""
    if to is not None:
        return [ctx.config.storage.replica(to).name]
    names = [r.name for r in ctx.config.storage.replicas]
    if not names:
        raise UsageError(
            "no replica is configured (storage.replicas)",
            hint="add one under storage.replicas (docs/replication.md)",
        )
    return names


def _locked(progress: ProgressFn) -> ProgressFn:
    lock = threading.Lock()

    def update(n: int) -> None:
        with lock:
            progress(n)

    return update


def replicate_to(
    ctx: Context,
    name: str,
    *,
    jobs: int = DEFAULT_JOBS,
    multipart_threshold: int = MULTIPART_COPY_THRESHOLD_BYTES,
) -> ReplicaResult:
    """Copy to replica ``name`` every complete item it lacks. An unreachable replica is a
    result with ``error`` (exit 1), not an exception: the other replicas still run."""
    if jobs < 1:
        raise UsageError(f"--jobs must be at least 1, not {jobs}")
    started = time.monotonic()
    location = ctx.config.storage.replica(name)
    # Two runs to one replica never interleave (SPEC "Concurrency"), by hand or scheduled, from
    # one container or two: a lease in the primary storage, every write conditional.
    lease = Lease(ctx, f"replicate.{name}")
    try:
        holder = lease.acquire()
        if holder is not None:
            raise RefusedError(
                f"replica {name}: another replicate run holds the lease "
                f"{lease_key(lease.job)} ({holder})",
                hint="wait for it to finish (a killed run's lease is taken over at once on "
                "its machine, elsewhere it expires within 5 minutes)",
            )
    except DrtoolError as exc:
        return _not_run(name, location.url, started, exc)
    try:
        return _replicate_held(ctx, name, lease, jobs, multipart_threshold, started)
    finally:
        lease.release()


def _not_run(name: str, url: str, started: float, exc: DrtoolError) -> ReplicaResult:
    """A replica this run could not work on (unreachable, or another run holds it): a result
    with ``error`` and its exit code, not an exception, so the other replicas still run."""
    log.error("replica %s: %s", name, exc.message)
    return ReplicaResult(
        name,
        url,
        seconds=time.monotonic() - started,
        error=exc.message,
        error_exit_code=exc.exit_code,
    )


def _replicate_held(
    ctx: Context, name: str, lease: Lease, jobs: int, multipart_threshold: int, started: float
) -> ReplicaResult:
    location = ctx.config.storage.replica(name)
    try:
        replica = ctx.replica_storage(name)
        plan = plan_replica(
            ctx.storage, replica, ctx.config.retention, ctx.clock(), ctx.config.stream.slot
        )
    except DrtoolError as exc:
        if isinstance(exc, UsageError):
            raise
        return _not_run(name, location.url, started, exc)

    def check_abort() -> None:
        ctx.check_abort()
        if lease.lost.is_set():
            raise OperationError(
                f"replica {name}: lease {lease_key(lease.job)} lost: another run may be "
                "copying; stopped"
            )

    total = sum(item.size for item in plan.items)
    log.info("replica %s: %d item(s) to copy (%d bytes of data)", name, len(plan.items), total)
    copier = ItemCopier(
        ctx.storage,
        replica,
        replica_name=name,
        progress=_locked(ctx.progress(f"replicate {name}", total or None)),
        check_abort=check_abort,
        multipart_threshold=multipart_threshold,
    )
    done, failed = _copy_all(copier, plan.items, jobs)
    return ReplicaResult(
        name,
        location.url,
        copied=[d.item.id for d in done if d.item.kind != "void"],
        verified=len(done),
        failed=failed,
        bytes=sum(d.bytes for d in done),
        seconds=round(time.monotonic() - started, 3),
        server_side=server_side_possible(ctx.storage, replica),
        not_copied=plan.not_copied,
    )


def _copy_all(
    copier: ItemCopier, items: list[ItemToCopy], jobs: int
) -> tuple[list[ItemCopied], list[Failure]]:
    def one(item: ItemToCopy) -> ItemCopied | Failure:
        try:
            return copier.copy(item)
        except DrtoolError as exc:
            level = log.error if isinstance(exc, IntegrityError) else log.warning
            level("replica %s: %s %s not copied: %s", copier.name, item.kind, item.id, exc.message)
            return Failure(item.id, exc.message, item.kind, exc.exit_code)

    with ThreadPoolExecutor(jobs, thread_name_prefix="drtool-replicate") as pool:
        outcomes = list(pool.map(one, items))
    done = [o for o in outcomes if isinstance(o, ItemCopied)]
    failed = [o for o in outcomes if isinstance(o, Failure)]
    return done, failed


def replicate_each(names: list[str], run_one: Callable[[str], ReplicaResult]) -> ReplicateResult:
    return ReplicateResult([run_one(name) for name in names])
