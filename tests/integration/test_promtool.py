"""The metrics as Prometheus reads them: a real Prometheus scrape matches the runbook's
queries; the textfile and the scheduler's /metrics pass `promtool check metrics`; no series
carries a label Prometheus sets on the target itself (`job`, `instance`: it would come back as
`exported_job` and `{job="verify"}` would never match); and a storage read failure during a
scrape is a metric, not missing series."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from drtool.config import StorageConfig
from tests.fixtures.cli import Setup, make_setup
from tests.fixtures.procs import stop
from tests.fixtures.s3 import MotoServer
from tests.integration.bundle_support import configure_bundle
from tests.integration.test_scheduler import BACKUP_SCHEDULE, Scheduler, free_port, with_schedules

NOWHERE = "postgresql://drtool@127.0.0.1:9/nowhere"
TARGET_LABELS = {"job", "instance"}  # set by Prometheus on every scraped series


def require_tool(name: str) -> str:
    """A missing promtool/prometheus skips locally and fails in CI (scripts/system-deps.sh
    installs Debian's prometheus package, which has both)."""
    found = shutil.which(name)
    if found is None:
        message = f"{name} is needed (Debian: apt-get install prometheus; `make test` does it)"
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def require_promtool() -> str:
    return require_tool("promtool")


def promtool_check(text: str) -> None:
    done = subprocess.run(
        [require_promtool(), "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"promtool check metrics:\n{done.stdout}{done.stderr}\n{text}"
    assert not done.stdout.strip() and not done.stderr.strip(), done.stdout + done.stderr


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def target_labels(text: str, only: str = "") -> set[tuple[str, str]]:
    """(metric, label) pairs that use a label Prometheus reserves for the target."""
    return {
        (name, label)
        for name, labels in samples(text)
        for label, _ in labels
        if label in TARGET_LABELS and name.startswith(only)
    }


def test_the_textfile_passes_promtool_and_names_jobs_with_drtool_job(tmp_path: Path) -> None:
    storage = StorageConfig(url=(tmp_path / "storage").as_uri())
    setup = make_setup(tmp_path / "cfg", NOWHERE, None, storage)
    setup.doc["metrics"] = {"textfile": str(tmp_path / "drtool.prom")}
    setup.write()
    setup.run("backup", expect=None)  # fails (no database): a job-run record with a job label
    setup.run("status", expect=4)
    text = (tmp_path / "drtool.prom").read_text(encoding="utf-8")
    promtool_check(text)
    assert target_labels(text) == set()
    found = samples(text)
    assert found[("drtool_job_last_run_ok", (("drtool_job", "backup"),))] == 0.0
    assert found[("drtool_metrics_storage_up", ())] == 1.0


def test_the_replica_series_pass_promtool(tmp_path: Path) -> None:
    storage = StorageConfig(url=(tmp_path / "storage").as_uri())
    setup = make_setup(tmp_path / "cfg", NOWHERE, None, storage)
    setup.doc["storage"]["replicas"] = [
        {"name": "dr", "url": (tmp_path / "dr").as_uri()},
        {
            "name": "gone",
            "url": "s3://gone/prefix",
            "endpoint_url": "http://127.0.0.1:9",  # nothing listens: the replica is unreadable
            "region": "us-east-1",
            "max_attempts": 1,
        },
    ]
    setup.doc["objectives"] = {"replica_lag": "26h"}
    setup.doc["metrics"] = {"textfile": str(tmp_path / "drtool.prom")}
    setup.write()
    setup.run(
        "status", expect=4, extra_env={"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"}
    )
    text = (tmp_path / "drtool.prom").read_text(encoding="utf-8")
    promtool_check(text)
    found = samples(text)
    assert found[("drtool_replica_up", (("replica", "dr"),))] == 1.0
    assert found[("drtool_replica_lag_seconds", (("replica", "dr"),))] == 0.0
    assert found[("drtool_replica_up", (("replica", "gone"),))] == 0.0
    assert found[("drtool_replica_lag_objective_seconds", ())] == 26 * 3600.0
    assert found[("drtool_objective_breached", (("objective", "replica_lag"),))] == 1.0


def test_the_bundle_drift_series_pass_promtool(file_setup: Setup, tmp_path: Path) -> None:
    file_setup.doc["metrics"] = {"textfile": str(tmp_path / "drtool.prom")}
    configure_bundle(file_setup, tmp_path / "host")
    file_setup.run("backup")
    file_setup.run("status", expect=4, extra_env={"STRIPE_TOKEN": "changed"})
    text = (tmp_path / "drtool.prom").read_text(encoding="utf-8")
    promtool_check(text)
    found = samples(text)
    drift = "drtool_bundle_drift"
    assert found[(drift, (("kind", "env"), ("name", "STRIPE_TOKEN")))] == 1.0
    assert found[(drift, (("kind", "env"), ("name", "APP_ENCRYPTION_KEY")))] == 0.0
    assert found[(drift, (("kind", "file"), ("name", "app.env")))] == 0.0
    assert found[("drtool_objective_breached", (("objective", "bundle_drift"),))] == 1.0


def test_the_scheduler_metrics_pass_promtool(tmp_path: Path) -> None:
    storage = StorageConfig(url=(tmp_path / "storage").as_uri())
    setup = with_schedules(
        make_setup(tmp_path / "cfg", NOWHERE, None, storage), backup=BACKUP_SCHEDULE
    )
    sched = Scheduler(setup, "--run-now", "backup")
    try:
        sched.http_ready()
        sched.wait_for(lambda e: e.get("event") == "run")
        code, text = sched.get("/metrics")
        assert code == 200
        promtool_check(text)
        # The state metrics (services/jobs/metrics.py); the scheduler's own counters: below.
        assert target_labels(text, only="drtool_job_last_") == set()
        found = samples(text)
        assert found[("drtool_job_last_run_ok", (("drtool_job", "backup"),))] == 0.0
        assert found[("drtool_metrics_storage_up", ())] == 1.0
    finally:
        assert sched.stop() == 0


def test_no_scheduler_series_carries_a_target_label(tmp_path: Path) -> None:
    storage = StorageConfig(url=(tmp_path / "storage").as_uri())
    setup = with_schedules(
        make_setup(tmp_path / "cfg", NOWHERE, None, storage), backup=BACKUP_SCHEDULE
    )
    sched = Scheduler(setup)
    try:
        sched.http_ready()
        _, text = sched.get("/metrics")
        assert target_labels(text) == set()
    finally:
        assert sched.stop() == 0


def test_a_storage_read_failure_during_a_scrape_is_a_metric(
    tmp_path: Path, moto_server: MotoServer
) -> None:
    bucket = moto_server.create_bucket()
    storage = StorageConfig(
        url=f"s3://{bucket}/prefix",
        endpoint_url=moto_server.endpoint_url,
        region=moto_server.region,
        access_key_id=moto_server.access_key_id,
        secret_access_key=moto_server.secret_access_key,
    )
    setup = with_schedules(
        make_setup(tmp_path / "cfg", NOWHERE, None, storage), backup=BACKUP_SCHEDULE
    )
    moto_server.empty_bucket(bucket)  # the bucket is gone: every read fails
    sched = Scheduler(setup)
    try:
        sched.http_ready()
        code, text = sched.get("/metrics")
        assert code == 200
        promtool_check(text)
        found = samples(text)
        assert found[("drtool_metrics_storage_up", ())] == 0.0
        assert found[("drtool_metrics_storage_errors_total", ())] >= 1.0
        assert "drtool_scheduler_up" in {name for name, _ in found}
        assert not any(name.startswith("drtool_objective_") for name, _ in found)
        assert "cannot read the state" in "".join(sched.raw)
    finally:
        assert sched.stop() == 0


@contextmanager
def prometheus(tmp_path: Path, target: str) -> Iterator[str]:
    """A real Prometheus server scraping ``target`` every second as scrape job ``drtool``;
    yields its base URL. Its own process, stopped at the end (no service is involved)."""
    binary = require_tool("prometheus")
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: drtool\n    static_configs: [{{targets: ['{target}']}}]\n",
        encoding="utf-8",
    )
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc, timeout=30)
        log.close()


def query_until(base: str, expr: str, log: Path, timeout: float = 120) -> list[dict[str, Any]]:
    """The instant-query result for ``expr`` once it is non-empty (Prometheus needs a scrape
    or two first)."""
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                doc = json.load(response)
            result: list[dict[str, Any]] = doc["data"]["result"]
            if result:
                return result
        except OSError:
            pass  # not listening yet
        time.sleep(0.5)
    raise AssertionError(f"no result for {expr}; prometheus log:\n" + log.read_text())


def test_a_real_prometheus_scrape_matches_the_runbook_queries(tmp_path: Path) -> None:
    """Scraped by Prometheus, the job's series keep drtool_job and get the scrape job's own
    ``job`` label (no ``exported_job``), so the alert queries of runbooks/alerts.md match."""
    storage = StorageConfig(url=(tmp_path / "storage").as_uri())
    setup = with_schedules(
        make_setup(tmp_path / "cfg", NOWHERE, None, storage), backup=BACKUP_SCHEDULE
    )
    sched = Scheduler(setup, "--run-now", "backup")  # the backup fails: no database
    try:
        sched.http_ready()
        sched.wait_for(lambda e: e.get("event") == "run")
        with prometheus(tmp_path, f"127.0.0.1:{sched.port}") as base:
            log = tmp_path / "prometheus.log"
            [series] = query_until(base, 'drtool_job_last_run_ok{drtool_job="backup"} == 0', log)
            labels = series["metric"]
            assert labels["job"] == "drtool" and labels["drtool_job"] == "backup", labels
            assert not any(name.startswith("exported_") for name in labels), labels
            [up] = query_until(base, "drtool_metrics_storage_up == 1", log)
            assert up["metric"]["job"] == "drtool"
    finally:
        assert sched.stop() == 0
