"""`--log-format json`: one JSON object per line, and no secret in any of them, even when the
configured DSN carries a password."""

from __future__ import annotations

import json
from typing import Any

from tests.fixtures.cli import Setup


def json_lines(stderr: str) -> list[dict[str, Any]]:
    lines = [line for line in stderr.splitlines() if line.strip()]
    docs = [json.loads(line) for line in lines]  # every line parses, or the test fails here
    for doc in docs:
        assert {"time", "level", "message"} <= set(doc)
    return docs


def test_json_logs_of_a_backup_carry_no_password_from_the_dsn(
    file_setup: Setup, sample_db: Any
) -> None:
    password = sample_db.password
    assert sample_db.dsn.startswith("postgresql://postgres@")
    file_setup.doc["database"]["dsn"] = sample_db.dsn.replace(
        "postgres@", f"postgres:{password}@", 1
    )
    file_setup.write()
    env = {"DRTOOL_DATABASE__PASSWORD": ""}
    result = file_setup.run("--log-format", "json", "-v", "backup", extra_env=env)
    docs = json_lines(result.stderr)
    assert any("backup" in d["message"] for d in docs)
    assert password not in result.stderr and password not in result.stdout


def test_json_logs_of_a_failed_run_carry_no_password(file_setup: Setup) -> None:
    secret = "hunter2-very-secret-pw"
    file_setup.doc["database"]["dsn"] = f"postgresql://app:{secret}@127.0.0.1:1/omnicrm"
    file_setup.write()
    result = file_setup.run("--log-format", "json", "-v", "backup", expect=1)
    docs = json_lines(result.stderr)  # the error line too, and the -v traceback
    assert docs[-1]["level"] == "error" and docs[-1]["exit_code"] == 1
    assert any(d["message"] == "traceback" for d in docs)
    assert secret not in result.stderr and secret not in result.stdout
    assert "127.0.0.1:1/omnicrm" in result.stderr
