"""The break-glass promise: a backup restores with Debian's age, zstd and pg_restore alone."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.cli import Setup
from tests.integration.test_backup import exact_counts


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is not installed (CI must install it: apt-get install {tool})")
        pytest.skip(f"{tool} is not installed")
    return path


def test_age_zstd_pg_restore_restore_a_backup_without_drtool(
    file_setup: Setup, empty_db: Any
) -> None:
    age, zstd = require("age"), require("zstd")
    backup_id = file_setup.run("backup").stdout.strip().splitlines()[-1]
    manifest = file_setup.run("show", backup_id, "--json").json
    root = Path(file_setup.doc["storage"]["url"].removeprefix("file://"))
    dump_object = root / "backups" / backup_id / "dump.pgdump.zst.age"
    assert dump_object.is_file()
    # Exactly the command docs/format.md and the runbook give, run by a shell.
    command = (
        f"set -o pipefail; {age} -d -i {file_setup.identity_path} {dump_object} "
        f'| {zstd} -d | pg_restore --no-owner --exit-on-error -d "$TARGET"'
    )
    env = {**os.environ, "TARGET": empty_db.dsn, **empty_db.env}
    done = subprocess.run(
        ["bash", "-c", command], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert (
        exact_counts(empty_db.dsn, empty_db.password, list(manifest["tables"]))
        == manifest["tables"]
    )
    # The globals object is plain SQL behind the same two standard tools.
    globals_object = root / "backups" / backup_id / "globals.sql.zst.age"
    sql = subprocess.run(
        [
            "bash",
            "-c",
            f"set -o pipefail; {age} -d -i {file_setup.identity_path} {globals_object} | {zstd} -d",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "CREATE ROLE authenticated" in sql
