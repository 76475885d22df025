"""The SPEC's `archive` commands at the CLI: options documented, `--json` shapes, usage exit
codes, and no secret in any output (dry runs only: the session's sample stays untouched)."""

from __future__ import annotations

from typing import Any

from tests.fixtures.cli import Setup
from tests.fixtures.pg import TEST_PASSWORD
from tests.integration.test_archive import POLICIES

SPEC_FIELDS = {"name", "action", "matched", "archived", "deleted", "batches", "bytes", "dry_run"}


def with_policies(setup: Setup) -> Setup:
    setup.doc["archival"] = {"policies": POLICIES}
    setup.env["PGPASSWORD"] = TEST_PASSWORD
    setup.write()
    return setup


def test_archive_help_documents_every_command_and_option(file_setup: Setup) -> None:
    out = file_setup.run("archive", "--help").stdout
    assert all(word in out for word in ("run", "list", "restore"))
    run = file_setup.run("archive", "run", "--help").stdout
    for option in (
        "--policy",
        "--dry-run",
        "--batch-size",
        "--max-rows",
        "--sleep",
        "--max-duration",
        "--vacuum",
        "--json",
    ):
        assert option in run
    restore = file_setup.run("archive", "restore", "--help").stdout
    assert all(o in restore for o in ("--policy", "--since", "--until", "--to"))


def test_dry_run_json_has_the_spec_fields_before_or_after_the_command(
    file_setup: Setup, sample_db: Any
) -> None:
    setup = with_policies(file_setup)
    after = setup.run("archive", "run", "--dry-run", "--json").json
    before = setup.run("--json", "archive", "run", "--dry-run", "--policy", "finished-jobs").json
    assert after["ok"] is True and len(after["policies"]) == 3
    for policy in after["policies"] + before["policies"]:
        assert set(policy) >= SPEC_FIELDS and policy["dry_run"] is True
    assert [p["name"] for p in before["policies"]] == ["finished-jobs"]
    human = setup.run("archive", "run", "--dry-run").stdout
    assert "rows match" in human and "nothing was stored or deleted" in human


def test_usage_errors_exit_2_and_no_secret_reaches_any_output(
    file_setup: Setup, sample_db: Any
) -> None:
    setup = with_policies(file_setup)
    outputs = [
        setup.run("archive", "restore", "--policy", "old-raw-events", expect=2),  # no --to
        setup.run("archive", "run", "--batch-size", "0", expect=2),
        setup.run("archive", "run", "--sleep", "soon", expect=2),
        setup.run(
            "-v",
            "archive",
            "restore",
            "--policy",
            "old-raw-events",
            "--to",
            sample_db.dsn,
            "--json",
            expect=2,
        ),
        setup.run("-v", "archive", "run", "--dry-run", "--json"),
        setup.run("archive", "list"),
    ]
    assert "no archived batches" in outputs[3].json["error"]["message"]
    assert outputs[-1].stdout.strip() == "no archived batches"
    for out in outputs:
        assert TEST_PASSWORD not in out.stdout + out.stderr
