"""The break-glass promise for the parallel format: a ``backup --jobs N`` restores with age,
zstd, pg_restore and psql alone, by the commands docs/format.md gives, run as written."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

from tests.fixtures.cli import Setup
from tests.fixtures.pg import Database
from tests.integration.restore_support import checksums, storage_root, user_tables
from tests.integration.test_backup import exact_counts
from tests.integration.test_break_glass import require
from tests.integration.test_parallel import (  # noqa: F401  (fixtures)
    parallel_backup,
    setup_for,
    source_db,
    target_db,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "format.md"
RUNBOOK = Path(__file__).resolve().parents[2] / "runbooks" / "restore.md"


def documented_commands() -> str:
    """The shell block of docs/format.md's parallel-format break-glass, verbatim."""
    text = DOCS.read_text(encoding="utf-8")
    section = text[text.index("**Break-glass** (tested in CI") :]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


def test_the_documented_commands_restore_a_parallel_backup_without_drtool(
    tmp_path: Path,
    source_db: Database,  # noqa: F811
    target_db: Database,  # noqa: F811
    file_storage_config: Any,
) -> None:
    age, zstd = require("age"), require("zstd")
    setup: Setup = setup_for(source_db, tmp_path, file_storage_config)
    manifest = parallel_backup(setup)
    backup_id = manifest["id"]
    assert len(manifest["parts"]) > 3
    script = documented_commands()
    # The runbook gives the same three steps (its DSN variable named differently).
    runbook = RUNBOOK.read_text(encoding="utf-8").replace("$TARGET_DSN", "$TARGET")
    for line in script.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            assert line in runbook, line
    # Run exactly that text: the backup folder as a copy would leave it, the identity file
    # named as in the docs, age and zstd from PATH.
    work = tmp_path / "glass"
    work.mkdir()
    (work / backup_id).symlink_to(storage_root(setup) / "backups" / backup_id)
    (work / "identity.txt").write_bytes(Path(setup.identity_path).read_bytes())
    command = script.replace("<id>", backup_id)
    tools = os.pathsep.join(str(Path(t).parent) for t in (age, zstd))
    env = {
        **target_db.env,
        "TARGET": target_db.dsn,
        "PATH": tools + os.pathsep + os.environ["PATH"],
    }
    done = subprocess.run(
        ["bash", "-c", command], cwd=work, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    tables = user_tables(source_db.dsn, source_db.password)
    assert checksums(target_db.dsn, target_db.password, tables) == checksums(
        source_db.dsn, source_db.password, tables
    )
    counted = exact_counts(target_db.dsn, target_db.password, list(manifest["tables"]))
    assert counted == manifest["tables"]
