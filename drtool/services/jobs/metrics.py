"""Prometheus metrics from cheap state (manifests, verification, drill and job-run records): the
registry that ``metrics.textfile`` receives after each command and the scheduler serves.

Per-job series carry the label ``drtool_job`` (``JOB_LABEL``), never ``job``: Prometheus sets
``job`` (and ``instance``) on every scraped series itself, and a series' own ``job`` label would
come back renamed to ``exported_job``, so ``{job="verify"}`` in an alert would never match."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import CollectorRegistry, write_to_textfile
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from drtool.config import Config
from drtool.errors import DrtoolError
from drtool.log import get_logger
from drtool.services.context import Context
from drtool.services.jobs.health import OBJECTIVE_NAMES, StatusResult, gather_status

VERIFY_JOB = "verify"
JOB_LABEL = "drtool_job"
STORAGE_UP = "drtool_metrics_storage_up"
STORAGE_ERRORS = "drtool_metrics_storage_errors"  # exposed as ..._total

log = get_logger("metrics")


class _Snapshot:
    """A collector that yields metric families computed once (a scrape of a fixed moment)."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return iter(self.families)


def _gauge(name: str, doc: str, value: float | None) -> list[Metric]:
    if value is None:
        return []
    family = GaugeMetricFamily(name, doc)
    family.add_metric([], float(value))
    return [family]


def _job_families(result: StatusResult) -> list[Metric]:
    last_success = GaugeMetricFamily(
        "drtool_job_last_success_timestamp_seconds",
        "When the job last succeeded (Unix time, end of the run).",
        labels=[JOB_LABEL],
    )
    duration = GaugeMetricFamily(
        "drtool_job_last_duration_seconds",
        "How long the job's last successful run took.",
        labels=[JOB_LABEL],
    )
    last_run = GaugeMetricFamily(
        "drtool_job_last_run_timestamp_seconds",
        "When the job last ran, successfully or not (Unix time, end of the run).",
        labels=[JOB_LABEL],
    )
    run_ok = GaugeMetricFamily(
        "drtool_job_last_run_ok", "1 if the job's last run succeeded, else 0.", labels=[JOB_LABEL]
    )
    last_failure = GaugeMetricFamily(
        "drtool_job_last_failure_timestamp_seconds",
        "When the job last failed (Unix time); absent if it never failed.",
        labels=[JOB_LABEL],
    )
    for run in result.jobs:
        labels = [run.job]
        last_run.add_metric(labels, run.last_run_at.timestamp())
        run_ok.add_metric(labels, 1.0 if run.last_ok else 0.0)
        if run.last_success_at is not None:
            last_success.add_metric(labels, run.last_success_at.timestamp())
        if run.last_success_seconds is not None:
            duration.add_metric(labels, run.last_success_seconds)
        if run.last_failure_at is not None:
            last_failure.add_metric(labels, run.last_failure_at.timestamp())
    return [last_success, duration, last_run, run_ok, last_failure]


def _objective_families(result: StatusResult) -> list[Metric]:
    objectives = result.objectives
    breached = GaugeMetricFamily(
        "drtool_objective_breached",
        "1 if the objective is breached now (rpo, rto, verify, drill, drill_age, replica_lag, "
        "bundle_drift), else 0.",
        labels=["objective"],
    )
    for name in OBJECTIVE_NAMES:
        breached.add_metric([name], 1.0 if name in result.breached else 0.0)
    return [
        breached,
        *_gauge("drtool_status_ok", "1 if `drtool status` finds no breach, else 0.", result.ok),
        *_gauge(
            "drtool_rpo_objective_seconds",
            "The RPO objective (objectives.rpo).",
            objectives.rpo_seconds,
        ),
        *_gauge(
            "drtool_rto_objective_seconds",
            "The RTO objective (objectives.rto).",
            objectives.rto_seconds,
        ),
        *_gauge(
            "drtool_drill_max_age_objective_seconds",
            "The longest allowed time between drills (objectives.drill_max_age), if set.",
            objectives.drill_max_age_seconds,
        ),
    ]


def _state_families(result: StatusResult) -> list[Metric]:
    backup, verify, drill = result.last_backup, result.last_verify, result.last_drill
    verify_run = next((run for run in result.jobs if run.job == VERIFY_JOB), None)
    stats = verify_run.stats if verify_run is not None else {}
    return [
        *_gauge(
            "drtool_backup_last_timestamp_seconds",
            "Snapshot time of the newest complete backup (Unix time): the recovery point.",
            backup.at.timestamp() if backup else None,
        ),
        *_gauge(
            "drtool_backup_last_size_bytes",
            "Stored (compressed, encrypted) size of the newest complete backup.",
            backup.size if backup else None,
        ),
        *_gauge(
            "drtool_rpo_seconds",
            "RPO exposure now: seconds since the newest complete backup's snapshot.",
            result.rpo_exposure_seconds,
        ),
        *_gauge(
            "drtool_verify_last_ok",
            "1 if the most recent verification run found no problem, else 0.",
            (1.0 if verify.ok else 0.0) if verify else None,
        ),
        *_gauge(
            "drtool_verify_last_timestamp_seconds",
            "When the most recent verification started (Unix time).",
            verify.at.timestamp() if verify else None,
        ),
        *_gauge(
            "drtool_verify_items_verified",
            "Items checked by the last `drtool verify` run.",
            stats.get("items_verified"),
        ),
        *_gauge(
            "drtool_verify_items_failed",
            "Items with problems in the last `drtool verify` run.",
            stats.get("items_failed"),
        ),
        *_gauge(
            "drtool_drill_last_timestamp_seconds",
            "When the newest DR drill ran (Unix time).",
            drill.at.timestamp() if drill else None,
        ),
        *_gauge(
            "drtool_drill_last_rto_seconds",
            "RTO measured by the newest DR drill (start to validated).",
            drill.rto_seconds if drill else None,
        ),
        *_gauge(
            "drtool_drill_last_ok",
            "1 if the newest DR drill passed, else 0.",
            (1.0 if drill.verdict == "pass" else 0.0) if drill and drill.verdict else None,
        ),
    ]


def _bundle_families(result: StatusResult) -> list[Metric]:
    """Per captured variable or readable file of the newest bundle (labels ``kind``, ``name``):
    1 when its fingerprint here differs from the bundle's (or the variable is unset), else 0."""
    if result.bundle is None:
        return []
    drift = GaugeMetricFamily(
        "drtool_bundle_drift",
        "1 if the configured variable or file now differs from the newest backup's bundle "
        "(or the variable is unset), else 0.",
        labels=["kind", "name"],
    )
    for entry in result.bundle.entries:
        drift.add_metric([entry.kind, entry.name], 1.0 if entry.drifted else 0.0)
    return [drift]


def _stream_families(result: StatusResult) -> list[Metric]:
    """Continuous archiving, when the stream is enabled or has left a state record."""
    stream = result.stream
    if stream is None:
        return []
    state = stream.state
    newest = stream.newest
    families = [
        *_gauge(
            "drtool_stream_up",
            "1 if the stream's state record says it is running, else 0.",
            1.0 if stream.running else 0.0,
        ),
        *_gauge(
            "drtool_stream_rpo_seconds",
            "Seconds since the newest point up to which every committed change is stored.",
            stream.rpo_seconds,
        ),
        *_gauge(
            "drtool_stream_slot_lag_bytes",
            "WAL the server retains for the stream's replication slot.",
            stream.retained_bytes,
        ),
        *_gauge(
            "drtool_stream_max_slot_lag_bytes",
            "stream.max_slot_lag: retained WAL above this breaches.",
            stream.max_slot_lag,
        ),
        *_gauge(
            "drtool_stream_last_segment_timestamp_seconds",
            "When the newest stored change segment was written (Unix time).",
            newest.finished_at.timestamp() if newest else None,
        ),
        *_gauge(
            "drtool_stream_changes_per_second",
            "Changes per second the stream stored in its last segment.",
            state.changes_per_second if state else None,
        ),
    ]
    if state is not None:
        segments = CounterMetricFamily(
            "drtool_stream_segments", "Segments stored by the running stream (this process)."
        )
        segments.add_metric([], float(state.segments_stored))
        changes = CounterMetricFamily(
            "drtool_stream_changes", "Changes stored by the running stream (this process)."
        )
        changes.add_metric([], float(state.changes_stored))
        families += [segments, changes]
    return families


def _replica_families(result: StatusResult) -> list[Metric]:
    """Per replica (label ``replica``): readable or not, its newest backup, its lag. A replica
    that could not be read has ``drtool_replica_up 0`` and no lag series."""
    up = GaugeMetricFamily(
        "drtool_replica_up",
        "1 if the replica's catalog was read for `status`, 0 if the read failed.",
        labels=["replica"],
    )
    lag = GaugeMetricFamily(
        "drtool_replica_lag_seconds",
        "How far the replica is behind: the age of the oldest primary backup it lacks (0 when "
        "it has the primary's newest).",
        labels=["replica"],
    )
    newest = GaugeMetricFamily(
        "drtool_replica_backup_last_timestamp_seconds",
        "Snapshot time of the replica's newest complete backup (Unix time).",
        labels=["replica"],
    )
    for replica in result.replicas:
        labels = [replica.name]
        up.add_metric(labels, 0.0 if replica.error is not None else 1.0)
        if replica.lag_seconds is not None:
            lag.add_metric(labels, replica.lag_seconds)
        if replica.newest_at is not None:
            newest.add_metric(labels, replica.newest_at.timestamp())
    if not result.replicas:
        return []
    return [
        up,
        lag,
        newest,
        *_gauge(
            "drtool_replica_lag_objective_seconds",
            "The replica lag objective (objectives.replica_lag), if set.",
            result.objectives.replica_lag_seconds,
        ),
    ]


# Replication runs one job per replica, `replicate.<replica>` (services/jobs/calls.py).
REPLICATE_JOB_PREFIX = "replicate."


def _replicate_run_families(result: StatusResult) -> list[Metric]:
    """Per-replica replication runs, labelled ``replica``: alerts select a replica by name."""
    last_success = GaugeMetricFamily(
        "drtool_replicate_last_success_timestamp_seconds",
        "When replication to the replica last succeeded (Unix time, end of the run).",
        labels=["replica"],
    )
    run_ok = GaugeMetricFamily(
        "drtool_replicate_last_run_ok",
        "1 if the last replication run to the replica succeeded, else 0.",
        labels=["replica"],
    )
    copied = GaugeMetricFamily(
        "drtool_replicate_last_copied_bytes",
        "Bytes copied to the replica by the last replication run.",
        labels=["replica"],
    )
    for run in result.jobs:
        if not run.job.startswith(REPLICATE_JOB_PREFIX):
            continue
        labels = [run.job.removeprefix(REPLICATE_JOB_PREFIX)]
        run_ok.add_metric(labels, 1.0 if run.last_ok else 0.0)
        if run.last_success_at is not None:
            last_success.add_metric(labels, run.last_success_at.timestamp())
        if "bytes_copied" in run.stats:
            copied.add_metric(labels, run.stats["bytes_copied"])
    return [last_success, run_ok, copied]


class _ReadErrors:
    """Failed state reads in this process (a counter: the scheduler serves it for its life)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def add(self) -> None:
        with self._lock:
            self.count += 1


READ_ERRORS = _ReadErrors()


def _storage_families(up: bool) -> list[Metric]:
    errors = CounterMetricFamily(
        STORAGE_ERRORS,
        "Times this process could not read the state in storage for the metrics.",
        value=READ_ERRORS.count,
    )
    return [
        *_gauge(
            STORAGE_UP,
            "1 if the state in storage was read for these metrics, 0 if the read failed (the "
            "state metrics are then absent: see drtool_metrics_storage_errors_total and the log).",
            1.0 if up else 0.0,
        ),
        errors,
    ]


def registry_for(result: StatusResult | None) -> CollectorRegistry:
    """A registry holding the metrics of one status snapshot; families with no value yet (no
    backup, no drill) are absent rather than zero. ``None``: the state could not be read, and
    only the storage metrics say so."""
    registry = CollectorRegistry(auto_describe=True)
    families = _storage_families(result is not None)
    if result is not None:
        families = (
            _job_families(result)
            + _objective_families(result)
            + _state_families(result)
            + _replica_families(result)
            + _bundle_families(result)
            + _stream_families(result)
            + _replicate_run_families(result)
            + families
        )
    registry.register(_Snapshot(families))
    return registry


def collect_registry(ctx: Context) -> CollectorRegistry:
    """Read the cheap state (no data object) and build the registry. A failed read (storage
    down, bucket gone, credentials revoked) is itself a metric, never a scrape error or an
    empty page: ``drtool_metrics_storage_up 0`` and one more storage error counted."""
    try:
        result = gather_status(ctx)
    except Exception as exc:
        READ_ERRORS.add()
        log.warning("metrics: cannot read the state in %s: %s", ctx.storage.description, _why(exc))
        return registry_for(None)
    return registry_for(result)


def _why(exc: Exception) -> str:
    return exc.message if isinstance(exc, DrtoolError) else f"{type(exc).__name__}: {exc}"


def textfile_path(config: Config) -> Path | None:
    path = config.metrics.textfile
    return config.resolve(path) if path is not None else None


def write_textfile(config: Config, registry: CollectorRegistry) -> Path | None:
    """Write ``registry`` to ``metrics.textfile`` atomically (a temporary file in the same
    directory, then a rename: node_exporter never reads half a file). None if not configured."""
    path = textfile_path(config)
    if path is None:
        return None
    write_to_textfile(str(path), registry)
    return path


def publish_metrics(config: Config, result: StatusResult) -> Path | None:
    """Best effort: a metrics problem is logged and never fails the command."""
    try:
        return write_textfile(config, registry_for(result))
    except Exception as exc:
        log.warning("could not write metrics.textfile %s: %s", textfile_path(config), _why(exc))
        return None
