"""Backups under real faults: killed processes, severed connections, locks, old binaries,
and a scan of every child's command line for secrets."""

from __future__ import annotations

import os
import signal
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.cli import Setup, make_setup

BIG_ROWS = 400_000  # ~200 MB of table data: a dump that streams for a while


@pytest.fixture(scope="module")
def big_db(pg_cluster: Any) -> str:
    """A database whose dump lasts long enough to be interrupted mid-stream."""
    dsn = pg_cluster.create_database("bigdump")
    with pg_cluster.connect(dbname="bigdump") as conn:
        # Random hex compresses only ~2x: the stored stream lags the dump by little, so a
        # fault injected once the first part is stored meets pg_dump still reading (a body
        # that compressed 13x let pg_dump finish before the first 5 MiB part was stored).
        randoms = " || ".join(["md5(random()::text)"] * 16)
        conn.execute(
            f"create table big as select g as id, {randoms} as body "
            f"from generate_series(1, {BIG_ROWS}) g"
        )
    return dsn


def big_setup(
    tmp_path: Path, pg_cluster: Any, big_db: str, storage: Any, name: str = "cfg"
) -> Setup:
    return make_setup(tmp_path / name, big_db, pg_cluster.password, storage)


def processes() -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                raw = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            out[int(entry)] = [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]
    return out


def alive(pid: int) -> bool:
    """Running, not a zombie (this machine's PID 1 does not reap orphans)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def pg_dump_pids(port: int, parent_pid: int | None = None) -> list[int]:
    return [
        pid
        for pid, argv in processes().items()
        if argv
        and os.path.basename(argv[0]) == "pg_dump"
        and any(str(port) in a for a in argv)
        and alive(pid)
        and (parent_pid is None or parent(pid) == parent_pid)
    ]


def wait_for(predicate: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def pending_bytes(storage_dir: Path) -> int:
    """Bytes already written to in-progress (not yet renamed) files of the local backend."""
    total = 0
    for folder, _dirs, files in os.walk(storage_dir / ".drtool-tmp"):
        for name in files:
            try:
                total += os.stat(os.path.join(folder, name)).st_size
            except FileNotFoundError:
                continue  # renamed into place or removed while we looked
    return total


def storage_dir(setup: Setup) -> Path:
    return Path(setup.doc["storage"]["url"].removeprefix("file://"))


def test_kill_9_of_a_running_backup_leaves_nothing_listed(
    tmp_path: Path, pg_cluster: Any, big_db: str, file_storage_config: Any
) -> None:
    setup = big_setup(tmp_path, pg_cluster, big_db, file_storage_config)
    proc = setup.popen("backup")
    wait_for(lambda: pending_bytes(storage_dir(setup)) > 1_000_000, what="the dump to stream")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    listed = setup.run("list", "--json").json
    assert listed["items"] == []
    assert setup.run("show", "latest", expect=2).code == 2
    # pg_dump does not outlive drtool: its stdout pipe is gone, so it exits.
    wait_for(lambda: not pg_dump_pids(pg_cluster.port), timeout=30, what="pg_dump to exit")


@pytest.mark.parametrize("backend", ["file", "s3"])
def test_pg_dump_failing_mid_stream_aborts_the_upload_and_exits_1(
    request: pytest.FixtureRequest, tmp_path: Path, pg_cluster: Any, big_db: str, backend: str
) -> None:
    storage = request.getfixturevalue(f"{backend}_storage_config")
    setup = big_setup(tmp_path, pg_cluster, big_db, storage)
    proc = setup.popen("backup")
    if backend == "file":
        wait_for(lambda: pending_bytes(storage_dir(setup)) > 1_000_000, what="the dump to stream")
    else:
        moto = request.getfixturevalue("moto_server")
        bucket = storage.url.removeprefix("s3://").split("/", 1)[0]
        client = moto.client()

        def parts_uploaded() -> bool:
            for up in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
                parts = client.list_parts(Bucket=bucket, Key=up["Key"], UploadId=up["UploadId"])
                if parts.get("Parts"):
                    return True
            return False

        wait_for(parts_uploaded, what="a multipart part to be uploaded")
    # Sever pg_dump's server connection mid-stream: a real failure of the source. pg_dump is
    # frozen meanwhile so that it cannot finish the dump before the connection is cut.
    dumps = pg_dump_pids(pg_cluster.port, proc.pid)
    assert dumps, "pg_dump finished before the fault could be injected"
    for pid in dumps:
        os.kill(pid, signal.SIGSTOP)
    try:
        with pg_cluster.connect(dbname="postgres") as conn:
            conn.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity "
                "where application_name = 'pg_dump' and datname = 'bigdump'"
            )
    finally:
        for pid in dumps:
            os.kill(pid, signal.SIGCONT)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert "pg_dump failed" in err
    assert "terminat" in err.lower() or "connection" in err.lower()  # the tail of pg_dump's stderr
    assert "Traceback" not in err
    assert setup.run("list", "--json").json["items"] == []
    if backend == "s3":
        assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
        # Nothing of the backup remains (the job-run record under runs/ is expected).
        prefix = storage.url.removeprefix("s3://").split("/", 1)[1] + "/backups/"
        assert client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("KeyCount", 0) == 0
    else:
        assert pending_bytes(storage_dir(setup)) == 0


def test_second_concurrent_backup_exits_5_naming_the_lock(
    tmp_path: Path, pg_cluster: Any, big_db: str, file_storage_config: Any
) -> None:
    setup = big_setup(tmp_path, pg_cluster, big_db, file_storage_config)
    # Keep the first backup running for as long as the test needs: an application
    # transaction holds a lock on the table, so the first backup waits (it already holds
    # drtool's advisory lock) until the lock is released, well within lock_wait_timeout.
    with pg_cluster.connect(dbname="bigdump") as app:
        app.autocommit = False
        app.execute("lock table big in access exclusive mode")
        first = setup.popen("backup")
        wait_for(
            lambda: pg_dump_pids(pg_cluster.port, first.pid),
            what="the first backup's own pg_dump",
        )
        second = setup.run("backup", expect=5)
        assert first.poll() is None, "the first backup must still be running"
        app.rollback()
    assert "lock" in second.stderr and "another drtool run" in second.stderr
    _out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert len(setup.run("list", "--json").json["items"]) == 1
    # The refused run did nothing: it is not recorded as a failed backup.
    jobs = {j["job"]: j for j in setup.run("status", "--json", expect=None).json["jobs"]}
    assert jobs["backup"]["last_ok"] is True
    assert jobs["backup"].get("last_failure_at") is None


def test_no_secret_in_any_child_cmdline_logs_or_manifest(
    tmp_path: Path, pg_cluster: Any, big_db: str, s3_storage_config: Any
) -> None:
    # The password embedded in the DSN, as a careless operator would write it.
    password = pg_cluster.password
    user = pg_cluster.superuser
    assert big_db.startswith(f"postgresql://{user}@")
    dsn = big_db.replace(f"{user}@", f"{user}:{password}@", 1)
    setup = make_setup(tmp_path / "cfg", dsn, None, s3_storage_config)
    setup.env["DRTOOL_ENCRYPTION__KEY"] = "aa" * 32
    secrets = [password, "aa" * 32]
    proc = setup.popen("-v", "backup")
    seen: set[str] = set()
    while proc.poll() is None:
        for argv in processes().values():
            joined = " ".join(argv)
            if "pg_dump" in joined or "drtool" in joined:
                seen.add(joined)
                for secret in secrets:
                    assert secret not in joined, "a secret is visible in a process command line"
        time.sleep(0.01)
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert any("pg_dump" in s for s in seen), "the scan never saw pg_dump running"
    manifest = setup.run("show", "latest", "--json").stdout
    for text in (out, err, manifest):
        for secret in secrets:
            assert secret not in text


def test_old_pg_dump_is_refused_before_anything_is_stored(
    tmp_path: Path, file_setup: Setup
) -> None:
    bindir = tmp_path / "oldbin"
    bindir.mkdir()
    fake = bindir / "pg_dump"
    fake.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 14.11'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    result = file_setup.run("backup", expect=1, extra_env={"DRTOOL_PG_BINDIR": str(bindir)})
    assert "pg_dump 14" in result.stderr and "15" in result.stderr
    assert file_setup.run("list", "--json").json["items"] == []


def test_unreachable_database_exits_1_with_a_clear_message(file_setup: Setup) -> None:
    file_setup.doc["database"]["dsn"] = "postgresql://postgres@127.0.0.1:1/nope"
    file_setup.write()
    result = file_setup.run("backup", expect=1)
    assert "127.0.0.1:1/nope" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_recipient_is_a_usage_error(file_setup: Setup) -> None:
    file_setup.doc["encryption"] = {"recipients": []}
    file_setup.write()
    result = file_setup.run("backup", expect=2)
    assert "encryption.recipients" in result.stderr
