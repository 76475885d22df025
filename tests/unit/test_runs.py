"""Job-run records (runs/<job>.json) and drill lookups: validated names, read-modify-write that
keeps the last success through failures, redacted and truncated errors, tolerant readers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from drtool.catalog.records.drills import drill_ids, latest_drill
from drtool.catalog.records.runs import (
    MAX_ERROR_CHARS,
    list_runs,
    read_run,
    record_run,
    run_key,
)
from drtool.errors import UsageError
from drtool.ids import id_time, new_id
from drtool.log import REDACTOR
from drtool.storage.local import LocalStorage

T0 = datetime(2026, 11, 26, 2, 15, tzinfo=UTC)


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "storage")


@pytest.mark.parametrize("name", ["", "Backup", "1backup", "../x", "a/b", "a" * 42, "x y"])
def test_invalid_job_names_are_refused_before_any_key_is_built(name: str) -> None:
    with pytest.raises(UsageError):
        run_key(name)


def test_job_names_map_to_one_key_each() -> None:
    assert run_key("backup") == "runs/backup.json"
    assert run_key("export-users") == "runs/export-users.json"


def test_a_failure_keeps_the_last_success_and_a_success_keeps_the_last_failure(
    storage: LocalStorage,
) -> None:
    assert read_run(storage, "backup") is None
    first = record_run(storage, "backup", at=T0, ok=True, seconds=12.34567, item_id="a")
    assert (first.last_ok, first.last_success_at, first.last_success_seconds) == (True, T0, 12.346)
    assert first.last_failure_at is None
    t1 = T0 + timedelta(days=1)
    failed = record_run(storage, "backup", at=t1, ok=False, seconds=3, error="boom", exit_code=1)
    assert (failed.last_ok, failed.last_run_at, failed.last_success_at) == (False, t1, T0)
    assert (failed.last_failure_error, failed.last_failure_exit_code) == ("boom", 1)
    assert failed.item_id is None
    t2 = t1 + timedelta(days=1)
    again = record_run(storage, "backup", at=t2, ok=True, seconds=5, stats={"n": 2})
    assert (again.last_ok, again.last_success_at, again.last_failure_at) == (True, t2, t1)
    assert again.last_failure_error == "boom" and again.stats == {"n": 2.0}
    assert read_run(storage, "backup") == again
    doc = json.loads(storage.get_bytes("runs/backup.json"))
    assert doc["format"] == "drtool-job-run" and doc["version"] == 1


def test_recorded_errors_are_redacted_and_truncated(storage: LocalStorage) -> None:
    REDACTOR.add("registered-secret-value")
    error = (
        "connect postgresql://app:hunter2pw@db/x failed; registered-secret-value; "
        "AGE-SECRET-KEY-1QQQQ " + "x" * 2000
    )
    run = record_run(storage, "verify", at=T0, ok=False, seconds=1, error=error, exit_code=3)
    stored = storage.get_bytes("runs/verify.json").decode()
    for secret in ("hunter2pw", "registered-secret-value", "AGE-SECRET-KEY-1QQQQ"):
        assert secret not in stored
    assert run.last_failure_error is not None
    assert len(run.last_failure_error) == MAX_ERROR_CHARS
    assert run.last_failure_error.endswith("...")


def test_list_runs_skips_damaged_misnamed_and_foreign_records(
    storage: LocalStorage, caplog: pytest.LogCaptureFixture
) -> None:
    record_run(storage, "verify", at=T0, ok=True, seconds=1)
    record_run(storage, "backup", at=T0, ok=True, seconds=1)
    storage.put_bytes("runs/prune.json", b"{not json")
    storage.put_bytes("runs/Weird.json", b"{}")
    storage.put_bytes("runs/nested/backup.json", b"{}")
    moved = json.loads(storage.get_bytes("runs/backup.json"))
    storage.put_bytes("runs/archive.json", json.dumps(moved).encode())  # says job "backup"
    newer = {**moved, "job": "rehearse", "version": 99}
    storage.put_bytes("runs/rehearse.json", json.dumps(newer).encode())
    assert [run.job for run in list_runs(storage)] == ["backup", "verify"]
    assert read_run(storage, "prune") is None
    assert read_run(storage, "rehearse") is None
    assert "runs/prune.json" in caplog.text and "newer drtool" in caplog.text


def test_latest_drill_tolerates_a_missing_prefix_and_falls_back_past_a_damaged_record(
    storage: LocalStorage,
) -> None:
    assert latest_drill(storage) is None and drill_ids(storage) == []
    older, newer = new_id(T0), new_id(T0 + timedelta(hours=1))
    storage.put_bytes(f"drills/{older}.json", json.dumps({"verdict": "pass"}).encode())
    storage.put_bytes(f"drills/{newer}.json", b"\xff not json")
    storage.put_bytes("drills/not-an-id.json", b"{}")
    storage.put_bytes(f"drills/{newer}/report.json", b"{}")
    assert drill_ids(storage) == [older, newer]
    found = latest_drill(storage)
    assert found is not None and (found.id, found.verdict) == (older, "pass")
    assert found.created_at == id_time(older)  # a minimal older record: its id's time
    storage.put_bytes(f"drills/{newer}.json", json.dumps({"id": newer, "verdict": "fail"}).encode())
    found = latest_drill(storage)
    assert found is not None and (found.id, found.verdict) == (newer, "fail")
