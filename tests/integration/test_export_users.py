"""export-users: kill -9 mid-run leaves only complete exports listed and a rerun works; one
user's failure does not stop the others and is named (exit 1); --changed-since picks the
users with recent rows."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from drtool.config import StorageConfig
from drtool.pg.dump.snapshot import lock_key
from drtool.storage import open_storage
from tests.fixtures.cli import Setup
from tests.integration.export_helpers import people_setup

USERS = 300

SCHEMA = f"""
create table people (id text primary key, updated_at timestamptz not null default now());
create table notes (id serial primary key, user_id text not null references people (id),
                    body text, created_at timestamptz not null default now());
insert into people (id, updated_at)
  select format('u%s', lpad(i::text, 4, '0')), now() - interval '3 days'
  from generate_series(1, {USERS}) i;
insert into notes (user_id, body, created_at)
  select id, repeat('x', 200), now() - interval '3 days' from people;
insert into people values ('bad id', now() - interval '3 days');
update people set updated_at = now() where id = 'u0007';
insert into notes (user_id, body) values ('u0011', 'fresh');
"""


def _manifests(storage: Path) -> set[str]:
    return {p.parent.name for p in (storage / "exports").glob("*/*/manifest.json")}


def _people(empty_db: Any, tmp_path: Path, storage: StorageConfig) -> tuple[Setup, Path]:
    """The people/notes schema loaded, and a configuration whose users table is people."""
    setup = people_setup(empty_db, tmp_path, storage, SCHEMA)
    return setup, Path(storage.url.removeprefix("file://"))


def test_export_users_survives_kill_9_and_names_failed_users(
    empty_db: Any, tmp_path: Path, file_storage_config: StorageConfig
) -> None:
    setup, storage = _people(empty_db, tmp_path, file_storage_config)

    proc = setup.popen("export-users", "--all")
    deadline = time.monotonic() + 120
    while len(_manifests(storage)) < 5 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    committed = _manifests(storage)
    assert 5 <= len(committed) < USERS
    listed = setup.run("--json", "list", "--kind", "export").json["items"]
    assert {item["id"] for item in listed} == committed
    # Every listed export is whole: stored bytes match their manifests.
    verified = setup.run("--json", "verify", "--all").json["items"]
    assert {v["id"] for v in verified} == committed and all(v["ok"] for v in verified)

    rerun = setup.run("--json", "export-users", "--all", expect=1).json
    assert rerun["ok"] is False
    assert rerun["exported"] == USERS
    assert [f["user_id"] for f in rerun["failed"]] == ["bad id"]
    assert len(_manifests(storage)) == len(committed) + USERS

    changed = setup.run("--json", "export-users", "--changed-since", "1d").json
    assert changed["exported"] == 2 and changed["failed"] == []
    setup.run("export-users", "--all", "--changed-since", "1d", expect=2)


def test_second_export_users_run_is_refused_with_exit_5_naming_the_lock(
    empty_db: Any, tmp_path: Path, file_storage_config: StorageConfig
) -> None:
    setup, storage = _people(empty_db, tmp_path, file_storage_config)
    description = open_storage(file_storage_config, tmp_path).description
    # Another run of the job holds its lock (as a second container would).
    with empty_db.connect() as holder:
        holder.autocommit = True
        holder.execute(
            "select pg_advisory_lock(%s)", (lock_key(f"drtool:export-users:{description}"),)
        )
        result = setup.run("export-users", "--all", expect=5)
    assert "drtool:export-users" in result.stderr
    assert _manifests(storage) == set()
