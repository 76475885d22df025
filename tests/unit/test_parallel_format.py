"""The parallel format's pieces that need no server: a data object's COPY text cut out of its
psql script whatever the chunking, its names, pg_dump patterns, the manifest's parts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drtool.catalog.catalog import data_object
from drtool.catalog.manifest import BackupManifest, TablePart
from drtool.errors import IntegrityError
from drtool.pg.dump.copy_out import COPY_TRAILER, PartPlan, script_header
from drtool.pg.dump.snapshot import TableRef
from drtool.pg.dump.stream import exact_pattern
from drtool.pg.restore.copy_in import copy_text

HEADER = b'SET "timezone" = \'UTC\';\nCOPY "public"."t" ("a") FROM stdin;\n'


def cut(data: bytes, sizes: list[int]) -> list[bytes]:
    chunks, at = [], 0
    for size in sizes:
        chunks.append(data[at : at + size])
        at += size
    chunks.append(data[at:])
    return chunks


@given(
    rows=st.binary(max_size=300).map(lambda b: b.replace(b"\\.\n", b"")),
    sizes=st.lists(st.integers(min_value=0, max_value=40), max_size=30),
)
def test_copy_text_is_the_rows_between_preamble_and_end_marker_whatever_the_chunks(
    rows: bytes, sizes: list[int]
) -> None:
    whole = HEADER + rows + COPY_TRAILER
    assert b"".join(copy_text(cut(whole, sizes), len(HEADER), "data-00001")) == rows


@pytest.mark.parametrize("tail", [b"", b"\\.", b"\\.\nextra", b"x\n"])
def test_copy_text_without_its_end_marker_is_an_integrity_error(tail: bytes) -> None:
    with pytest.raises(IntegrityError, match="data-00007"):
        b"".join(copy_text([HEADER, b"1\n", tail], len(HEADER), "data-00007"))


def test_a_short_object_that_ends_inside_its_preamble_is_an_integrity_error() -> None:
    with pytest.raises(IntegrityError):
        b"".join(copy_text([HEADER[:10]], len(HEADER), "data-00002"))


def test_the_script_header_sets_the_copy_settings_and_names_the_columns() -> None:
    part = PartPlan(TableRef("my schema", 'odd."name'), ("id", "Value"), 1, 1)
    header = script_header(part, "UTF8").decode()
    assert header.startswith("SET \"client_encoding\" = 'UTF8';\n")
    assert "SET \"extra_float_digits\" = '3';\n" in header
    assert header.endswith('COPY "my schema"."odd.""name" ("id", "Value") FROM stdin;\n')
    assert script_header(PartPlan(TableRef("s", "t"), (), 1, 1), "UTF8").endswith(
        b'COPY "s"."t" FROM stdin;\n'
    )


def test_ctid_ranges_cover_the_table_the_last_open_ended() -> None:
    first = PartPlan(TableRef("s", "t"), ("a",), 1, 2, 0, 32)
    last = PartPlan(TableRef("s", "t"), ("a",), 2, 2, 32, None)
    assert first.where() == "ctid >= '(0,0)' AND ctid < '(32,0)'"
    assert last.where() == "ctid >= '(32,0)'"
    assert PartPlan(TableRef("s", "t"), ("a",), 1, 1).where() is None


def test_names_and_patterns() -> None:
    assert data_object(7) == ("data-00007", "data-00007.sql.zst.age")
    assert exact_pattern('a"b', "c*d") == '"a""b"."c*d"'


def test_a_manifest_without_parts_reads_as_before_and_parts_round_trip() -> None:
    base = {
        "id": "20261205T000000.000Z-0000",
        "kind": "backup",
        "created_at": "2026-12-05T00:00:00Z",
        "finished_at": "2026-12-05T00:00:01Z",
        "tool_version": "0",
    }
    old = BackupManifest.model_validate(base)
    assert old.parts == [] and "parts" not in old.model_dump(mode="json")
    part = TablePart(
        object="data-00001",
        table="public.t",
        schema_name="public",
        table_name="t",
        part=1,
        parts=1,
        columns=["a"],
        rows=3,
        header_size=40,
    )
    new = BackupManifest.model_validate({**base, "dump_format": "parallel", "parts": [part]})
    again = BackupManifest.model_validate_json(new.to_json())
    assert again.parts == [part] and again.dump_format == "parallel"
