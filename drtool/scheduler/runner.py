"""``schedule run``: an APScheduler BlockingScheduler firing the schedule files' jobs, each run
under a storage lease (no overlap, also across containers), logged as one JSON line, counted in
the metrics served on ``metrics.listen``; SIGTERM/SIGINT drain within a grace period."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent  # type: ignore[import-untyped]
from apscheduler.schedulers.blocking import BlockingScheduler  # type: ignore[import-untyped]
from apscheduler.triggers.date import DateTrigger  # type: ignore[import-untyped]
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from drtool.errors import EXIT_FAILED, DrtoolError, OperationError, RefusedError, UsageError
from drtool.log import get_logger
from drtool.pipeline.stages import ProgressFn
from drtool.scheduler.companion import Companion
from drtool.scheduler.files import ScheduleJob
from drtool.scheduler.http import serve
from drtool.services.context import Context, ProgressFactory, with_source
from drtool.services.jobs.job import Outcome, record_abandoned_run
from drtool.services.jobs.metrics import JOB_LABEL, collect_registry
from drtool.services.lease import RENEW_EVERY_SECONDS, Lease, read_lease

ABORT_WAIT_SECONDS = 30.0
# The commands whose runs are recorded in runs/<command>.json (run through services/jobs/job.py).
RECORDED_COMMANDS = frozenset({"backup", "verify", "rehearse", "prune", "export-users", "archive"})
STATE_CACHE_SECONDS = 10.0
MAX_CATCH_UP_STEPS = 10_000

log = get_logger("scheduler")


class JobAborted(OperationError):
    """Raised inside a running job's data stream to abort it (timeout, shutdown, lost lease)."""


@dataclass
class JobState:
    last_ok: bool | None = None
    last_error: str | None = None
    running: bool = False
    cancel: threading.Event = field(default_factory=threading.Event)
    why: str = ""
    started: float = 0.0

    def check(self, stage: str | None = None) -> None:
        """Raise JobAborted if the run was asked to stop."""
        if self.cancel.is_set():
            raise JobAborted(f"{stage or 'job'} aborted: {self.why}")


@dataclass(frozen=True)
class RunOptions:
    grace_seconds: float = 60.0
    misfire_grace_seconds: float = 3600.0
    run_now: tuple[str, ...] = ()
    lease_renew_seconds: float = RENEW_EVERY_SECONDS
    # How long an aborted job may take to stop before the scheduler exits without it.
    abort_wait_seconds: float = ABORT_WAIT_SECONDS
    # Processes kept running beside the jobs: (name, argv), e.g. ``stream run``.
    companions: tuple[tuple[str, tuple[str, ...]], ...] = ()


def _abortable(state: JobState) -> ProgressFactory:
    """Progress callbacks are called for every chunk of every data stream: the one place where
    raising aborts a job cleanly (the stage's cleanup runs, no manifest is written)."""

    def factory(stage: str, _total: int | None) -> ProgressFn:
        def update(_n: int) -> None:
            state.check(stage)

        return update

    return factory


def _safely(describe: Callable[[], str | None]) -> str | None:
    """A result's description that fails must not turn a finished run into a failed one."""
    try:
        return describe()
    except Exception as exc:
        log.warning("could not describe the job's result: %s: %s", type(exc).__name__, exc)
        return None


class Runner:
    def __init__(self, ctx: Context, jobs: list[ScheduleJob], options: RunOptions) -> None:
        self.ctx = ctx
        self.jobs = {job.name: job for job in jobs}
        self.options = options
        self.states = {job.name: JobState() for job in jobs}
        self.stopping = threading.Event()
        self.scheduler: BlockingScheduler | None = None
        self._active = 0
        self._idle = threading.Condition()
        self._state_cache: tuple[float, bytes] | None = None
        self.registry = CollectorRegistry()
        labels = [JOB_LABEL]
        self.m_runs = Counter(
            "drtool_schedule_runs",
            "Scheduled runs by outcome.",
            [JOB_LABEL, "outcome"],
            registry=self.registry,
        )
        self.m_failures = Counter(
            "drtool_job_failures", "Failed scheduled runs.", labels, registry=self.registry
        )
        self.m_skipped = Counter(
            "drtool_job_skipped",
            "Scheduled runs skipped: the job was still running here or elsewhere (lease or lock).",
            labels,
            registry=self.registry,
        )
        self.m_misfires = Counter(
            "drtool_job_misfires",
            "Fire times missed (scheduler down or busy); caught up once if within the grace.",
            labels,
            registry=self.registry,
        )
        self.m_duration = Gauge(
            "drtool_schedule_last_duration_seconds",
            "Duration of the job's last run.",
            labels,
            registry=self.registry,
        )
        self.m_success = Gauge(
            "drtool_schedule_last_success_timestamp_seconds",
            "When the scheduled job last succeeded (Unix time).",
            labels,
            registry=self.registry,
        )
        self.m_last_ok = Gauge(
            "drtool_schedule_last_run_ok",
            "1 if the job's last run here succeeded.",
            labels,
            registry=self.registry,
        )
        self.m_running = Gauge(
            "drtool_schedule_running", "1 while the job runs.", labels, registry=self.registry
        )
        self.m_up = Gauge(
            "drtool_scheduler_up", "1 while the scheduler runs.", registry=self.registry
        )
        for name in self.jobs:
            for metric in (self.m_failures, self.m_skipped, self.m_misfires):
                metric.labels(name)

    # -- one run -------------------------------------------------------------------------------

    def fire(self, name: str, reason: str) -> None:
        # Counted as active before the stopping check, so a drain never misses a run that
        # starts while the signal arrives.
        with self._idle:
            self._active += 1
        try:
            if self.stopping.is_set():
                self._skip(name, "the scheduler is stopping")
            else:
                self._fire(name, reason)
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

    def _home(self, job: ScheduleJob) -> Context:
        """The storage a job works on, where its lease lives: a replica for `--from NAME`
        (a drill from the replica must not need the primary), else the primary."""
        source = job.call.params.get("source")
        return with_source(self.ctx, source if isinstance(source, str) else None)

    def _fire(self, name: str, reason: str) -> None:
        job, state = self.jobs[name], self.states[name]
        try:
            home = self._home(job)
        except DrtoolError as exc:
            self._finish(name, reason, False, 0.0, None, exc.exit_code, exc.message)
            return
        # A lost lease (taken over after it expired, or not renewable for its whole TTL)
        # means the run is no longer exclusive: it is aborted like a timeout.
        lease = Lease(
            home,
            name,
            renew_every_seconds=self.options.lease_renew_seconds,
            on_lost=lambda why: self.abort(name, f"lease lost: {why}"),
        )
        try:
            held = lease.acquire()
        except DrtoolError as exc:
            self._finish(name, reason, False, 0.0, None, EXIT_FAILED, f"lease: {exc.message}")
            return
        if held is not None:
            self._skip(name, f"another scheduler holds the lease: {held}")
            return
        if self.stopping.is_set():
            lease.release()
            self._skip(name, "the scheduler is stopping")
            return
        state.running, state.why = True, ""
        state.cancel.clear()
        self.m_running.labels(name).set(1)
        timer: threading.Timer | None = None
        if job.timeout_seconds:
            timer = threading.Timer(job.timeout_seconds, self.abort, (name, "timeout"))
            timer.daemon = True
            timer.start()
        log.info("%s: started (%s)", name, reason, extra={"job": name, "event": "start"})
        # The abort is raised inside the job: from its data streams' progress callbacks and
        # from the checks between its stages that move no data (Context.check_abort).
        run_ctx = Context(
            self.ctx.config, self.ctx.storage, self.ctx.clock, _abortable(state), state.check
        )
        started = state.started = time.monotonic()
        outcome: Outcome | None = None
        error: str | None = None
        code: int = EXIT_FAILED
        try:
            outcome = job.call.run(run_ctx)
            code = outcome.exit_code
        except DrtoolError as exc:
            error, code = exc.message, exc.exit_code
        except Exception as exc:
            error = f"unexpected error: {type(exc).__name__}: {exc}"
        finally:
            if timer is not None:
                timer.cancel()
            lease.release()
            state.running = False
            self.m_running.labels(name).set(0)
        seconds = time.monotonic() - started
        if code == RefusedError.exit_code and outcome is None:
            # Another run holds the job's own lock (backup: its PostgreSQL advisory lock).
            self._skip(name, error or "refused", seconds)
            return
        ok = code == 0
        item_id = _safely(outcome.item_id) if outcome is not None else None
        if not ok and error is None and outcome is not None:
            error = _safely(outcome.summary) or f"exit {code}"
        self._finish(name, reason, ok, seconds, item_id, code, error)

    def _finish(
        self,
        name: str,
        reason: str,
        ok: bool,
        seconds: float,
        item_id: str | None,
        code: int,
        error: str | None,
    ) -> None:
        state = self.states[name]
        state.last_ok, state.last_error = ok, error
        self.m_runs.labels(name, "ok" if ok else "failed").inc()
        self.m_duration.labels(name).set(seconds)
        self.m_last_ok.labels(name).set(1 if ok else 0)
        if ok:
            self.m_success.labels(name).set(time.time())
        else:
            self.m_failures.labels(name).inc()
        self._state_cache = None
        extra: dict[str, Any] = {
            "job": name,
            "item_id": item_id,
            "stage": reason,
            "ok": ok,
            "seconds": round(seconds, 3),
            "exit_code": code,
            "event": "run",
        }
        if ok:
            log.info(
                "%s: ok in %.1fs%s", name, seconds, f" ({item_id})" if item_id else "", extra=extra
            )
        else:
            log.error("%s: FAILED (exit %d) in %.1fs: %s", name, code, seconds, error, extra=extra)

    def _skip(self, name: str, why: str, seconds: float = 0.0) -> None:
        self.m_skipped.labels(name).inc()
        self.m_runs.labels(name, "skipped").inc()
        log.warning(
            "%s: skipped run: %s",
            name,
            why,
            extra={"job": name, "event": "skipped", "ok": None, "seconds": round(seconds, 3)},
        )

    def abort(self, name: str, why: str) -> None:
        state = self.states[name]
        if state.running:
            state.why = why
            state.cancel.set()
            log.warning("%s: aborting the running job (%s)", name, why, extra={"job": name})

    # -- scheduler events ----------------------------------------------------------------------

    def _on_event(self, event: JobEvent) -> None:
        name = str(event.job_id)
        if name not in self.jobs:
            return
        if event.code == EVENT_JOB_MISSED:
            self.m_misfires.labels(name).inc()
            log.warning(
                "%s: missed its fire time %s (beyond misfire grace)",
                name,
                getattr(event, "scheduled_run_time", "?"),
                extra={"job": name, "event": "misfire"},
            )
        elif event.code == EVENT_JOB_MAX_INSTANCES:
            self._skip(name, "the previous run is still running (max_instances=1)")

    def missed_fire(self, job: ScheduleJob, now: datetime) -> datetime | None:
        """The latest fire time within the misfire grace that no run started at or after."""
        trigger = job.trigger(with_jitter=False)
        at, previous, latest = (
            now - timedelta(seconds=self.options.misfire_grace_seconds),
            None,
            None,
        )
        for _ in range(MAX_CATCH_UP_STEPS):
            fire = trigger.get_next_fire_time(previous, at)
            if fire is None or fire > now:
                break
            latest, previous, at = fire, fire, fire + timedelta(seconds=1)
        if latest is None:
            return None
        try:
            started = read_lease(self._home(job), job.name).last_started_at
        except DrtoolError as exc:
            log.warning("%s: cannot read its lease to catch up: %s", job.name, exc.message)
            return None
        return latest if started is None or started < latest else None

    # -- HTTP ----------------------------------------------------------------------------------

    def metrics_text(self) -> bytes:
        cached = self._state_cache
        if cached is None or time.monotonic() - cached[0] > STATE_CACHE_SECONDS:
            try:
                state = generate_latest(collect_registry(self.ctx))
            except Exception as exc:
                why = (
                    exc.message if isinstance(exc, DrtoolError) else f"{type(exc).__name__}: {exc}"
                )
                log.warning("metrics: cannot read the state in storage: %s", why)
                state = b""
            cached = (time.monotonic(), state)
            self._state_cache = cached
        return cached[1] + generate_latest(self.registry)

    def health(self) -> tuple[int, dict[str, object]]:
        scheduler = self.scheduler
        if scheduler is None or not scheduler.running or self.stopping.is_set():
            return 503, {"ok": False, "reason": "the scheduler is not running"}
        failing = {n: s.last_error for n, s in self.states.items() if s.last_ok is False}
        if failing:
            reason = "; ".join(f"job {n} failed its last run: {e}" for n, e in failing.items())
            return 503, {"ok": False, "reason": reason, "failing": sorted(failing)}
        return 200, {"ok": True, "jobs": sorted(self.jobs)}

    # -- the loop ------------------------------------------------------------------------------

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.stopping.is_set():
            return
        self.stopping.set()
        log.info(
            "%s: stopping; running jobs get %.0fs to finish",
            signal.Signals(signum).name,
            self.options.grace_seconds,
        )
        scheduler = self.scheduler
        if scheduler is not None and scheduler.running:
            scheduler.shutdown(wait=False)

    def _drain(self) -> None:
        deadline = time.monotonic() + self.options.grace_seconds
        with self._idle:
            self._idle.wait_for(lambda: self._active == 0, max(deadline - time.monotonic(), 0))
            if self._active == 0:
                return
        for name, state in self.states.items():
            if state.running:
                self.abort(name, "shutdown grace period over")
        with self._idle:
            if self._idle.wait_for(lambda: self._active == 0, self.options.abort_wait_seconds):
                return
        # A job that ignores its abort (a statement or lock wait that checks no abort) is left
        # behind: its run is recorded as failed, and the exit code says the stop was not clean.
        for name, state in self.states.items():
            if state.running:
                self._abandon(name, state)
        log.error(
            "a job did not stop within %.0fs of its abort; exiting (exit %d)",
            self.options.abort_wait_seconds,
            EXIT_FAILED,
        )
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_FAILED)

    def _abandon(self, name: str, state: JobState) -> None:
        """Record a run the scheduler exits without (its own wrapper never gets to)."""
        seconds = time.monotonic() - state.started
        error = (
            f"aborted ({state.why}) and still running {self.options.abort_wait_seconds:.0f}s "
            "later: "
            "the scheduler exited without it; its item is uncommitted"
        )
        self._finish(name, "abort", False, seconds, None, EXIT_FAILED, error)
        job = self.jobs[name].call.command
        if job in RECORDED_COMMANDS:
            # Recorded where the job's own runs are (a `--from` job: on its replica).
            record_abandoned_run(self._home(self.jobs[name]), job, seconds, error)

    def run(self) -> None:
        for name in self.options.run_now:
            if name not in self.jobs:
                raise UsageError(
                    f"--run-now {name}: no such job", hint=f"jobs: {', '.join(sorted(self.jobs))}"
                )
        scheduler = BlockingScheduler(
            timezone=UTC,
            job_defaults={
                "max_instances": 1,
                "coalesce": True,
                "misfire_grace_time": int(self.options.misfire_grace_seconds),
            },
        )
        now = datetime.now(UTC)
        for job in self.jobs.values():
            immediate = job.name in self.options.run_now
            if not job.enabled:
                if immediate:
                    scheduler.add_job(
                        self.fire, DateTrigger(now), (job.name, "run-now"), id=job.name
                    )
                continue
            reason = "cron"
            next_run: datetime | None = None
            if immediate:
                reason, next_run = "run-now", now
            else:
                missed = self.missed_fire(job, now)
                if missed is not None:
                    self.m_misfires.labels(job.name).inc()
                    log.warning(
                        "%s: missed its fire time %s; catching up once now",
                        job.name,
                        missed.isoformat(timespec="seconds"),
                        extra={"job": job.name, "event": "misfire"},
                    )
                    reason, next_run = "catch-up", now
            kwargs: dict[str, Any] = {"next_run_time": next_run} if next_run else {}
            scheduler.add_job(
                self.fire, job.trigger(), (job.name, reason), id=job.name, name=job.name, **kwargs
            )
        scheduler.add_listener(self._on_event, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
        server = serve(self.ctx.config.metrics.listen, self.metrics_text, self.health)
        host, port = server.server_address[:2]
        log.info(
            "scheduler: %d job(s), metrics on http://%s:%s/metrics",
            len(self.jobs),
            host,
            port,
            extra={"event": "start"},
        )
        self.scheduler = scheduler
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        self.m_up.set(1)
        companions = [Companion(name, argv) for name, argv in self.options.companions]
        for companion in companions:
            companion.start()
        try:
            if not self.stopping.is_set():
                scheduler.start()
        finally:
            self.stopping.set()
            self.m_up.set(0)
            for companion in companions:
                companion.stop(self.options.grace_seconds)
            self._drain()
            server.shutdown()
            log.info("scheduler: stopped", extra={"event": "stop"})
