"""The stored export stream read back: split at any chunk boundary, every section checked,
truncation and trailing data refused; the parents-first order of tables."""

from __future__ import annotations

import hashlib
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drtool.errors import IntegrityError
from drtool.pg.userdata.copy_out import END_OF_DATA, copy_header
from drtool.pg.userdata.stream import SectionCheck, split_sections
from drtool.pg.userdata.tables import Column, UserTable, topological

T1 = UserTable("public", "Weird Table", "user_id", (Column("user_id", "text"), Column("a", "text")))
T2 = UserTable("public", "b", "user_id", (Column("user_id", "text"),))
ROWS1 = b"u\t\\\\.\nu\t\\N\nu\t\n"  # a value that is a backslash and a dot, a NULL, an empty string
ROWS2 = b""


def _stream() -> bytes:
    return copy_header(T1) + ROWS1 + END_OF_DATA + copy_header(T2) + ROWS2 + END_OF_DATA


def _checks() -> list[SectionCheck]:
    return [
        SectionCheck(rows.count(b"\n"), hashlib.sha256(rows).hexdigest()) for rows in (ROWS1, ROWS2)
    ]


def _read(chunks: list[bytes], checks: list[SectionCheck] | None = None) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for table, rows in split_sections(iter(chunks), [T1, T2], checks or _checks(), "export x"):
        out[table.qualified] = b"".join(rows)
    return out


@given(st.lists(st.integers(min_value=0, max_value=len(_stream())), max_size=8))
def test_any_chunking_reads_the_same_sections(cuts: list[int]) -> None:
    data = _stream()
    points = sorted({0, len(data), *cuts})
    chunks = [data[a:b] for a, b in itertools.pairwise(points)]
    assert _read(chunks) == {"public.Weird Table": ROWS1, "public.b": ROWS2}


def test_truncated_or_extended_or_altered_stream_is_an_integrity_error() -> None:
    data = _stream()
    with pytest.raises(IntegrityError):
        _read([data[:-5]])
    with pytest.raises(IntegrityError):
        _read([data + b"x"])
    with pytest.raises(IntegrityError):
        _read([data.replace(b"\\N", b"\\n")])
    with pytest.raises(IntegrityError):
        _read([data], [SectionCheck(2, _checks()[0].sha256), _checks()[1]])


def test_the_header_quotes_names_like_pg_dump() -> None:
    assert copy_header(T1) == b'COPY "public"."Weird Table" ("user_id", "a") FROM stdin;\n'


def test_parents_come_first_and_a_cycle_falls_back_to_name_order() -> None:
    names = {1: "public.a_child", 2: "public.b_parent", 3: "public.c_grandparent"}
    order, cycle = topological(names, {(1, 2), (2, 3), (1, 1)})
    assert order == [3, 2, 1] and not cycle
    order, cycle = topological(names, {(1, 2), (2, 1)})
    assert cycle and sorted(order) == [1, 2, 3]
