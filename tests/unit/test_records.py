"""Verification records: keys from validated ids only, round trips, newest-by-key lookups that
read one record, and clean errors for damaged or newer records."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drtool.catalog.records.verifications import (
    Problem,
    VerificationRecord,
    last_verification,
    last_verifications,
    latest_verification,
    parse_verification,
    record_key,
    verifications,
    write_verification,
)
from drtool.errors import IntegrityError, UsageError
from drtool.ids import new_id
from drtool.storage.base import Storage
from drtool.storage.local import LocalStorage

T0 = datetime(2026, 11, 26, 2, 15, tzinfo=UTC)
ITEM_A = new_id(T0)
ITEM_B = new_id(T0 + timedelta(hours=1))


class CountingStorage(LocalStorage):
    """A local directory that counts object reads."""

    reads = 0

    def get_bytes(self, key: str) -> bytes:
        self.reads += 1
        return super().get_bytes(key)


def record(item_id: str, minutes: int, ok: bool = True, **extra: object) -> VerificationRecord:
    at = T0 + timedelta(days=1, minutes=minutes)
    problems = [] if ok else [Problem("dump", 3, "chunk 3 failed authentication", "hint")]
    return VerificationRecord(
        id=new_id(at),
        item_id=item_id,
        kind="backup",
        at=at,
        deep=True,
        ok=ok,
        problems=problems,
        seconds=1.5,
        bytes=1000,
        plain_bytes=4000,
        tool_version="0.1.0",
        **extra,
    )


@pytest.fixture
def storage(tmp_path: Path) -> CountingStorage:
    return CountingStorage(tmp_path / "store")


def test_a_record_round_trips_under_its_documented_key(storage: Storage) -> None:
    rec = record(ITEM_A, 0, ok=False)
    key = write_verification(storage, rec)
    assert key == f"verifications/{ITEM_A}/{rec.id}.json"
    doc = json.loads(storage.get_bytes(key))
    assert doc["format"] == "drtool-verification" and doc["version"] == 1
    assert doc["bytes"] == 1000 and doc["problems"][0] == {
        "object": "dump",
        "chunk": 3,
        "problem": "chunk 3 failed authentication",
        "hint": "hint",
    }
    assert parse_verification(storage.get_bytes(key), key) == rec


def test_keys_are_built_only_from_drtool_ids() -> None:
    for bad in ("../x", "latest", "a/b", ""):
        with pytest.raises(UsageError):
            record_key(bad, ITEM_A)
        with pytest.raises(UsageError):
            record_key(ITEM_A, bad)


def test_the_newest_record_wins_and_only_it_is_read(storage: CountingStorage) -> None:
    assert last_verification(storage, ITEM_A) is None
    for minutes, ok in ((0, True), (10, False), (5, True)):
        write_verification(storage, record(ITEM_A, minutes, ok))
    write_verification(storage, record(ITEM_B, 20))
    storage.reads = 0
    last = last_verification(storage, ITEM_A)
    assert last is not None and last.ok is False and last.at == T0 + timedelta(days=1, minutes=10)
    assert storage.reads == 1
    both = last_verifications(storage, [ITEM_B, ITEM_A, "not-an-id"])
    assert list(both) == [ITEM_B, ITEM_A, "not-an-id"]
    found_b = both[ITEM_B]
    assert found_b is not None and found_b.ok and both["not-an-id"] is None
    latest = latest_verification(storage)
    assert latest is not None and latest.item_id == ITEM_B
    refs = verifications(storage)
    assert [r.item_id for r in refs] == [ITEM_A, ITEM_A, ITEM_A, ITEM_B]
    assert [r.record_id for r in refs] == sorted(r.record_id for r in refs)
    assert len(verifications(storage, ITEM_A)) == 3


def test_a_damaged_newest_record_falls_back_to_the_one_before(storage: Storage) -> None:
    older, newer = record(ITEM_A, 0, ok=False), record(ITEM_A, 1)
    write_verification(storage, older)
    storage.put_bytes(record_key(ITEM_A, newer.id), b"{not json")
    storage.put_bytes(f"verifications/{ITEM_A}/notes.txt", b"ignored")
    assert last_verification(storage, ITEM_A) == older


def test_a_record_from_a_newer_drtool_is_refused_with_upgrade_advice() -> None:
    doc = json.loads(record(ITEM_A, 0).model_dump_json())
    doc["version"] = 99
    with pytest.raises(UsageError, match="newer drtool") as caught:
        parse_verification(json.dumps(doc).encode(), "r.json")
    assert caught.value.hint is not None and "upgrade" in caught.value.hint


def test_unknown_fields_are_kept_for_forward_compatibility() -> None:
    doc = json.loads(record(ITEM_A, 0).model_dump_json())
    doc["replica"] = "dr-region"
    parsed = parse_verification(json.dumps(doc).encode(), "r.json")
    assert (parsed.model_extra or {})["replica"] == "dr-region"


@given(st.binary(max_size=512))
@settings(max_examples=200, deadline=None)
def test_any_bytes_parse_or_fail_cleanly(blob: bytes) -> None:
    with contextlib.suppress(IntegrityError, UsageError):
        parse_verification(blob, "r.json")
