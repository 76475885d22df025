"""Replication's run records and metrics: one job per replica (`replicate.<name>`), its own
`drtool_job` series, and the replica-labelled `drtool_replicate_*` families."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from drtool.catalog.records.runs import check_job, record_run
from drtool.errors import UsageError
from drtool.services.jobs.metrics import collect_registry, write_textfile
from tests.integration.test_promtool import promtool_check
from tests.unit.dr_state import T0, Clock, make_context
from tests.unit.test_metrics import parse, value


def test_a_replica_scoped_job_name_is_valid_and_others_are_not() -> None:
    assert check_job("replicate.dr-region") == "replicate.dr-region"
    assert check_job("replicate.dr_2") == "replicate.dr_2"
    for bad in ("replicate.", "replicate..x", "replicate.Dr", "Replicate.x", "a/b", "x.y.z"):
        with pytest.raises(UsageError):
            check_job(bad)


def test_each_replica_has_its_job_series_and_replica_labelled_series(tmp_path: Path) -> None:
    textfile = tmp_path / "drtool.prom"
    ctx = make_context(
        tmp_path, Clock(T0 + timedelta(hours=1)), metrics={"textfile": str(textfile)}
    )
    stats = {"items_copied": 2.0, "items_failed": 0.0, "bytes_copied": 1234.0}
    record_run(ctx.storage, "replicate.dr", at=T0, ok=True, seconds=5, stats=stats)
    record_run(ctx.storage, "replicate.far", at=T0, ok=False, seconds=1, error="x", exit_code=1)
    write_textfile(ctx.config, collect_registry(ctx))
    samples = parse(textfile)
    assert value(samples, "drtool_job_last_run_ok", drtool_job="replicate.dr") == 1.0
    assert value(samples, "drtool_replicate_last_run_ok", replica="dr") == 1.0
    assert value(samples, "drtool_replicate_last_run_ok", replica="far") == 0.0
    ts = T0.timestamp()
    assert value(samples, "drtool_replicate_last_success_timestamp_seconds", replica="dr") == ts
    assert value(samples, "drtool_replicate_last_copied_bytes", replica="dr") == 1234.0
    promtool_check(textfile.read_text(encoding="utf-8"))
    names = {(name, labels) for name, labels in samples}
    assert ("drtool_replicate_last_success_timestamp_seconds", (("replica", "far"),)) not in names
