"""The ephemeral cluster: privilege drop as root, cleanup in every ending, real password auth,
clear errors; and the PostgreSQL tool discovery it relies on.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from drtool.errors import DatabaseError, OperationError
from drtool.pg.cluster.ephemeral import EphemeralCluster
from drtool.pg.tools.find import BINDIR_ENV, find_tool
from tests.fixtures.pg import TEST_PASSWORD, require_initdb


@pytest.fixture(autouse=True)
def _initdb_present() -> None:
    require_initdb()


@pytest.fixture
def base_dir() -> Iterator[Path]:
    """A base_dir the postgres account can traverse (pytest's base_dir is 0700 root's)."""
    path = Path(tempfile.mkdtemp(prefix="drtool-test-"))
    path.chmod(0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def postmaster_pid(cluster: EphemeralCluster) -> int:
    return int((cluster.data_dir / "postmaster.pid").read_text().splitlines()[0])


def process_uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for {pid}")


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_cluster_runs_unprivileged_and_stop_removes_its_directory(base_dir: Path) -> None:
    cluster = EphemeralCluster(base_dir=base_dir)
    with cluster:
        pid = postmaster_pid(cluster)
        root = cluster.data_dir.parent.parent
        if os.geteuid() == 0:
            assert process_uid(pid) != 0
        else:
            assert process_uid(pid) == os.geteuid()
        with cluster.connect() as conn:
            row = conn.execute("select current_setting('listen_addresses')").fetchone()
        assert row == ("127.0.0.1",)
    assert not root.exists()
    assert not running(pid)
    assert list(base_dir.iterdir()) == []
    cluster.stop()  # idempotent


def test_kill_hard_then_stop_leaves_nothing_behind(base_dir: Path) -> None:
    cluster = EphemeralCluster(base_dir=base_dir).start()
    pid = postmaster_pid(cluster)
    conn = cluster.connect()
    cluster.kill_hard()
    assert not running(pid)
    with pytest.raises(psycopg.OperationalError):
        conn.execute("select 1")
    conn.close()
    with pytest.raises(DatabaseError):
        cluster.connect()
    cluster.stop()
    assert list(base_dir.iterdir()) == []


def test_password_authentication_is_enforced(pg_cluster: EphemeralCluster) -> None:
    dsn = pg_cluster.dsn()
    user = pg_cluster.superuser
    assert TEST_PASSWORD not in dsn and dsn.startswith(f"postgresql://{user}@127.0.0.1:")
    with psycopg.connect(dsn, password=TEST_PASSWORD) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(dsn, password="wrong-password")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(dsn, password="", passfile="/nonexistent")


def test_min_major_above_installed_fails_clearly_and_leaves_no_directory(base_dir: Path) -> None:
    cluster = EphemeralCluster(base_dir=base_dir, min_major=999)
    with pytest.raises(OperationError) as err:
        cluster.start()
    assert "PostgreSQL 999 or newer is needed" in err.value.message
    assert err.value.hint and "postgresql-999" in err.value.hint
    assert list(base_dir.iterdir()) == []


def test_two_clusters_at_once_get_different_ports(base_dir: Path) -> None:
    with EphemeralCluster(base_dir=base_dir) as one, EphemeralCluster(base_dir=base_dir) as two:
        assert one.port != two.port
        for cluster in (one, two):
            with cluster.connect() as conn:
                row = conn.execute("select current_setting('port')::int").fetchone()
            assert row == (cluster.port,)
    assert list(base_dir.iterdir()) == []


def test_startup_failure_reports_the_server_log_and_cleans_up(base_dir: Path) -> None:
    cluster = EphemeralCluster(base_dir=base_dir, settings={"shared_buffers": "lots"})
    with pytest.raises(OperationError) as err:
        cluster.start()
    assert "failed to start" in err.value.message
    assert 'invalid value for parameter "shared_buffers"' in err.value.message
    assert list(base_dir.iterdir()) == []


def test_create_and_drop_database(pg_cluster: EphemeralCluster) -> None:
    dsn = pg_cluster.create_database("scratch_cd")
    assert dsn.endswith("/scratch_cd")
    with pytest.raises(DatabaseError, match="already exists"):
        pg_cluster.create_database("scratch_cd")
    pg_cluster.drop_database("scratch_cd")
    pg_cluster.drop_database("scratch_cd")  # IF EXISTS
    with pg_cluster.connect() as conn:
        row = conn.execute("select count(*) from pg_database where datname = 'scratch_cd'")
        assert row.fetchone() == (0,)


def test_sigterm_to_the_owning_process_removes_the_cluster(base_dir: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from drtool.pg.cluster.ephemeral import EphemeralCluster
        cluster = EphemeralCluster(base_dir=Path({str(base_dir)!r})).start()
        pid = (cluster.data_dir / "postmaster.pid").read_text().split()[0]
        print(pid, flush=True)
        time.sleep(60)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    pid = int(child.stdout.readline())
    assert running(pid)
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=30) == 128 + signal.SIGTERM
    deadline = time.monotonic() + 10
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running(pid)
    assert list(base_dir.iterdir()) == []


def test_detached_cluster_keeps_running_until_stopped_by_hand(base_dir: Path) -> None:
    cluster = EphemeralCluster(base_dir=base_dir).start()
    cluster.detach()
    cluster.stop()  # a no-op once detached
    with cluster.connect() as conn:
        assert conn.execute("select 1").fetchone() == (1,)
    assert "pg_ctl" in cluster.stop_hint
    subprocess.run(cluster.stop_hint, shell=True, check=True, capture_output=True)
    assert list(base_dir.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="only root drops privileges")
def test_base_dir_the_postgres_account_cannot_reach_is_a_clear_error(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    with pytest.raises(OperationError, match="cannot reach") as err:
        EphemeralCluster(base_dir=private).start()
    assert err.value.hint and "chmod o+x" in err.value.hint
    assert list(private.iterdir()) == []


def test_find_tool_prefers_real_binaries_over_debian_wrapper() -> None:
    tool = find_tool("pg_dump")
    assert tool.path.is_file() and tool.major >= 10
    assert "postgresql-common" not in tool.path.parts
    assert tool.version.startswith(f"{tool.major}.")


def test_bindir_override_wins_and_missing_tool_names_the_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real = find_tool("pg_dump")
    monkeypatch.setenv(BINDIR_ENV, str(real.path.parent))
    assert find_tool("pg_dump").path == real.path
    monkeypatch.setenv(BINDIR_ENV, str(tmp_path))
    with pytest.raises(OperationError, match=BINDIR_ENV):
        find_tool("pg_dump")
    monkeypatch.delenv(BINDIR_ENV)
    with pytest.raises(OperationError) as err:
        find_tool("pg_no_such_tool")
    assert err.value.hint and "apt-get install postgresql-client" in err.value.hint
    with pytest.raises(OperationError, match=r"cannot dump a PostgreSQL 999 server"):
        find_tool("pg_dump", min_major=999)
