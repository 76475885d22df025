"""Start-up stays light: the CLI's entry point, `drtool --version` and `drtool status` on
file:// storage do not import the heavy libraries the other commands need (behaviour, not
timing: which modules a fresh interpreter has loaded)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from drtool.crypto.keys import generate_identity, write_identity_file

ROOT = Path(__file__).resolve().parents[2]

# What backup, restore, archive, S3, schedules and metrics need; none of it at start-up.
HEAVY = [
    "boto3",
    "botocore",
    "psycopg",
    "apscheduler",
    "cryptography",
    "zstandard",
    "prometheus_client",
    "jinja2",
]

PROBE = """
import json, sys
from drtool.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
else:
    code = None
heavy = {heavy!r}
loaded = sorted(m for m in heavy if m in sys.modules)
sys.stderr.write("\\n@@" + json.dumps({{"code": code, "loaded": loaded}}) + "\\n")
"""


def loaded_after(args: list[str], heavy: list[str], cwd: Path) -> tuple[int | None, list[str]]:
    """Run the CLI's ``main`` with ``args`` in a fresh interpreter: (exit code, which of
    ``heavy`` it imported)."""
    env = {k: v for k, v in os.environ.items() if k != "DRTOOL_CONFIG"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=heavy), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )
    marker = done.stderr.rpartition("\n@@")[2]
    assert marker, done.stderr
    result = json.loads(marker)
    return result["code"], result["loaded"]


def test_importing_the_cli_loads_no_heavy_library(tmp_path: Path) -> None:
    code = "import json, sys, drtool.cli.main; print(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    modules = set(json.loads(done.stdout))
    assert [m for m in [*HEAVY, "pydantic", "yaml"] if m in modules] == []
    # No command module either: each is imported when its command is resolved.
    assert [m for m in modules if m.startswith("drtool.cli.commands")] == []


def test_version_loads_no_heavy_library(tmp_path: Path) -> None:
    code, loaded = loaded_after(["--version"], [*HEAVY, "pydantic"], tmp_path)
    assert code == 0
    assert loaded == []


def test_status_on_local_storage_loads_no_heavy_library(tmp_path: Path) -> None:
    identity = generate_identity()
    write_identity_file(tmp_path / "id.txt", identity)
    cfg = tmp_path / "drtool.yaml"
    doc = {
        "database": {"dsn": "postgresql://drtool@127.0.0.1:1/none"},
        "storage": {"url": f"file://{tmp_path / 'store'}"},
        "encryption": {"recipients": [identity.recipient().encode()]},
    }
    cfg.write_text(yaml.safe_dump(doc), encoding="utf-8")
    code, loaded = loaded_after(["--config", str(cfg), "status"], HEAVY, tmp_path)
    assert code == 4  # no backup yet: the RPO objective is breached
    assert loaded == []


@pytest.mark.parametrize("command", ["status", "archive", "backup", "schedule"])
def test_a_command_resolved_lazily_is_the_registered_one(command: str) -> None:
    import click

    from drtool.cli.main import LAZY_COMMANDS, cli

    ctx = click.Context(cli)
    resolved = cli.get_command(ctx, command)
    assert resolved is not None and resolved.name == command
    assert command in LAZY_COMMANDS
    assert cli.list_commands(ctx) == sorted(LAZY_COMMANDS)
