"""The job wrapper every command that does work runs through: it times the job, records the
outcome in ``runs/<job>.json``, refreshes the metrics textfile and sends the notifications.
None of that can fail or block the job beyond the notification budget."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from drtool.catalog.records.runs import check_job, record_run
from drtool.errors import EXIT_FAILED, EXIT_OK, DrtoolError, RefusedError, UsageError
from drtool.log import get_logger
from drtool.services.context import Context
from drtool.services.jobs.health import StatusResult, gather_status
from drtool.services.jobs.metrics import publish_metrics
from drtool.services.jobs.notify import Notice, notify_all


class Outcome(Protocol):
    """What a job's result says about the run, in one place per result type: its exit code
    (SPEC "Exit codes"; 0 for a success), the item it produced or checked, and one line for
    notifications and logs. The CLI exits with it; run records and the scheduler record it."""

    @property
    def exit_code(self) -> int: ...

    def item_id(self) -> str | None: ...

    def summary(self) -> str | None: ...


T = TypeVar("T")
R = TypeVar("R", bound=Outcome)

# After these jobs, breached objectives are notified (event `breach`); `status` never notifies.
BREACH_CHECK_JOBS = frozenset({"backup", "verify", "rehearse"})

log = get_logger("jobs")


@dataclass(frozen=True)
class JobOutcome:
    """How one run ended, as recorded and reported."""

    job: str
    ok: bool
    seconds: float
    item_id: str | None = None
    error: str | None = None
    exit_code: int | None = None
    summary: str | None = None
    stats: Mapping[str, float] = field(default_factory=dict)


def _safely(hook: Callable[[T], Any] | None, result: T, default: Any) -> Any:
    """A reporting hook that fails must not turn a finished job into a failed one."""
    if hook is None:
        return default
    try:
        return hook(result)
    except Exception as exc:
        log.warning("could not summarize the job's result: %s: %s", type(exc).__name__, exc)
        return default


def run_job(
    ctx: Context,
    job: str,
    fn: Callable[[], R],
    *,
    stats_of: Callable[[R], Mapping[str, float]] | None = None,
    events: Sequence[str] = (),
) -> R:
    """Run ``fn`` as job ``job`` and return its result (a DrtoolError it raises is re-raised).

    A UsageError (exit 2) or RefusedError (exit 5) is re-raised without recording, measuring
    or notifying anything: the job did not run.

    The result's ``exit_code`` decides the outcome: non-zero (e.g. verify found problems) is
    recorded as a failure with that code, notified as `failure`, and the result still
    returned. Its ``item_id()`` and ``summary()`` are recorded and reported.

    - ``stats_of``: numbers about the run, kept in the record (verify: items_verified/failed);
    - ``events``: extra events sent whatever the outcome, also when ``fn`` raised (rehearse:
      ``("drill",)``).
    """
    check_job(job)
    started = time.monotonic()
    try:
        result = fn()
    except RefusedError as exc:
        # Another run holds the job's lock: nothing ran, so nothing failed. Recording it as a
        # failure would turn /healthz and `status` red while the other run works normally.
        log.info("%s skipped: %s", job, exc.message)
        raise
    except UsageError:
        # Exit 2 changes nothing (SPEC "Exit codes"): an unknown id, a missing identity or an
        # invalid option is the caller's mistake, not a run. No record, no metrics, no notice.
        raise
    except Exception as exc:
        if isinstance(exc, DrtoolError):
            error, code = exc.message, exc.exit_code
        else:
            error, code = f"unexpected error: {type(exc).__name__}: {exc}", EXIT_FAILED
        seconds = time.monotonic() - started
        # Extra events go out on errors too: a drill that ended in an integrity failure is
        # still a completed drill for whoever subscribed to `drill`.
        _report(ctx, JobOutcome(job, False, seconds, error=error, exit_code=code), events)
        raise
    seconds = time.monotonic() - started
    code = result.exit_code
    summary = _safely(lambda r: r.summary(), result, None)
    outcome = JobOutcome(
        job=job,
        ok=code == EXIT_OK,
        seconds=seconds,
        item_id=_safely(lambda r: r.item_id(), result, None),
        error=(summary or f"{job} finished with a failed result") if code != EXIT_OK else None,
        exit_code=code if code != EXIT_OK else None,
        summary=summary,
        stats=_safely(stats_of, result, {}),
    )
    _report(ctx, outcome, events)
    return result


def record_abandoned_run(ctx: Context, job: str, seconds: float, error: str) -> None:
    """Record, measure and notify a run that never returned (a scheduled run that ignored its
    abort and was left behind when the scheduler exited): a failure with exit 1."""
    check_job(job)
    _report(ctx, JobOutcome(job, False, seconds, error=error, exit_code=EXIT_FAILED), ())


def _wants_health(ctx: Context, job: str) -> bool:
    if ctx.source is not None:
        # A `--from NAME` run reads a replica and must not touch the primary (it may be the
        # storage that was lost): the objectives, metrics and breach notices are the
        # primary's, judged by `status`, not by a replica's state.
        return False
    cfg = ctx.config
    breach_notice = (
        job in BREACH_CHECK_JOBS
        and cfg.notifications.webhook_url is not None
        and "breach" in cfg.notifications.on
    )
    return breach_notice or cfg.metrics.textfile is not None


def _report(ctx: Context, outcome: JobOutcome, events: Sequence[str]) -> None:
    """Record, then metrics (which read the record), then notifications; warnings only."""
    try:
        record_run(
            ctx.storage,
            outcome.job,
            at=ctx.clock(),
            ok=outcome.ok,
            seconds=outcome.seconds,
            item_id=outcome.item_id,
            error=outcome.error,
            exit_code=outcome.exit_code,
            stats=outcome.stats,
        )
    except Exception as exc:
        log.warning("could not record the %s run in storage: %s", outcome.job, _why(exc))
    health: StatusResult | None = None
    if _wants_health(ctx, outcome.job):
        try:
            health = gather_status(ctx)
        except Exception as exc:
            log.warning("could not check the objectives after %s: %s", outcome.job, _why(exc))
    if health is not None:
        publish_metrics(ctx.config, health)
    try:
        notices = notices_for(ctx, outcome, events, health)
        if notices:
            notify_all(ctx.config, notices)
    except Exception as exc:
        log.warning("could not send notifications for %s: %s", outcome.job, _why(exc))


def _why(exc: Exception) -> str:
    return exc.message if isinstance(exc, DrtoolError) else f"{type(exc).__name__}: {exc}"


def notices_for(
    ctx: Context, outcome: JobOutcome, events: Sequence[str], health: StatusResult | None
) -> list[Notice]:
    """The notifications one run sends (before filtering by ``notifications.on``)."""
    host = socket.gethostname()
    details: dict[str, Any] = {
        "job": outcome.job,
        "host": host,
        "ok": outcome.ok,
        "item_id": outcome.item_id,
        "seconds": round(outcome.seconds, 3),
        "exit_code": outcome.exit_code,
        "error": outcome.error,
        "summary": outcome.summary,
        "stats": dict(outcome.stats),
        "storage": ctx.storage.description,
    }
    item = f" {outcome.item_id}" if outcome.item_id else ""
    notices: list[Notice] = []
    if outcome.ok:
        text = f"drtool {outcome.job}{item} succeeded on {host} in {outcome.seconds:.1f}s"
        notices.append(
            Notice("success", text + (f": {outcome.summary}" if outcome.summary else ""), details)
        )
    else:
        notices.append(
            Notice(
                "failure",
                f"drtool {outcome.job}{item} FAILED on {host} (exit {outcome.exit_code}): "
                f"{outcome.error}",
                details,
            )
        )
    for event in events:
        verdict = outcome.summary or ("ok" if outcome.ok else "failed")
        notices.append(Notice(event, f"drtool {outcome.job}{item} on {host}: {verdict}", details))
    if health is not None and not health.ok and outcome.job in BREACH_CHECK_JOBS:
        text = f"drtool objectives breached on {host} (after {outcome.job}): " + "; ".join(
            health.breaches
        )
        notices.append(
            Notice(
                "breach",
                text,
                {**details, "breaches": health.breaches, "breached": health.breached},
            )
        )
    return notices
