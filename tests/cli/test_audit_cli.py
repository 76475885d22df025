"""`drtool audit` at the CLI: options documented, the listing newest first with the SPEC
fields, `--verify` exit 3 naming where the chain breaks (a record deleted from disk), usage
errors exit 2. No database is needed: the trail lives in storage."""

from __future__ import annotations

from pathlib import Path

from drtool.config import StorageConfig
from drtool.storage import open_storage
from tests.fixtures.cli import Setup, make_setup
from tests.integration.audit_support import append, record_keys


def setup_with_trail(tmp_path: Path, n: int) -> tuple[Setup, Path]:
    storage_dir = tmp_path / "storage"
    cfg = StorageConfig(url=storage_dir.as_uri())
    setup = make_setup(tmp_path / "cfg", "postgresql://app@db.invalid:5432/app", None, cfg)
    append(open_storage(cfg), n)
    return setup, storage_dir


def test_audit_help_documents_every_option(tmp_path: Path) -> None:
    setup, _ = setup_with_trail(tmp_path, 0)
    out = setup.run("audit", "--help").stdout
    for option in ("--since", "--verify", "--json", "--from", "--user", "--item"):
        assert option in out


def test_audit_lists_newest_first_and_verify_names_the_break(tmp_path: Path) -> None:
    setup, storage_dir = setup_with_trail(tmp_path, 4)
    doc = setup.run("--json", "audit").json
    assert [r["seq"] for r in doc["records"]] == [4, 3, 2, 1]
    assert setup.run("audit", "--since", "1h").stdout.count("restore: succeeded") == 4
    assert setup.run("--json", "audit", "--verify").json["ok"] is True
    assert "audit chain ok: 4 record(s)" in setup.run("audit", "--verify").stdout

    keys = record_keys(open_storage(StorageConfig(url=storage_dir.as_uri())))
    (storage_dir / keys[1]).unlink()
    broken = setup.run("audit", "--verify", expect=3)
    assert "audit chain BROKEN" in broken.stdout
    assert f"{keys[2]} (seq 3): record seq 2 removed after {keys[0]}" in broken.stdout
    as_json = setup.run("--json", "audit", "--verify", expect=3).json
    assert as_json["ok"] is False and as_json["exit_code"] == 3 and as_json["problems"]


def test_audit_usage_errors_exit_2(tmp_path: Path) -> None:
    setup, _ = setup_with_trail(tmp_path, 1)
    setup.run("audit", "--since", "soon", expect=2)
    setup.run("audit", "--from", "nowhere", expect=2)
