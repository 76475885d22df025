"""Audit records version 1, as drtool wrote them (tests/golden/audit/: a chain of three
records across a month boundary, and its head): they parse, and the chain verifies; a bit
changed in any of them is named by `audit --verify`."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from drtool.catalog.records.audit import parse_audit_record
from drtool.config import Config, StorageConfig
from drtool.services.audit.view import verify_audit
from drtool.services.context import Context
from drtool.storage import open_storage

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "audit"
RECORDS = sorted((GOLDEN / "audit").glob("*/*/*.json"))


def copy(tmp_path: Path) -> Context:
    root = tmp_path / "storage"
    shutil.copytree(GOLDEN, root)
    storage = open_storage(StorageConfig(url=root.as_uri()))
    return Context(Config(storage=StorageConfig()), storage, lambda: datetime.now(UTC))


def test_golden_records_parse_and_their_chain_verifies(tmp_path: Path) -> None:
    assert len(RECORDS) == 3
    records = [parse_audit_record(p.read_bytes(), p.name) for p in RECORDS]
    assert [r.seq for r in records] == [1, 2, 3]
    assert records[2].outcome == "failed" and records[2].exit_code == 5
    result = verify_audit(copy(tmp_path))
    assert result.ok, result.problems
    assert result.records == 3


@pytest.mark.parametrize("index", [0, 1, 2])
def test_a_flipped_byte_in_any_golden_record_is_named(tmp_path: Path, index: int) -> None:
    ctx = copy(tmp_path)
    path = tmp_path / "storage" / RECORDS[index].relative_to(GOLDEN)
    path.write_bytes(path.read_bytes().replace(b'"target": "', b'"target": "X', 1))
    result = verify_audit(ctx)
    assert not result.ok
    key = str(RECORDS[index].relative_to(GOLDEN))
    assert any(key in p and "edited" in p for p in result.problems), result.problems
