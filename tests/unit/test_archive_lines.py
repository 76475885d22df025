"""A batch's COPY lines taken apart without a server: escaped key text, the versions digest,
the time range (text order only where it is time order), and a malformed line refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from drtool.errors import DatabaseError
from drtool.pg.archive.lines import copy_text_value, rows_digest, split_lines, time_range


@pytest.mark.parametrize(
    ("field", "text"),
    [
        (b"plain", "plain"),
        (b"tab\\there", "tab\there"),
        (b"back\\\\slash\\nnew\\rcr\\b\\f\\v", "back\\slash\nnew\rcr\b\f\v"),
        (b"\\\\t", "\\t"),
        (b"caf\xc3\xa9", "café"),
    ],
)
def test_copy_text_values_decode_to_the_servers_text(field: bytes, text: str) -> None:
    assert copy_text_value(field, "utf-8") == text


def test_lines_split_into_keys_rows_ctids_and_the_versions_digest() -> None:
    raw = [
        b"901\t(0,2)\t2020-01-02 03:04:05.5+00\tb\\tx\t2\trow two\twith\\ttab",
        b"900\t(0,1)\t2020-01-02 03:04:05+00\ta\t10\trow one",
    ]
    keys, lines, tids, digest, (lo, hi) = split_lines(raw, 2, "utf-8", "t")
    assert keys == [("b\tx", "2"), ("a", "10")]
    assert lines == [b"row two\twith\\ttab", b"row one"]
    assert tids == ["(0,2)", "(0,1)"]
    assert digest == rows_digest(["b\tx\t2\t901", "a\t10\t900"])
    assert lo == datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert hi == datetime(2020, 1, 2, 3, 4, 5, 500000, tzinfo=UTC)


def test_an_unescaped_batch_takes_the_fast_path_to_the_same_keys() -> None:
    raw = [b"7\t(1,%d)\t\\N\t%d\tx" % (i, i) for i in range(1, 2001)]
    keys, lines, tids, _digest, times = split_lines(raw, 1, "utf-8", "t")
    assert keys == [(str(i),) for i in range(1, 2001)]
    assert lines == [b"x"] * 2000 and tids[-1] == "(1,2000)"
    assert times == (None, None)


def test_a_line_with_too_few_fields_is_refused() -> None:
    with pytest.raises(DatabaseError):
        split_lines([b"1\t(0,1)\t\\N\t5\tx", b"1\t(0,2)\t\\N"], 1, "utf-8", "t")


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([b"2021-01-01 00:00:00+00", b"2020-12-31 23:59:59.999999+00", b"\\N"], (1, 0)),
        # Not all in the fixed form (a year past 9999, infinity, BC): parsed one by one,
        # and what has no Python datetime left out.
        ([b"2021-01-01 00:00:00+00", b"infinity", b"2020-06-01 00:00:00+00"], (2, 0)),
        (
            [b"12021-01-01 00:00:00+00", b"2020-06-01 00:00:00+00 BC", b"2020-06-01 00:00:00+00"],
            (2, 2),
        ),
    ],
)
def test_the_time_range_is_by_time(values: list[bytes], expected: tuple[int, int]) -> None:
    lo, hi = time_range(values)
    assert (lo, hi) == (
        datetime.fromisoformat(values[expected[0]].decode()),
        datetime.fromisoformat(values[expected[1]].decode()),
    )
