"""`schedule run` as real processes: one run of a job at a time across schedulers sharing
storage (the other logs a skipped run), SIGTERM during a backup commits nothing partial and
exits 0, /metrics parses, /healthz turns 503 after a failed run."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from prometheus_client.parser import text_string_to_metric_families

from drtool.config import StorageConfig
from tests.fixtures.cli import Setup, make_setup
from tests.fixtures.pg import TEST_PASSWORD

BACKUP_SCHEDULE = 'name: backup\ncron: "0 2 * * *"\ncommand: backup --label scheduled\n'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Scheduler:
    """A `drtool schedule run` process whose JSON log lines are collected as they come."""

    def __init__(self, setup: Setup, *args: str) -> None:
        self.port = free_port()
        self.proc = setup.popen(
            "--log-format",
            "json",
            "schedule",
            "run",
            *args,
            extra_env={"DRTOOL_METRICS__LISTEN": f"127.0.0.1:{self.port}"},
        )
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.raw.append(line)
            try:
                self.lines.append(json.loads(line))
            except ValueError:
                continue

    def wait_for(
        self, pred: Callable[[dict[str, Any]], bool], timeout: float = 30
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if pred(line):
                    return line
            assert self.proc.poll() is None, "".join(self.raw)
            time.sleep(0.05)
        raise AssertionError("timed out; log:\n" + "".join(self.raw))

    def stop(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return int(r.status), r.read().decode()
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read().decode()

    def http_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.get("/healthz")
                return
            except OSError:
                assert self.proc.poll() is None, "".join(self.raw)
                time.sleep(0.1)
        raise AssertionError("no HTTP endpoint; log:\n" + "".join(self.raw))


def with_schedules(setup: Setup, **files: str) -> Setup:
    directory = setup.dir / "schedules"
    directory.mkdir(exist_ok=True)
    for name, text in files.items():
        (directory / f"{name}.yaml").write_text(text, encoding="utf-8")
    setup.doc["schedule"] = {"dir": "schedules"}
    setup.write()
    return setup


def storage_root(setup: Setup) -> Path:
    return Path(setup.doc["storage"]["url"].removeprefix("file://"))


@contextmanager
def table_locked(db: Any) -> Iterator[Callable[[], None]]:
    """An ACCESS EXCLUSIVE lock on a sample table: a backup stalls (short of its
    lock_wait_timeout) until released, so the test controls when its data flows."""
    conn = psycopg.connect(db.dsn, password=db.password, autocommit=False)
    row = conn.execute(
        "select format('%I.%I', schemaname, tablename) from pg_tables "
        "where schemaname = 'public' order by tablename limit 1"
    ).fetchone()
    assert row is not None
    conn.execute(f"lock table {row[0]} in access exclusive mode")
    released = False

    def release() -> None:
        nonlocal released
        if not released:
            conn.rollback()
            released = True

    try:
        yield release
    finally:
        release()
        conn.close()


def lease_held(setup: Setup, job: str) -> bool:
    path = storage_root(setup) / "scheduler" / f"{job}.json"
    try:
        return json.loads(path.read_text())["holder"] is not None
    except (OSError, ValueError, KeyError):
        return False


def wait_until(pred: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def backups(setup: Setup) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = setup.run("list", "--kind", "backup", "--json").json["items"]
    return items


def test_two_schedulers_never_run_the_same_job_at_once(file_setup: Setup, sample_db: Any) -> None:
    setup = with_schedules(file_setup, backup=BACKUP_SCHEDULE)
    with table_locked(sample_db) as release:
        first = Scheduler(setup, "--run-now", "backup")
        try:
            first.wait_for(lambda e: e.get("event") == "start" and e.get("job") == "backup")
            wait_until(lambda: lease_held(setup, "backup"))
            second = Scheduler(setup, "--run-now", "backup")
            try:
                skipped = second.wait_for(lambda e: e.get("event") == "skipped")
                assert skipped["job"] == "backup"
                assert "lease" in skipped["message"]
                second.http_ready()
                _, text = second.get("/metrics")
                assert 'drtool_job_skipped_total{drtool_job="backup"} 1.0' in text
            finally:
                assert second.stop() == 0
            release()
            done = first.wait_for(lambda e: e.get("event") == "run", timeout=60)
            assert done["ok"] is True, first.raw
        finally:
            assert first.stop() == 0
    assert len(backups(setup)) == 1


def test_sigterm_during_a_backup_commits_nothing_partial(file_setup: Setup, sample_db: Any) -> None:
    setup = with_schedules(file_setup, backup=BACKUP_SCHEDULE)
    with table_locked(sample_db) as release:
        sched = Scheduler(setup, "--run-now", "backup", "--grace", "1s")
        sched.wait_for(lambda e: e.get("event") == "start" and e.get("job") == "backup")
        time.sleep(0.5)
        sched.proc.send_signal(signal.SIGTERM)
        sched.wait_for(lambda e: "aborting the running job" in e.get("message", ""))
        release()
        code = sched.stop()
    assert code == 0, "".join(sched.raw)
    outcome = next(e for e in sched.lines if e.get("event") == "run")
    assert outcome["ok"] is False
    assert "aborted" in outcome["message"]
    assert backups(setup) == []
    assert not list((storage_root(setup) / "backups").rglob("*"))


def test_a_run_over_its_timeout_is_aborted_cleanly(file_setup: Setup, sample_db: Any) -> None:
    setup = with_schedules(file_setup, backup=BACKUP_SCHEDULE + "timeout: 1s\n")
    with table_locked(sample_db) as release:
        sched = Scheduler(setup, "--run-now", "backup")
        try:
            sched.wait_for(lambda e: "aborting the running job (timeout)" in e.get("message", ""))
            release()
            outcome = sched.wait_for(lambda e: e.get("event") == "run", timeout=60)
            assert outcome["ok"] is False
            assert "aborted: timeout" in outcome["message"]
            code, body = sched.get("/healthz")
            assert code == 503, body
        finally:
            assert sched.stop() == 0
    assert backups(setup) == []


def test_metrics_parse_and_healthz_turns_503_after_a_failed_run(tmp_path: Path) -> None:
    storage = StorageConfig(url=(tmp_path / "storage").as_uri())
    setup = make_setup(tmp_path / "cfg", "postgresql://drtool@127.0.0.1:9/nowhere", None, storage)
    setup = with_schedules(setup, backup=BACKUP_SCHEDULE)

    healthy = Scheduler(setup)
    try:
        healthy.http_ready()
        code, body = healthy.get("/healthz")
        assert code == 200, body
        assert json.loads(body)["ok"] is True
        code, text = healthy.get("/metrics")
        assert code == 200
        names = {family.name for family in text_string_to_metric_families(text)}
        assert {"drtool_scheduler_up", "drtool_job_skipped", "drtool_job_failures"} <= names
        assert "drtool_objective_breached" in names  # the state metrics (collect_registry)
    finally:
        assert healthy.stop() == 0

    failing = Scheduler(setup, "--run-now", "backup")
    try:
        failing.http_ready()
        failing.wait_for(lambda e: e.get("event") == "run")
        code, body = failing.get("/healthz")
        assert code == 503
        doc = json.loads(body)
        assert doc["ok"] is False
        assert "backup" in doc["reason"]
        _, text = failing.get("/metrics")
        assert 'drtool_job_failures_total{drtool_job="backup"} 1.0' in text
    finally:
        assert failing.stop() == 0


# A rehearsal check that polls for a file the test creates (up to the check's own statement
# timeout): the job sits in a stage that moves no data for as long as the test wants, whatever
# the machine's speed. The scratch is a database on the test cluster, reached as its superuser.
WAIT_SQL = """
with recursive w(n, done) as (
  select 0, false
  union all
  select n + 1, (pg_stat_file({path}, true)).size is not null from w, pg_sleep(0.1)
   where not done)
select bool_or(done) from w
"""


@contextmanager
def released_by_file() -> Iterator[tuple[str, Callable[[], None]]]:
    directory = Path(tempfile.mkdtemp(prefix="drtool-release-"))
    directory.chmod(0o755)  # the cluster's server process runs as another user
    path = directory / "release"

    def release() -> None:
        path.write_text("go\n")
        path.chmod(0o644)

    try:
        yield str(path), release
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def rehearse_schedule(setup: Setup, scratch: str, release_path: str, extra: str) -> Setup:
    sql = WAIT_SQL.format(path="'" + release_path + "'")
    setup.doc["rehearsal"] = {"checks": [{"name": "waits for the test", "sql": sql}]}
    setup.env["PGPASSWORD"] = TEST_PASSWORD  # the scratch server's password
    setup.write()
    setup.run("backup", "--label", "for-the-drill")
    text = f'name: rehearse\ncron: "0 5 1 * *"\ncommand: rehearse latest --scratch {scratch}\n'
    return with_schedules(setup, rehearse=text + extra)


def check_waiting(cluster: Any) -> bool:
    """The drill's check is running (and waits for the file)."""
    with cluster.connect() as conn:
        row = conn.execute(
            "select count(*) from pg_stat_activity where state = 'active' "
            "and pid <> pg_backend_pid() and query like %s",
            ("%pg_stat_file%",),
        ).fetchone()
    return bool(row and row[0] > 0)


def wait_for_check(sched: Scheduler, cluster: Any) -> None:
    deadline = time.monotonic() + 120
    while not check_waiting(cluster):
        assert sched.proc.poll() is None, "".join(sched.raw)
        assert not any(e.get("event") == "run" for e in sched.lines), "".join(sched.raw)
        assert time.monotonic() < deadline, "timed out; log:\n" + "".join(sched.raw)
        time.sleep(0.1)


def drill_databases(cluster: Any) -> list[str]:
    with cluster.connect() as conn:
        rows = conn.execute(
            "select datname from pg_database where datname like 'drtool\\_drill\\_%'"
        ).fetchall()
    return [r[0] for r in rows]


def run_record(setup: Setup, job: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((storage_root(setup) / "runs" / f"{job}.json").read_text())
    return doc


def test_a_timeout_in_a_stage_that_moves_no_data_aborts_the_job(
    file_setup: Setup, pg_cluster: Any
) -> None:
    # The timeout is long enough for the restore into the scratch; the check then blocks.
    with released_by_file() as (path, release):
        setup = rehearse_schedule(file_setup, pg_cluster.dsn("postgres"), path, "timeout: 15s\n")
        sched = Scheduler(setup, "--run-now", "rehearse")
        try:
            wait_for_check(sched, pg_cluster)
            assert not any("aborting" in e.get("message", "") for e in sched.lines), (
                "the timeout fired before the drill reached its check; log:\n" + "".join(sched.raw)
            )
            sched.wait_for(lambda e: "aborting the running job (timeout)" in e.get("message", ""))
            release()  # the check returns (and passes); the abort is noticed after it
            outcome = sched.wait_for(lambda e: e.get("event") == "run", timeout=120)
            assert outcome["ok"] is False, sched.raw
            assert "aborted: timeout" in outcome["message"]
            assert outcome["exit_code"] != 0
        finally:
            assert sched.stop() == 0
    record = run_record(setup, "rehearse")
    assert record["last_ok"] is False and record["last_failure_exit_code"] != 0
    assert "aborted: timeout" in record["last_failure_error"]
    drills = sorted((storage_root(setup) / "drills").glob("*.json"))
    assert len(drills) == 1
    drill = json.loads(drills[0].read_text())
    assert drill["verdict"] == "fail"
    assert any("aborted: timeout" in f for f in drill["failures"])


def test_a_job_that_ignores_its_abort_makes_the_scheduler_exit_non_zero(
    file_setup: Setup, pg_cluster: Any
) -> None:
    try:
        with released_by_file() as (path, release):
            setup = rehearse_schedule(file_setup, pg_cluster.dsn("postgres"), path, "timeout: 1h\n")
            sched = Scheduler(setup, "--run-now", "rehearse", "--grace", "1s", "--abort-wait", "3s")
            wait_for_check(sched, pg_cluster)
            sched.proc.send_signal(signal.SIGTERM)
            sched.wait_for(lambda e: "aborting the running job" in e.get("message", ""))
            # The check still waits for the file: the job cannot notice its abort.
            code = sched.stop(timeout=120)
            release()
        assert code != 0, "".join(sched.raw)
        outcome = next(e for e in sched.lines if e.get("event") == "run")
        assert outcome["ok"] is False and outcome["exit_code"] != 0
        assert "still running 3s later" in outcome["message"]
        record = run_record(setup, "rehearse")
        assert record["last_ok"] is False and record["last_failure_exit_code"] != 0
        assert "the scheduler exited without it" in record["last_failure_error"]
    finally:
        for name in drill_databases(pg_cluster):  # the drill left behind (its process is gone)
            pg_cluster.drop_database(name)


def test_a_scheduled_verify_and_the_cli_exit_3_alike_on_a_corrupted_backup(
    file_setup: Setup, sample_db: Any
) -> None:
    # One exit code per result (VerifyResult.exit_code), whoever runs the verification.
    text = 'name: verify\ncron: "0 3 * * *"\ncommand: verify latest\n'
    setup = with_schedules(file_setup, verify=text)
    backup_id = setup.run("backup", "--label", "to-damage").stdout.strip().splitlines()[-1]
    dump = storage_root(setup) / "backups" / backup_id / "dump.pgdump.zst.age"
    data = dump.read_bytes()
    middle = len(data) // 2
    dump.write_bytes(data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :])

    sched = Scheduler(setup, "--run-now", "verify")
    try:
        outcome = sched.wait_for(lambda e: e.get("event") == "run", timeout=120)
    finally:
        assert sched.stop() == 0
    assert outcome["ok"] is False and outcome["exit_code"] == 3, sched.raw
    assert outcome["item_id"] == backup_id
    record = run_record(setup, "verify")
    assert record["last_ok"] is False and record["last_failure_exit_code"] == 3
    scheduled_at = record["last_run_at"]

    cli = setup.run("verify", "latest", "--json", expect=3)
    assert cli.json["ok"] is False
    record = run_record(setup, "verify")
    assert record["last_run_at"] != scheduled_at  # the CLI's run, recorded the same way
    assert record["last_ok"] is False and record["last_failure_exit_code"] == 3


def test_a_schedule_command_goes_through_the_cli_options_and_their_checks(
    file_setup: Setup,
) -> None:
    # A flag the CLI has is accepted; one it lacks, and a value its click type rejects, are
    # reported with click's message, naming the file and the job (exit 2).
    good = 'cron: "0 3 * * *"\ncommand: verify latest --deep\n'
    setup = with_schedules(file_setup, verify=good)
    listing = setup.run("schedule", "check", "--json").json
    assert [job["command"] for job in listing["jobs"]] == ["verify latest --deep"]
    bad = {
        "verify": 'cron: "0 3 * * *"\ncommand: verify latest --deeper\n',
        "archive": 'cron: "0 4 * * *"\ncommand: archive run --batch-size 0\n',
        "restore": 'name: put-back\ncron: "0 4 * * *"\ncommand: restore latest --to x\n',
    }
    setup = with_schedules(setup, **bad)
    for run in (("schedule", "check"), ("schedule", "run")):
        err = setup.run(*run, expect=2).stderr
        assert "schedules/verify.yaml: command: job verify: " in err, err
        assert "No such option '--deeper'" in err
        assert "schedules/archive.yaml: command: job archive: " in err
        assert "Invalid value for '--batch-size': 0 is not in the range x>=1" in err
        assert "schedules/restore.yaml: command: job put-back: `restore latest --to x`" in err
        assert "cannot be scheduled" in err
        assert "Traceback" not in err
