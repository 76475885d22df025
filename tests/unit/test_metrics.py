"""The metrics textfile: Prometheus text that prometheus-client's own parser reads, with the
expected families and values, replaced atomically, and never a reason for a command to fail."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import cast

import pytest
from prometheus_client.parser import text_string_to_metric_families

from drtool.catalog.records.runs import record_run
from drtool.services.context import Context
from drtool.services.jobs.health import gather_status
from drtool.services.jobs.metrics import (
    JOB_LABEL,
    READ_ERRORS,
    collect_registry,
    publish_metrics,
    write_textfile,
)
from drtool.storage.base import Storage
from drtool.storage.faults import FaultyStorage
from tests.unit.dr_state import T0, Clock, make_context, put_backup, put_drill, put_verification

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(path: Path) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(path.read_text(encoding="utf-8")):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_textfile_holds_every_family_with_the_state_values(tmp_path: Path) -> None:
    textfile = tmp_path / "textfile" / "drtool.prom"
    textfile.parent.mkdir()
    clock = Clock(T0 + timedelta(hours=2))
    ctx = make_context(
        tmp_path, clock, objectives={"rpo": "1h", "rto": "1h"}, metrics={"textfile": str(textfile)}
    )
    backup_id = put_backup(ctx, T0, size=5000)
    put_verification(ctx, backup_id, T0 + timedelta(hours=1), ok=True)
    put_drill(ctx, T0 + timedelta(minutes=30), rto=4000.0)
    record_run(ctx.storage, "backup", at=T0 - timedelta(days=1), ok=True, seconds=42.5)
    record_run(ctx.storage, "backup", at=T0, ok=False, seconds=3, error="x", exit_code=1)
    stats = {"items_verified": 3, "items_failed": 1}
    record_run(ctx.storage, "verify", at=T0, ok=False, seconds=9, exit_code=3, stats=stats)
    assert write_textfile(ctx.config, collect_registry(ctx)) == textfile
    samples = parse(textfile)
    ts = T0.timestamp()
    assert (
        value(samples, "drtool_job_last_success_timestamp_seconds", drtool_job="backup")
        == ts - 86400
    )
    assert value(samples, "drtool_job_last_duration_seconds", drtool_job="backup") == 42.5
    assert value(samples, "drtool_job_last_run_ok", drtool_job="backup") == 0.0
    assert value(samples, "drtool_job_last_failure_timestamp_seconds", drtool_job="backup") == ts
    assert value(samples, "drtool_job_last_run_timestamp_seconds", drtool_job="verify") == ts
    assert value(samples, "drtool_backup_last_size_bytes") == 5000
    assert value(samples, "drtool_backup_last_timestamp_seconds") == ts
    assert value(samples, "drtool_rpo_seconds") == 7200.0
    assert value(samples, "drtool_rpo_objective_seconds") == 3600.0
    assert value(samples, "drtool_rto_objective_seconds") == 3600.0
    assert value(samples, "drtool_drill_last_rto_seconds") == 4000.0
    assert value(samples, "drtool_drill_last_ok") == 1.0
    assert value(samples, "drtool_verify_last_ok") == 1.0
    assert value(samples, "drtool_verify_items_verified") == 3
    assert value(samples, "drtool_verify_items_failed") == 1
    assert value(samples, "drtool_status_ok") == 0.0
    breached = {
        objective: value(samples, "drtool_objective_breached", objective=objective)
        for objective in ("rpo", "rto", "verify", "drill", "drill_age")
    }
    assert breached == {"rpo": 1.0, "rto": 1.0, "verify": 0.0, "drill": 0.0, "drill_age": 0.0}
    assert os.listdir(textfile.parent) == ["drtool.prom"], "no temporary file left"


def test_unknown_values_are_absent_not_zero(tmp_path: Path) -> None:
    textfile = tmp_path / "drtool.prom"
    ctx = make_context(tmp_path, Clock(), metrics={"textfile": str(textfile)})
    publish_metrics(ctx.config, gather_status(ctx))
    names = {name for name, _ in parse(textfile)}
    assert "drtool_rpo_seconds" not in names and "drtool_backup_last_size_bytes" not in names
    assert "drtool_drill_last_rto_seconds" not in names
    assert "drtool_drill_max_age_objective_seconds" not in names
    assert value(parse(textfile), "drtool_objective_breached", objective="rpo") == 1.0


def test_textfile_is_replaced_by_rename_and_a_relative_path_follows_the_config(
    tmp_path: Path,
) -> None:
    ctx = make_context(tmp_path, Clock(), metrics={"textfile": "drtool.prom"})
    ctx.config = ctx.config.model_copy(update={"base_dir": tmp_path})
    textfile = tmp_path / "drtool.prom"
    publish_metrics(ctx.config, gather_status(ctx))
    first = textfile.stat().st_ino
    reader = textfile.open("rb")  # node_exporter mid-read keeps the whole old file
    old = reader.read()
    put_backup(ctx, T0)
    publish_metrics(ctx.config, gather_status(ctx))
    assert textfile.stat().st_ino != first, "a new file renamed over the old one"
    assert b"drtool_backup_last_size_bytes" in textfile.read_bytes()
    reader.seek(0)
    assert reader.read() == old
    reader.close()
    assert sorted(os.listdir(tmp_path)) == ["drtool.prom", "storage"]


def test_an_unwritable_textfile_is_a_warning_not_a_failure(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing_dir = tmp_path / "no-such-dir" / "drtool.prom"
    ctx = make_context(tmp_path, Clock(), metrics={"textfile": str(missing_dir)})
    assert publish_metrics(ctx.config, gather_status(ctx)) is None
    assert "could not write metrics.textfile" in caplog.text


def test_without_a_textfile_nothing_is_written(tmp_path: Path) -> None:
    ctx = make_context(tmp_path, Clock())
    assert publish_metrics(ctx.config, gather_status(ctx)) is None
    assert sorted(os.listdir(tmp_path)) == []


def test_no_series_carries_a_label_prometheus_sets_on_the_target(tmp_path: Path) -> None:
    """Prometheus adds ``job``/``instance`` to every scraped series; a series' own ``job`` would
    come back as ``exported_job`` and ``{job="verify"}`` in an alert would never match."""
    textfile = tmp_path / "drtool.prom"
    ctx = make_context(tmp_path, Clock(), metrics={"textfile": str(textfile)})
    record_run(ctx.storage, "verify", at=T0, ok=True, seconds=1)
    publish_metrics(ctx.config, gather_status(ctx))
    samples = parse(textfile)
    assert {label for _, labels in samples for label, _ in labels} == {JOB_LABEL, "objective"}
    assert value(samples, "drtool_job_last_run_ok", drtool_job="verify") == 1.0


def test_a_storage_read_failure_is_a_metric_not_missing_series(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    textfile = tmp_path / "drtool.prom"
    ctx = make_context(tmp_path, Clock(), metrics={"textfile": str(textfile)})
    put_backup(ctx, T0)
    write_textfile(ctx.config, collect_registry(ctx))
    assert value(parse(textfile), "drtool_metrics_storage_up") == 1.0
    errors_before = value(parse(textfile), "drtool_metrics_storage_errors_total")
    cut = FaultyStorage(ctx.storage, fail_get_after_bytes=0)  # every read fails
    write_textfile(ctx.config, collect_registry(Context(ctx.config, cast(Storage, cut), ctx.clock)))
    samples = parse(textfile)
    assert value(samples, "drtool_metrics_storage_up") == 0.0
    assert value(samples, "drtool_metrics_storage_errors_total") == errors_before + 1
    assert {name for name, _ in samples} == {
        "drtool_metrics_storage_up",
        "drtool_metrics_storage_errors_total",
    }
    assert READ_ERRORS.count >= 1
    assert "metrics: cannot read the state" in caplog.text
