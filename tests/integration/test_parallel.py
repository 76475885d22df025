"""The parallel format end to end: ``backup --jobs N`` (N COPY streams over one exported
snapshot, large tables in ctid ranges) and ``restore --jobs N`` of it without a spool, on
real PostgreSQL: content, snapshot consistency, damaged parts, kill -9, rehearse, memory."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.fixtures.cli import DRTOOL, Setup, make_setup
from tests.fixtures.pg import Database
from tests.integration.restore_support import (
    checksums,
    connect,
    scalar,
    storage_root,
    user_tables,
    with_password,
)
from tests.integration.test_backup_faults import pending_bytes, wait_for
from tests.integration.test_rehearse import drill_tmp  # noqa: F401  (fixture)

BIG_ROWS = 20_000  # ~500 pages: ~16 ctid ranges at SPLIT
SPLIT = "256KiB"
LARGE_ROWS = 150_000  # ~80 MB of random hex: a backup that lasts long enough to be killed

SCHEMA = '''
create table big (id bigserial primary key, body text, at timestamptz default now(),
                  f float8, b bytea, span interval);
insert into big (body, at, f, b, span)
  select repeat(md5(i::text), 4), timestamptz '2024-03-01 12:00+02' + i * interval '1 min',
         i / 7.0, decode(md5(i::text), 'hex'), i * interval '1 sec'
    from generate_series(1, %(rows)s) i;
create index big_f on big (f);
create table refs (id int primary key, big_id bigint references big (id));
insert into refs select i, i from generate_series(1, 1000) i;
create table "odd.name ""q""" (id int, v text, g int generated always as (id * 2) stored);
insert into "odd.name ""q""" (id, v)
  select i, E'line\\nbreak\\ttab\\\\' || i from generate_series(1, 500) i;
create table skipped (id int);
insert into skipped select generate_series(1, 100);
create table empty_one (id int);
create table no_columns ();
insert into no_columns select from generate_series(1, 3);
create sequence counter_seq;
select setval('counter_seq', 4242);
'''


def _database(pg_cluster: Any, prefix: str) -> Database:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    return Database(name, pg_cluster.create_database(name), pg_cluster.password, pg_cluster)


@pytest.fixture
def source_db(pg_cluster: Any) -> Iterator[Database]:
    """A database with a table large enough to split, a generated column, a name holding a
    dot and a quote, a table whose data is excluded, and a sequence."""
    db = _database(pg_cluster, "par_src")
    with connect(db.dsn, db.password) as conn:
        conn.execute(SCHEMA % {"rows": BIG_ROWS})  # type: ignore[arg-type]
        conn.execute("analyze")
    try:
        yield db
    finally:
        pg_cluster.drop_database(db.name)


@pytest.fixture
def target_db(pg_cluster: Any) -> Iterator[Database]:
    db = _database(pg_cluster, "par_dst")
    try:
        yield db
    finally:
        pg_cluster.drop_database(db.name)


@pytest.fixture(scope="module")
def large_db(pg_cluster: Any) -> Iterator[Database]:
    db = _database(pg_cluster, "par_large")
    with connect(db.dsn, db.password) as conn:
        randoms = " || ".join(["md5(random()::text)"] * 16)
        conn.execute(
            f"create table large as select g as id, {randoms} as body "
            f"from generate_series(1, {LARGE_ROWS}) g"
        )
    try:
        yield db
    finally:
        pg_cluster.drop_database(db.name)


def setup_for(db: Database, tmp_path: Path, storage: Any, **backup: Any) -> Setup:
    setup = make_setup(tmp_path / "cfg", db.dsn, db.password, storage)
    setup.doc["backup"] = {"split_table_size": SPLIT, **backup}
    setup.write()
    return setup


def parallel_backup(setup: Setup, jobs: int = 2) -> dict[str, Any]:
    result: dict[str, Any] = setup.run("--json", "backup", "--jobs", str(jobs)).json
    return result


def restore(setup: Setup, backup_id: str, db: Database, *args: str, expect: int = 0) -> Any:
    to = with_password(db.dsn, db.password)
    return setup.run("--json", "restore", backup_id, "--to", to, *args, expect=expect)


def object_file(setup: Setup, manifest: dict[str, Any], name: str) -> Path:
    entry = next(o for o in manifest["objects"] if o["name"] == name)
    return storage_root(setup) / entry["key"]


def test_parallel_backup_restores_table_by_table_equal_to_the_source(
    tmp_path: Path, source_db: Database, target_db: Database, file_storage_config: Any
) -> None:
    setup = setup_for(source_db, tmp_path, file_storage_config, exclude_table_data=["skipped"])
    manifest = parallel_backup(setup)
    assert manifest["dump_format"] == "parallel"
    names = [o["name"] for o in manifest["objects"]]
    assert names[0] == "pre-data" and "post-data" in names and "globals" in names
    assert manifest["seal"]["object"] == "pre-data"
    parts = manifest["parts"]
    big = [p for p in parts if p["table"] == "public.big"]
    assert len(big) > 2 and {p["parts"] for p in big} == {len(big)}
    assert big[0]["where"] == "ctid >= '(0,0)' AND ctid < '(32,0)'"  # 256 KiB of pages
    assert big[1]["where"].startswith("ctid >= '(32,0)' AND")
    assert big[-1]["where"].startswith("ctid >= '(") and "<" not in big[-1]["where"]
    # Exact counts: each table's parts sum to the snapshot's count(*).
    for table, rows in manifest["tables"].items():
        assert sum(p["rows"] for p in parts if p["table"] == table) == rows
    assert manifest["tables"]["public.big"] == BIG_ROWS
    assert not [p for p in parts if p["table"] == "public.skipped"]
    assert manifest["excluded_table_data"] == {"public.skipped": 100}
    odd = next(p for p in parts if p["table"] == 'public.odd.name "q"')
    assert odd["columns"] == ["id", "v"]  # the generated column is computed on restore
    assert manifest["stream"]["lsn"] and manifest["stream"]["snapshot"]

    done = restore(setup, manifest["id"], target_db, "--jobs", "2").json
    assert done["plan"]["mode"] == "parallel" and done["plan"]["jobs"] == 2
    assert set(done["stages"]) >= {"pre_data", "data", "post_data"}
    tables = [t for t in user_tables(source_db.dsn, source_db.password) if t != "public.skipped"]
    assert checksums(target_db.dsn, target_db.password, tables) == checksums(
        source_db.dsn, source_db.password, tables
    )
    assert scalar(target_db.dsn, target_db.password, "select count(*) from skipped") == 0
    assert scalar(target_db.dsn, target_db.password, "select last_value from counter_seq") == 4242
    # post-data: the index and the foreign key came back after the rows.
    assert (
        scalar(
            target_db.dsn,
            target_db.password,
            "select count(*) from pg_indexes where indexname in ('big_f', 'big_pkey', 'refs_pkey')",
        )
        == 3
    )
    with (
        pytest.raises(psycopg.errors.ForeignKeyViolation),
        connect(target_db.dsn, target_db.password) as conn,
    ):
        conn.execute("insert into refs values (-1, -1)")
    verified = setup.run("--json", "verify", manifest["id"], "--deep").json
    assert verified["ok"] is True


def test_restore_jobs_1_of_a_parallel_backup_loads_sequentially(
    tmp_path: Path, source_db: Database, target_db: Database, file_storage_config: Any
) -> None:
    setup = setup_for(source_db, tmp_path, file_storage_config)
    manifest = parallel_backup(setup, jobs=3)
    done = restore(setup, manifest["id"], target_db).json
    assert done["plan"]["mode"] == "parallel" and done["plan"]["jobs"] == 1
    tables = user_tables(source_db.dsn, source_db.password)
    assert checksums(target_db.dsn, target_db.password, tables) == checksums(
        source_db.dsn, source_db.password, tables
    )


@pytest.mark.parametrize("backend", ["file", "s3"])
def test_parallel_round_trip_of_the_sample_database_through_each_backend(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sample_db: Any,
    target_db: Database,
    backend: str,
) -> None:
    storage = request.getfixturevalue(f"{backend}_storage_config")
    setup = make_setup(tmp_path / "cfg", sample_db.dsn, sample_db.password, storage)
    manifest = parallel_backup(setup)
    restore(setup, manifest["id"], target_db, "--jobs", "2")
    tables = list(manifest["tables"])
    assert checksums(target_db.dsn, target_db.password, tables) == checksums(
        sample_db.dsn, sample_db.password, tables
    )


def test_writes_during_a_parallel_backup_are_not_in_it(
    tmp_path: Path, source_db: Database, target_db: Database, file_storage_config: Any
) -> None:
    setup = setup_for(source_db, tmp_path, file_storage_config)
    stop = threading.Event()
    written = [0]

    def write() -> None:
        with connect(source_db.dsn, source_db.password) as conn:
            while not stop.is_set():
                conn.execute("insert into big (body) values ('during')")
                written[0] += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        wait_for(lambda: written[0] > 20, what="the writer to start")
        manifest = parallel_backup(setup)
        wait_for(lambda: written[0] > 0, what="writes")
    finally:
        stop.set()
        writer.join()
    source_now = scalar(source_db.dsn, source_db.password, "select count(*) from big")
    assert source_now > manifest["tables"]["public.big"], "no write landed after the snapshot"
    restore(setup, manifest["id"], target_db, "--jobs", "2")
    # Every part read the same snapshot: restored rows are exactly the snapshot's count.
    snapshot_rows = manifest["tables"]["public.big"]
    assert scalar(target_db.dsn, target_db.password, "select count(*) from big") == snapshot_rows
    during = scalar(
        target_db.dsn, target_db.password, "select count(*) from big where body = 'during'"
    )
    assert during == snapshot_rows - BIG_ROWS
    # The rows restored are the oldest ones: none written after the snapshot slipped in.
    top = scalar(target_db.dsn, target_db.password, "select max(id) from big")
    assert top == scalar(
        source_db.dsn,
        source_db.password,
        f"select max(id) from (select id from big order by id limit {snapshot_rows}) t",
    )


@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_a_missing_or_truncated_part_is_exit_3_before_anything_reaches_the_target(
    tmp_path: Path,
    source_db: Database,
    target_db: Database,
    file_storage_config: Any,
    damage: str,
) -> None:
    setup = setup_for(source_db, tmp_path, file_storage_config)
    manifest = parallel_backup(setup)
    victim = object_file(setup, manifest, manifest["parts"][-1]["object"])
    if damage == "missing":
        victim.unlink()
    else:
        victim.write_bytes(victim.read_bytes()[:-100])
    out = restore(setup, manifest["id"], target_db, "--jobs", "2", expect=3)
    assert manifest["parts"][-1]["object"] in out.json["error"]["message"]
    assert user_tables(target_db.dsn, target_db.password) == []


def test_a_corrupted_part_is_exit_3_and_no_loaded_row_is_committed(
    tmp_path: Path, source_db: Database, target_db: Database, file_storage_config: Any
) -> None:
    setup = setup_for(source_db, tmp_path, file_storage_config)
    manifest = parallel_backup(setup)
    part = next(p for p in manifest["parts"] if p["table"] == "public.big" and p["part"] == 2)
    victim = object_file(setup, manifest, part["object"])
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    restore(setup, manifest["id"], target_db, "--jobs", "2", expect=3)
    # The schema came first; the loaders' transactions were all rolled back together.
    for table in ("big", "refs"):
        assert scalar(target_db.dsn, target_db.password, f"select count(*) from {table}") == 0


def test_options_the_parallel_format_does_not_support_are_refused_with_exit_2(
    tmp_path: Path, source_db: Database, target_db: Database, file_storage_config: Any
) -> None:
    setup = setup_for(source_db, tmp_path, file_storage_config)
    manifest = parallel_backup(setup)
    for args in (["--table", "big"], ["--data-only"], ["--force"], ["--role-map", "a=b"]):
        out = restore(setup, manifest["id"], target_db, *args, expect=2)
        assert "parallel format" in out.json["error"]["message"]
    out = setup.run(
        "--json", "restore", manifest["id"], "--to-file", str(tmp_path / "x.pgdump"), expect=2
    )
    assert "--to-file" in out.json["error"]["message"]
    assert user_tables(target_db.dsn, target_db.password) == []


def test_kill_9_of_a_parallel_backup_leaves_no_manifest(
    tmp_path: Path, large_db: Database, file_storage_config: Any
) -> None:
    setup = setup_for(large_db, tmp_path, file_storage_config, split_table_size="8MiB")
    root = storage_root(setup)
    proc = setup.popen("backup", "--jobs", "2")

    def stored_parts() -> list[Path]:
        return list(root.glob("backups/*/data-*.age")) if pending_bytes(root) > 500_000 else []

    wait_for(stored_parts, what="a first data object to be stored while others stream")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert list(root.glob("backups/*/manifest.json")) == []
    assert setup.run("list", "--json").json["items"] == []


def test_rehearse_of_a_parallel_backup_passes(
    tmp_path: Path,
    source_db: Database,
    file_storage_config: Any,
    drill_tmp: Path,  # noqa: F811
) -> None:
    # backup.jobs in the configuration, not the option, picks the format here.
    setup = setup_for(source_db, tmp_path, file_storage_config, jobs=2)
    manifest = setup.run("--json", "backup").json
    assert manifest["dump_format"] == "parallel"
    out = setup.run("rehearse", "--json", extra_env={"TMPDIR": str(drill_tmp)})
    doc = out.json
    assert doc["verdict"] == "pass", doc
    assert doc["backup"]["id"] == manifest["id"]


def peak_rss_kib(setup: Setup, *args: str) -> int:
    """Run the CLI in a child and return its peak resident set (KiB)."""
    probe = (
        "import resource, subprocess, sys\n"
        "done = subprocess.run(sys.argv[1:])\n"
        "assert done.returncode == 0, done.returncode\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    argv = [sys.executable, "-c", probe, *DRTOOL, "--config", str(setup.config_path), *args]
    done = subprocess.run(argv, env=setup.env, capture_output=True, text=True, check=True)
    return int(done.stdout.strip().splitlines()[-1])


def test_parallel_backup_and_restore_memory_stays_bounded(
    tmp_path: Path, large_db: Database, target_db: Database, file_storage_config: Any
) -> None:
    setup = setup_for(large_db, tmp_path, file_storage_config, split_table_size="8MiB")
    size = scalar(large_db.dsn, large_db.password, "select pg_total_relation_size('large')")
    backup_kib = peak_rss_kib(setup, "backup", "--jobs", "4")
    backup_id = json.loads(setup.run("--json", "list").stdout)["items"][0]["id"]
    to = with_password(target_db.dsn, target_db.password)
    restore_kib = peak_rss_kib(setup, "restore", backup_id, "--to", to, "--jobs", "4")
    # Four streams' buffers, not the data: the table is several times larger than the bound.
    assert size > 60 * 2**20
    assert backup_kib < 150 * 1024, backup_kib
    assert restore_kib < 150 * 1024, restore_kib


def test_a_parallel_backup_into_a_fresh_supabase_project_is_refused_with_exit_2(
    tmp_path: Path, supabase_source: Any, fresh_project: Any, file_storage_config: Any
) -> None:
    setup = make_setup(
        tmp_path / "cfg", supabase_source.dsn, supabase_source.password, file_storage_config
    )
    manifest = parallel_backup(setup)
    assert manifest["platform"] == "supabase"
    before = user_tables(fresh_project.dsn, fresh_project.password)
    out = restore(setup, manifest["id"], fresh_project, expect=2)
    message = out.json["error"]["message"]
    assert "parallel format" in message and "Supabase project" in message
    assert user_tables(fresh_project.dsn, fresh_project.password) == before


def test_schema_only_restore_of_a_parallel_backup_has_every_table_and_no_rows(
    tmp_path: Path, source_db: Database, target_db: Database, file_storage_config: Any
) -> None:
    setup = setup_for(source_db, tmp_path, file_storage_config)
    manifest = parallel_backup(setup)
    restore(setup, manifest["id"], target_db, "--schema-only", "--jobs", "2")
    tables = user_tables(source_db.dsn, source_db.password)
    assert user_tables(target_db.dsn, target_db.password) == tables
    assert scalar(target_db.dsn, target_db.password, "select count(*) from big") == 0
    index = "select count(*) from pg_indexes where indexname = 'big_f'"
    assert scalar(target_db.dsn, target_db.password, index) == 1
