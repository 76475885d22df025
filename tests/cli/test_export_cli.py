"""The SPEC's contract for the per-user commands: options, exit codes and --json shapes."""

from __future__ import annotations

from typing import Any

from tests.fixtures.cli import Setup


def test_export_user_json_has_id_user_id_and_tables(file_setup: Setup, sample_db: Any) -> None:
    doc = file_setup.run("--json", "export-user", sample_db.info.heavy_user_id).json
    assert doc["ok"] is True and {"id", "user_id", "tables"} <= doc.keys()
    assert all(isinstance(n, int) for n in doc["tables"].values())
    human = file_setup.run("export-user", sample_db.info.heavy_user_id).stdout
    assert human.strip().splitlines()[-1].startswith("20")  # the id is the last line


def test_export_users_json_has_exported_and_failed(file_setup: Setup) -> None:
    doc = file_setup.run("--json", "export-users", "--all").json
    assert doc["exported"] == 10 and doc["failed"] == [] and doc["ok"] is True


def test_selection_and_source_mistakes_exit_2(file_setup: Setup) -> None:
    assert file_setup.run("export-users", expect=2).code == 2
    assert file_setup.run("export-users", "--changed-since", "soon", expect=2).code == 2
    result = file_setup.run("--json", "restore-user", "x", "--to", "dbname=x", expect=2)
    assert "--from-export" in result.json["error"]["message"]
    result = file_setup.run(
        "restore-user",
        "x",
        "--from-export",
        "20261126T021500.123Z-7f3a",
        "--to",
        "dbname=x",
        expect=2,
    )
    assert "no complete export" in result.stderr


def test_export_users_is_a_schedulable_command() -> None:
    from drtool.cli.schedule_line import SCHEDULABLE, parse_schedule_command

    assert "export-users" in SCHEDULABLE
    call = parse_schedule_command(["export-users", "--changed-since", "25h"])
    assert call.params["changed_since"] == "25h"
