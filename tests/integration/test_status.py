"""`status` through the real CLI against real backups: exit 0 when every objective holds, exit 4
naming the breach (RPO, no backup, failed verification, failed or slow or stale drill), never
reading a data object; and the metrics textfile written after `backup` and `status`."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from drtool.config import StorageConfig
from drtool.ids import new_id
from tests.fixtures.cli import CliResult, Setup, make_setup

STATUS_FIELDS = {
    "ok",
    "last_backup",
    "last_verify",
    "last_drill",
    "rpo_exposure_seconds",
    "objectives",
    "breaches",
}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory, sample_db: Any) -> tuple[Setup, str]:
    """One backup made once for the module; each test gets its own copy of the storage."""
    base = tmp_path_factory.mktemp("status-pristine")
    storage = StorageConfig(url=(base / "storage").as_uri())
    setup = make_setup(base / "cfg", sample_db.dsn, sample_db.password, storage)
    return setup, setup.run("backup").stdout.strip().splitlines()[-1]


@pytest.fixture
def backed_up(pristine: tuple[Setup, str], tmp_path: Path) -> tuple[Setup, str]:
    source, backup_id = pristine
    setup = source.clone(tmp_path)
    return setup, backup_id


def storage_dir(setup: Setup) -> Path:
    return Path(setup.doc["storage"]["url"].removeprefix("file://"))


def status(setup: Setup, expect: int) -> CliResult:
    result = setup.run("status", "--json", expect=expect)
    assert set(result.json) >= STATUS_FIELDS
    assert result.json["ok"] is (expect == 0)
    return result


def put_drill(setup: Setup, at: datetime, verdict: str, rto: float) -> str:
    drill_id = new_id(at)
    doc = {
        "id": drill_id,
        "backup_id": None,
        "created_at": at.isoformat(),
        "verdict": verdict,
        "rto_seconds": rto,
        "rpo_seconds": 60.0,
    }
    path = storage_dir(setup) / "drills" / f"{drill_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc), encoding="utf-8")
    return drill_id


def test_status_after_a_backup_is_ok_with_every_field_on_each_backend(any_setup: Setup) -> None:
    started = datetime.now(UTC)
    backup_id = any_setup.run("backup").stdout.strip().splitlines()[-1]
    doc = status(any_setup, 0).json
    assert doc["breaches"] == [] and doc["last_verify"] is None and doc["last_drill"] is None
    backup = doc["last_backup"]
    assert backup["id"] == backup_id
    assert started - timedelta(seconds=1) <= datetime.fromisoformat(backup["at"])
    assert 0 <= backup["age_seconds"] < 120 and backup["size"] > 0
    assert doc["rpo_exposure_seconds"] == backup["age_seconds"]
    assert doc["objectives"]["rpo_seconds"] == 86400 and doc["objectives"]["rto"] == "1h"
    [job] = doc["jobs"]
    assert (job["job"], job["last_ok"], job["item_id"]) == ("backup", True, backup_id)
    any_setup.run("verify")
    doc = status(any_setup, 0).json
    assert doc["last_verify"]["id"] == backup_id and doc["last_verify"]["ok"] is True
    human = any_setup.run("status")
    assert human.stdout.startswith("status: ok")
    assert f"last backup:  {backup_id}" in human.stdout


def test_backup_older_than_the_rpo_objective_exits_4(backed_up: tuple[Setup, str]) -> None:
    setup, backup_id = backed_up
    setup.doc["objectives"] = {"rpo": "1s"}
    setup.write()
    time.sleep(1.5)
    doc = status(setup, 4).json
    [breach] = doc["breaches"]
    assert f"newest backup {backup_id}" in breach and "objective rpo 1s" in breach
    assert doc["rpo_exposure_seconds"] > 1
    human = setup.run("status", expect=4)
    assert human.stdout.startswith("status: BREACHED")
    assert (
        f"  - newest backup {backup_id} is " in human.stdout and "objective rpo 1s" in human.stdout
    )
    assert "Traceback" not in human.stderr


def test_no_complete_backup_exits_4(tmp_path: Path, sample_db: Any) -> None:
    storage = StorageConfig(url=(tmp_path / "storage").as_uri())
    setup = make_setup(tmp_path / "cfg", sample_db.dsn, sample_db.password, storage)
    doc = status(setup, 4).json
    assert doc["last_backup"] is None and doc["rpo_exposure_seconds"] is None
    [breach] = doc["breaches"]
    assert breach.startswith("no complete backup")
    assert "no complete backup" in setup.run("status", expect=4).stdout


def test_a_failed_verification_exits_4_and_shows_the_verify_job_failure(
    backed_up: tuple[Setup, str],
) -> None:
    setup, backup_id = backed_up
    dump = next((storage_dir(setup) / "backups" / backup_id).glob("dump.*"))
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0x01
    dump.write_bytes(bytes(data))
    setup.run("verify", expect=3)
    doc = status(setup, 4).json
    [breach] = doc["breaches"]
    assert breach.startswith(f"last verification failed: backup {backup_id}")
    assert doc["last_verify"] == {**doc["last_verify"], "id": backup_id, "ok": False}
    verify_job = next(job for job in doc["jobs"] if job["job"] == "verify")
    assert verify_job["last_ok"] is False and verify_job["last_failure_exit_code"] == 3
    assert "1 of 1 item(s) failed verification" in verify_job["last_failure_error"]
    human = setup.run("status", expect=4).stdout
    assert "last verify:  backup" in human and "FAILED" in human
    assert "verify       " in human and "exit 3 (still failing)" in human


def test_drills_failed_slow_or_stale_exit_4(backed_up: tuple[Setup, str]) -> None:
    setup, _ = backed_up
    setup.doc["objectives"] = {"rpo": "24h", "rto": "1h", "drill_max_age": "7d"}
    setup.write()
    now = datetime.now(UTC)
    assert "no drill recorded" in status(setup, 4).json["breaches"][0]
    drill_id = put_drill(setup, now - timedelta(minutes=5), "fail", 100.0)
    doc = status(setup, 4).json
    assert doc["last_drill"]["id"] == drill_id and doc["last_drill"]["verdict"] == "fail"
    assert doc["breaches"] == [f"last drill {drill_id} failed (verdict fail)"]
    drill_id = put_drill(setup, now - timedelta(minutes=4), "pass", 100.0)
    doc = status(setup, 0).json
    assert doc["last_drill"]["rto_seconds"] == 100.0
    drill_id = put_drill(setup, now - timedelta(minutes=3), "pass", 7200.0)
    assert "objective rto 1h" in status(setup, 4).json["breaches"][0]
    for path in (storage_dir(setup) / "drills").iterdir():
        path.unlink()
    put_drill(setup, now - timedelta(days=8), "pass", 100.0)
    assert "objective drill_max_age 1w" in status(setup, 4).json["breaches"][0]


def test_status_reads_no_data_object(backed_up: tuple[Setup, str]) -> None:
    setup, backup_id = backed_up
    for obj in (storage_dir(setup) / "backups" / backup_id).iterdir():
        if obj.name != "manifest.json":
            obj.unlink()
    result = setup.run("status", "--json")
    assert result.json["ok"] is True and result.json["last_backup"]["id"] == backup_id
    assert result.stderr == "", "nothing to complain about: no data object was read"


def parse_metrics(path: Path) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(path.read_text(encoding="utf-8")):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_metrics_textfile_is_written_after_backup_and_status(file_setup: Setup) -> None:
    textfile = file_setup.dir / "textfile" / "drtool.prom"
    textfile.parent.mkdir()
    file_setup.doc["metrics"] = {"textfile": "textfile/drtool.prom"}  # relative to the config
    file_setup.write()
    backup_id = file_setup.run("backup").stdout.strip().splitlines()[-1]
    after_backup = parse_metrics(textfile)
    manifest = json.loads(
        (storage_dir(file_setup) / "backups" / backup_id / "manifest.json").read_text()
    )
    size = sum(o["size"] for o in manifest["objects"])
    assert after_backup["drtool_backup_last_size_bytes"][()] == size
    assert after_backup["drtool_job_last_run_ok"][(("drtool_job", "backup"),)] == 1.0
    success = after_backup["drtool_job_last_success_timestamp_seconds"][(("drtool_job", "backup"),)]
    assert abs(success - time.time()) < 120
    assert after_backup["drtool_job_last_duration_seconds"][(("drtool_job", "backup"),)] > 0
    assert 0 <= after_backup["drtool_rpo_seconds"][()] < 120
    assert after_backup["drtool_rpo_objective_seconds"][()] == 86400
    assert after_backup["drtool_objective_breached"][(("objective", "rpo"),)] == 0.0
    file_setup.run("verify")
    after_verify = parse_metrics(textfile)
    assert after_verify["drtool_verify_items_verified"][()] == 1
    assert after_verify["drtool_verify_items_failed"][()] == 0
    assert after_verify["drtool_verify_last_ok"][()] == 1.0
    file_setup.doc["objectives"] = {"rpo": "1s"}
    file_setup.write()
    time.sleep(1.2)
    # Held open, the file before status keeps its inode (no reuse) and, if status replaces it by
    # rename rather than rewriting it in place, its old content.
    held = textfile.open("rb")
    before = held.read()
    file_setup.run("status", expect=4)
    after_status = parse_metrics(textfile)
    assert after_status["drtool_objective_breached"][(("objective", "rpo"),)] == 1.0
    assert after_status["drtool_status_ok"][()] == 0.0
    with held:
        held.seek(0)
        assert held.read() == before, "replaced by rename, not rewritten in place"
        assert os.fstat(held.fileno()).st_ino != textfile.stat().st_ino
    assert os.listdir(textfile.parent) == ["drtool.prom"]
