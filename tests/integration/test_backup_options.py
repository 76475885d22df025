"""Backup options and environment limits: exclusions recorded, DDL locks not waited on forever,
globals refused by a managed service recorded rather than fatal."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path
from typing import Any

from drtool.pg.tools.find import find_tool
from tests.fixtures.cli import Setup


def test_exclusions_are_honoured_and_recorded(file_setup: Setup) -> None:
    file_setup.doc["backup"] = {
        "exclude_schemas": ["auth_nothing"],
        "exclude_table_data": ["public.embeddings", "raw_events"],
    }
    file_setup.write()
    manifest = file_setup.run("backup", "--json").json
    assert manifest["excluded_schemas"] == ["auth_nothing"]
    excluded = manifest["excluded_table_data"]
    assert set(excluded) == {"public.embeddings", "public.raw_events"}
    assert excluded["public.raw_events"] > 0
    # Drills expect no rows there: the manifest's expected count is 0.
    assert manifest["tables"]["public.raw_events"] == 0
    assert manifest["tables"]["public.contacts"] > 0


def test_excluded_schema_is_neither_dumped_nor_counted(file_setup: Setup) -> None:
    file_setup.doc["backup"] = {"exclude_schemas": ["auth"]}
    file_setup.write()
    manifest = file_setup.run("backup", "--json").json
    assert not any(name.startswith("auth.") for name in manifest["tables"])


def test_a_held_ddl_lock_makes_the_backup_give_up_instead_of_queueing(
    file_setup: Setup, sample_db: Any
) -> None:
    file_setup.doc["database"]["lock_wait_timeout"] = "1s"
    file_setup.write()
    release = threading.Event()
    locked = threading.Event()

    def hold_lock() -> None:
        with sample_db.connect() as conn:
            conn.autocommit = False
            conn.execute("lock table public.contacts in access exclusive mode")
            locked.set()
            release.wait(60)
            conn.rollback()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(10)
        result = file_setup.run("backup", expect=1, timeout=60)
    finally:
        release.set()
        holder.join()
    assert "lock" in result.stderr.lower()
    assert file_setup.run("list", "--json").json["items"] == []


def test_globals_refused_by_the_service_are_recorded_not_fatal(
    tmp_path: Path, file_setup: Setup
) -> None:
    # A bin dir like a managed service's client: the real pg_dump, a pg_dumpall that is denied.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(find_tool("pg_dump").path, bindir / "pg_dump")
    denied = bindir / "pg_dumpall"
    version = find_tool("pg_dump").version
    denied.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = "--version" ]; then echo "pg_dumpall (PostgreSQL) {version}"; exit 0; fi\n'
        'echo "pg_dumpall: error: query failed: ERROR:  permission denied for table pg_authid"'
        " >&2\n"
        "exit 1\n"
    )
    denied.chmod(denied.stat().st_mode | stat.S_IEXEC)
    manifest = file_setup.run("backup", "--json", extra_env={"DRTOOL_PG_BINDIR": str(bindir)}).json
    assert manifest["globals"]["status"] == "unavailable"
    assert "permission denied" in manifest["globals"]["reason"]
    assert [o["name"] for o in manifest["objects"]] == ["dump", "recovery"]
