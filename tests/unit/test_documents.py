"""One parser and one reader for every catalog document: manifests, verification, drill, job-run
and restore records and archive journal entries fail the same way, naming the field."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from drtool.catalog.archive_records import parse_journal
from drtool.catalog.manifest import parse_manifest
from drtool.catalog.records.document import parse_record, read_record, readable
from drtool.catalog.records.drills import parse_drill_record
from drtool.catalog.records.restores import parse_restore_record
from drtool.catalog.records.runs import parse_run
from drtool.catalog.records.verifications import parse_verification
from drtool.errors import IntegrityError, UsageError
from drtool.ids import new_id
from drtool.storage.local import LocalStorage

DRILL_ID = new_id()
PARSERS: dict[str, Callable[[bytes, str], Any]] = {
    "manifest": parse_manifest,
    "verification record": parse_verification,
    "drill record": lambda data, where: parse_drill_record(data, where, DRILL_ID),
    "job-run record": parse_run,
    "restore record": parse_restore_record,
    "archive journal entry": parse_journal,
}


@pytest.mark.parametrize("what", list(PARSERS))
def test_every_document_fails_the_same_way(what: str) -> None:
    parse = PARSERS[what]
    with pytest.raises(IntegrityError, match=f"x.json: {what} is not valid JSON"):
        parse(b"\xff{", "x.json")
    with pytest.raises(IntegrityError, match=f"x.json: {what} is not a JSON object"):
        parse(b"[1]", "x.json")
    with pytest.raises(UsageError, match=f"{what} version 99 was written by a newer drtool"):
        parse(json.dumps({"version": 99}).encode(), "x.json")
    with pytest.raises(IntegrityError, match=rf"x.json: {what} is invalid \(."):
        parse(json.dumps({"version": 1, "id": 3}).encode(), "x.json")


def test_lenient_parsing_drops_only_unreadable_fields_that_have_a_default() -> None:
    doc = {"id": DRILL_ID, "verdict": "pass", "rto_seconds": "fast", "created_at": "never"}
    with pytest.raises(IntegrityError, match="drill record is invalid"):
        parse_drill_record(json.dumps(doc).encode(), "d", DRILL_ID)
    record = parse_drill_record(json.dumps(doc).encode(), "d", DRILL_ID, lenient=True)
    assert record.rto_seconds is None and record.verdict == "pass"
    with pytest.raises(IntegrityError, match="verdict"):
        parse_drill_record(json.dumps({"verdict": 3}).encode(), "d", DRILL_ID, lenient=True)


def test_defaults_fill_fields_older_writers_left_out() -> None:
    record = parse_record(
        dict[str, int], json.dumps({"a": 1}).encode(), "w", "thing", defaults={"b": 2}
    )
    assert record == {"a": 1, "b": 2}


def test_the_reader_passes_over_absent_documents_and_skips_unreadable_ones(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    storage = LocalStorage(tmp_path)
    storage.put_bytes("r/a.json", b'{"n": 1}')
    storage.put_bytes("r/b.json", b"not json")
    storage.put_bytes("r/c.json", b'{"n": 3}')

    def parse(data: bytes, key: str) -> dict[str, int]:
        return parse_record(dict[str, int], data, key, "thing")

    assert read_record(storage, "r/missing.json", parse) is None
    with pytest.raises(IntegrityError):
        read_record(storage, "r/b.json", parse)
    skipped: list[str] = []
    keys = ["r/a.json", "r/missing.json", "r/b.json", "r/c.json"]
    with caplog.at_level(logging.WARNING):
        found = list(readable(storage, keys, parse, on_unreadable=lambda k, _m: skipped.append(k)))
    assert found == [{"n": 1}, {"n": 3}]
    assert skipped == ["r/b.json"] and "skipping r/b.json" in caplog.text
