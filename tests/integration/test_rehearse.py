"""DR drills through the CLI, with real ephemeral clusters: the sample passes with exact counts;
failed checks and breached objectives exit 4 naming them; a corrupted backup exits 3 and is
recorded; production is never the scratch; the scratch never outlives the drill (pass, fail,
SIGTERM) unless --keep."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drtool.crypto.age import ENCRYPTED_CHUNK_SIZE
from drtool.pg.cluster.ephemeral import EphemeralCluster
from drtool.pg.conn import parse_target
from drtool.pg.scratch import server_identity
from tests.fixtures.cli import DRTOOL, Setup
from tests.fixtures.pg import TEST_PASSWORD
from tests.integration.restore_support import (
    backup,
    dump_path,
    payload_start,
    read_manifest,
    scalar,
    storage_root,
    target_password,  # noqa: F401 (autouse)
)

RESULT_FIELDS = {
    "id",
    "backup_id",
    "verdict",
    "rto_seconds",
    "rpo_seconds",
    "rpo_worst_gap_seconds",
    "objectives",
    "stages",
    "tables",
    "checks",
}
USERS_CHECK = {"name": "users present", "sql": "select count(*) > 0 from auth.users"}


@pytest.fixture
def drill_tmp() -> Iterator[Path]:
    """TMPDIR for the drill: the ephemeral cluster's directory appears here, so the test can
    see it come and go. Directly under /tmp: the postgres account must reach it as root."""
    path = Path(tempfile.mkdtemp(prefix="drtool-drilltest-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def postgres_processes_under(path: Path) -> list[int]:
    """Postgres processes whose command line names a directory under ``path``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if comm in ("postgres", "postmaster") and str(path) in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def assert_scratch_gone(drill_tmp: Path) -> None:
    assert list(drill_tmp.iterdir()) == []
    assert postgres_processes_under(drill_tmp) == []


def rehearse(setup: Setup, drill_tmp: Path, *args: str, expect: int = 0) -> Any:
    return setup.run("rehearse", *args, expect=expect, extra_env={"TMPDIR": str(drill_tmp)})


def drill_record(setup: Setup, drill_id: str) -> dict[str, Any]:
    path = storage_root(setup) / "drills" / f"{drill_id}.json"
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def drill_records(setup: Setup) -> list[Path]:
    folder = storage_root(setup) / "drills"
    return sorted(folder.glob("*.json")) if folder.exists() else []


def scratch_databases(cluster: EphemeralCluster) -> list[str]:
    with cluster.connect() as conn:
        rows = conn.execute(
            "select datname from pg_database where datname like 'drtool\\_drill\\_%'"
        ).fetchall()
    return [r[0] for r in rows]


def test_rehearsal_of_the_sample_passes_with_exact_counts_and_is_recorded(
    file_setup: Setup, sample_db: Any, drill_tmp: Path, tmp_path: Path
) -> None:
    file_setup.doc["rehearsal"] = {"checks": [USERS_CHECK]}
    file_setup.write()
    backup_id = backup(file_setup)
    manifest = read_manifest(file_setup, backup_id)
    report = tmp_path / "drill.md"
    out = rehearse(file_setup, drill_tmp, "--report", str(report), "--json")
    doc = out.json
    assert set(doc) >= RESULT_FIELDS and doc["ok"] is True
    assert doc["verdict"] == "pass" and doc["backup_id"] == backup_id
    assert {t["table"]: t["actual"] for t in doc["tables"]} == manifest["tables"]
    assert {t["table"]: t["expected"] for t in doc["tables"]} == manifest["tables"]
    assert all(t["ok"] for t in doc["tables"]) and len(doc["tables"]) == len(manifest["tables"])
    checks = {c["name"]: c for c in doc["checks"]}
    assert checks["users present"]["ok"] is True
    # Supabase-shaped: its API roles and the auth schema come back without manual steps.
    assert checks["roles present"]["ok"] and "service_role" in checks["roles present"]["detail"]
    assert checks["schemas present"]["ok"] and "auth" in checks["schemas present"]["detail"]
    assert set(doc["stages"]) == {"scratch", "prepare", "fetch_decrypt", "restore", "validate"}
    assert 0 < sum(doc["stages"].values()) <= doc["rto_seconds"]
    assert doc["rpo_seconds"] > 0 and doc["rpo_worst_gap_seconds"] >= doc["rpo_seconds"]
    assert doc["objectives"]["rto_met"] and doc["objectives"]["rpo_met"]
    assert TEST_PASSWORD not in out.stdout + out.stderr
    assert_scratch_gone(drill_tmp)
    # The record, committed like any item.
    record = drill_record(file_setup, doc["id"])
    assert record["kind"] == "drill" and record["verdict"] == "pass"
    assert record["rto_seconds"] == doc["rto_seconds"] and record["rpo_seconds"] > 0
    assert record["scratch"]["removed"] is True and record["host"]
    # The report a reviewer files.
    text = report.read_text()
    assert stat.S_IMODE(report.stat().st_mode) == 0o644
    assert "**Verdict: PASS**" in text and "RTO" in text and "RPO" in text
    assert backup_id in text and "Sign-off" in text and "public.contacts" in text
    # list --kind drill and show.
    listed = file_setup.run("list", "--kind", "drill", "--json").json["items"]
    assert [(i["id"], i["kind"], i["verdict"]) for i in listed] == [(doc["id"], "drill", "pass")]
    shown = file_setup.run("show", doc["id"], "--json").json
    assert shown["id"] == doc["id"] and shown["rto_seconds"] == doc["rto_seconds"]
    human = file_setup.run("show", doc["id"]).stdout
    assert "PASS" in human and "RTO" in human and backup_id in human
    everything = [i["id"] for i in file_setup.run("list", "--json").json["items"]]
    assert everything == [doc["id"], backup_id]
    # status sees the drill.
    status = file_setup.run("status", "--json", expect=None).json
    assert status["last_drill"]["id"] == doc["id"]


def test_rehearsal_from_s3_is_recorded_in_s3(s3_setup: Setup, drill_tmp: Path) -> None:
    backup_id = backup(s3_setup)
    doc = rehearse(s3_setup, drill_tmp, "--json").json
    assert doc["verdict"] == "pass" and doc["backup_id"] == backup_id
    assert doc["backup"]["storage"].startswith("s3://")
    listed = s3_setup.run("list", "--kind", "drill", "--json").json["items"]
    assert [i["id"] for i in listed] == [doc["id"]]
    assert s3_setup.run("show", doc["id"], "--json").json["verdict"] == "pass"
    assert_scratch_gone(drill_tmp)


def test_failing_configured_check_exits_4_naming_it(
    file_setup: Setup, drill_tmp: Path, tmp_path: Path
) -> None:
    file_setup.doc["rehearsal"] = {
        "checks": [
            USERS_CHECK,
            {"name": "no contacts at all", "sql": "select count(*) = 0 from public.contacts"},
            {"name": "broken sql", "sql": "select nonsense from nowhere"},
        ]
    }
    file_setup.write()
    backup(file_setup)
    report = tmp_path / "drill.md"
    out = rehearse(file_setup, drill_tmp, "--report", str(report), expect=4)
    assert "check 'no contacts at all' failed: returned false" in out.stdout
    assert "check 'broken sql' failed" in out.stdout and "nowhere" in out.stdout
    assert "users present: ok" in out.stdout
    [path] = drill_records(file_setup)
    record = json.loads(path.read_text())
    assert record["verdict"] == "fail" and len(record["failures"]) == 2
    text = report.read_text()
    assert "**Verdict: FAIL**" in text and "Check 'no contacts at all' failed" in text
    assert_scratch_gone(drill_tmp)


def test_impossible_rto_objective_exits_4_naming_rto(file_setup: Setup, drill_tmp: Path) -> None:
    file_setup.doc["objectives"] = {"rpo": "24h", "rto": "1s"}
    file_setup.write()
    backup(file_setup)
    doc = rehearse(file_setup, drill_tmp, "--json", expect=4).json
    assert doc["ok"] is False and doc["verdict"] == "fail"
    assert doc["objectives"]["rto_met"] is False and doc["objectives"]["rpo_met"] is True
    [failure] = doc["failures"]
    assert failure.startswith("RTO ") and "objective rto 1s" in failure
    assert all(t["ok"] for t in doc["tables"])
    assert_scratch_gone(drill_tmp)


def test_scratch_pointing_at_production_is_refused_and_creates_nothing(
    file_setup: Setup, sample_db: Any, pg_cluster: EphemeralCluster, drill_tmp: Path
) -> None:
    backup(file_setup)
    refused = rehearse(file_setup, drill_tmp, "--scratch", sample_db.dsn, expect=5)
    assert "--scratch points at the production database" in refused.stderr
    # The same database spelled another way (key=value, localhost) is still production.
    port = pg_cluster.port
    spelled = f"host=localhost port={port} dbname=sample user=postgres"
    file_setup.doc["rehearsal"] = {"scratch": spelled}
    file_setup.write()
    refused = rehearse(file_setup, drill_tmp, expect=5)
    assert "rehearsal.scratch points at the production database" in refused.stderr
    assert drill_records(file_setup) == [] and scratch_databases(pg_cluster) == []
    assert_scratch_gone(drill_tmp)


def test_production_is_recognised_by_system_identifier_and_database(
    sample_db: Any, pg_cluster: EphemeralCluster
) -> None:
    production = parse_target(sample_db.dsn, TEST_PASSWORD)
    same = server_identity(production, "test")
    other_db = server_identity(production.with_dbname("postgres"), "test")
    assert same.system_identifier is not None
    assert same.same_database(server_identity(production, "test"))
    assert not same.same_database(other_db)
    with EphemeralCluster(password=TEST_PASSWORD) as other:
        other.create_database("sample")
        elsewhere = parse_target(other.dsn("sample"), TEST_PASSWORD)
        assert not same.same_database(server_identity(elsewhere, "test"))


def test_scratch_on_a_server_uses_a_fresh_database_dropped_afterwards_or_kept(
    file_setup: Setup, pg_cluster: EphemeralCluster, drill_tmp: Path
) -> None:
    backup(file_setup)
    server = pg_cluster.dsn("postgres")
    doc = rehearse(file_setup, drill_tmp, "--scratch", server, "--json").json
    assert doc["verdict"] == "pass", doc["failures"]
    name = doc["scratch"]["target"].rsplit("/", 1)[1]
    assert name.startswith("drtool_drill_") and doc["scratch"]["kind"] == "server"
    assert doc["restore_record_id"] and doc["scratch"]["removed"] is True
    assert scratch_databases(pg_cluster) == []
    kept = rehearse(file_setup, drill_tmp, "--scratch", server, "--keep", "--json").json
    name = kept["scratch"]["target"].rsplit("/", 1)[1]
    try:
        assert kept["verdict"] == "pass" and kept["scratch"]["kept"] is True
        assert scratch_databases(pg_cluster) == [name]
        assert name in kept["kept"]["dsn"] and TEST_PASSWORD not in json.dumps(kept)
        rows = scalar(pg_cluster.dsn(name), TEST_PASSWORD, "select count(*) from auth.users")
        assert rows == next(t["actual"] for t in kept["tables"] if t["table"] == "auth.users")
    finally:
        pg_cluster.drop_database(name)
    assert_scratch_gone(drill_tmp)


def test_corrupted_backup_exits_3_and_the_record_says_so(
    file_setup: Setup, drill_tmp: Path, tmp_path: Path
) -> None:
    backup_id = backup(file_setup)
    path = dump_path(file_setup, backup_id)
    data = bytearray(path.read_bytes())
    start = payload_start(bytes(data))
    chunks = (len(data) - start) // ENCRYPTED_CHUNK_SIZE
    victim = chunks // 2
    data[start + victim * ENCRYPTED_CHUNK_SIZE + 100] ^= 0x01
    path.write_bytes(bytes(data))
    report = tmp_path / "drill.md"
    out = rehearse(file_setup, drill_tmp, "--report", str(report), expect=3)
    assert f"chunk {victim}" in out.stderr
    [record_path] = drill_records(file_setup)
    record = json.loads(record_path.read_text())
    assert record["verdict"] == "fail" and record["backup_id"] == backup_id
    assert f"chunk {victim}" in record["integrity_error"]
    assert record["failures"][0].startswith("integrity: ")
    assert record["rto_seconds"] is None and record["rpo_seconds"] > 0
    text = report.read_text()
    assert "**Verdict: FAIL**" in text and "failed its integrity check" in text
    assert "RPO" in text and "RTO" in text
    assert_scratch_gone(drill_tmp)
    status = file_setup.run("status", "--json", expect=4).json
    assert status["last_drill"]["verdict"] == "fail"


def test_sigterm_mid_drill_stops_and_removes_the_ephemeral_cluster(
    file_setup: Setup, drill_tmp: Path
) -> None:
    # A slow check holds the drill in validation while the cluster runs.
    file_setup.doc["rehearsal"] = {
        "checks": [{"name": "slow", "sql": "select pg_sleep(30) is not null"}]
    }
    file_setup.write()
    backup(file_setup)
    proc = file_setup.popen("rehearse", extra_env={"TMPDIR": str(drill_tmp)})
    try:
        deadline = time.monotonic() + 60
        while not postgres_processes_under(drill_tmp):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the drill's cluster never started"
            time.sleep(0.05)
        while not drill_query_running(drill_tmp):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the slow check never started"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM
    assert_scratch_gone(drill_tmp)
    assert drill_records(file_setup) == []


def drill_query_running(drill_tmp: Path) -> bool:
    """A backend of this drill's scratch cluster (a child of its postmaster, under
    ``drill_tmp``) is running a query (its process title)."""
    postmasters = set(postgres_processes_under(drill_tmp))
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().decode(errors="replace")
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid in postmasters and title.startswith("postgres: ") and "SELECT" in title:
            return True
    return False


def test_keep_leaves_a_reachable_ephemeral_cluster_until_removed(
    file_setup: Setup, drill_tmp: Path
) -> None:
    backup(file_setup)
    doc = rehearse(file_setup, drill_tmp, "--keep", "--json").json
    kept = doc["kept"]
    try:
        assert doc["verdict"] == "pass" and doc["scratch"]["kept"] is True
        password_file = Path(kept["password_file"])
        assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["PGPASSFILE"] = str(password_file)
        psql = shutil.which("psql") or "/usr/lib/postgresql/15/bin/psql"
        done = subprocess.run(
            [psql, "-XAtc", "select count(*) from public.contacts", kept["dsn"]],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        contacts = next(t["actual"] for t in doc["tables"] if t["table"] == "public.contacts")
        assert int(done.stdout.strip()) == contacts
        assert postgres_processes_under(drill_tmp)
    finally:
        subprocess.run(["bash", "-c", kept["remove_hint"]], capture_output=True, check=False)
    assert_scratch_gone(drill_tmp)


def test_demo_runs_backup_verify_rehearse_status_and_reports_rto_and_rpo(
    pg_cluster: EphemeralCluster, drill_tmp: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRTOOL_", "PG"))}
    env["TMPDIR"] = str(drill_tmp)
    done = subprocess.run(
        [*DRTOOL, "demo", "--scale", "0.05", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    commands = [step["command"].split()[1] for step in doc["steps"]]
    assert commands[:5] == ["backup", "list", "verify", "rehearse", "status"]
    assert commands[5:] == ["stream", "application:", "stream", "restore"]
    assert all(step["ok"] for step in doc["steps"])
    # Point in time: the contacts deleted by mistake are back in the recovered database.
    recovery = doc["recovery"]
    assert recovery["deleted"] > 0
    assert recovery["contacts_recovered"] == recovery["contacts_before"]
    assert doc["rto_seconds"] > 0 and doc["rpo_seconds"] > 0
    assert_scratch_gone(drill_tmp)
