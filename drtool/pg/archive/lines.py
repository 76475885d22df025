"""A batch's COPY text lines taken apart: each line of the batch's one ``COPY`` is the row
version's parts (xmin, ctid, time column, key columns) followed by the row itself, whose COPY
text is kept byte for byte; the parts are decoded here, in bulk, with no per-row round trip."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from datetime import datetime

from drtool.errors import DatabaseError

Key = tuple[str, ...]

# xmin, ctid, time: the parts before the key columns.
LEADING_FIELDS = 3
NULL = b"\\N"

# COPY TO's text format escapes the backslash and these control characters; every other byte
# is written as is (PostgreSQL's CopyAttributeOutText).
_ESCAPED = {b"b": b"\b", b"f": b"\f", b"n": b"\n", b"r": b"\r", b"t": b"\t", b"v": b"\v"}
_ESCAPE = re.compile(rb"\\(.)", re.DOTALL)

# timestamptz as COPY writes it with the archive session's settings (DateStyle ISO, TimeZone
# UTC), one per line. Values all in this form sort as text exactly as they sort as times.
_ISO_UTC_LINES = re.compile(rb"(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{1,6})?\+00\n)*")


def rows_digest(versions: Iterable[str]) -> str:
    """SHA-256 of the row versions sorted (bytewise) and joined by newlines: the client-side
    twin of the server's digest aggregate (session.DIGEST_AGG)."""
    return hashlib.sha256("".join(v + "\n" for v in sorted(versions)).encode()).hexdigest()


def copy_text_value(field: bytes, encoding: str) -> str:
    """One field of a COPY text line as the text the server would give for ``value::text``."""
    if b"\\" in field:
        field = _ESCAPE.sub(lambda m: _ESCAPED.get(m.group(1), m.group(1)), field)
    return field.decode(encoding)


def _parse_time(value: bytes) -> datetime | None:
    try:
        return datetime.fromisoformat(value.decode())
    except ValueError:  # infinity, BC or a year past 9999: no Python datetime
        return None


def time_range(values: Sequence[bytes]) -> tuple[datetime | None, datetime | None]:
    """The earliest and latest of the time column's COPY text values (NULLs ignored)."""
    present = [v for v in values if v != NULL]
    if not present:
        return None, None
    if _ISO_UTC_LINES.fullmatch(b"\n".join(present) + b"\n"):
        return _parse_time(min(present)), _parse_time(max(present))
    times = [t for v in present if (t := _parse_time(v)) is not None]
    return min(times, default=None), max(times, default=None)


def _column(values: Sequence[bytes], encoding: str) -> list[str]:
    """Decoded COPY text values, in one pass over them all when none is escaped."""
    joined = b"\n".join(values)
    if b"\\" in joined:
        return [copy_text_value(v, encoding) for v in values]
    return joined.decode(encoding).split("\n") if values else []


def split_lines(
    raw: Sequence[bytes], key_columns: int, encoding: str, what: str
) -> tuple[list[Key], list[bytes], list[str], str, tuple[datetime | None, datetime | None]]:
    """(keys, row lines, ctids, versions digest, time range) of a batch's COPY lines. A row
    version is ``<key text>\\t<xmin>`` (session.version). Columns are taken apart with
    zip and join (C loops): thousands of rows per batch."""
    width = LEADING_FIELDS + key_columns
    parts = [line.split(b"\t", width) for line in raw]
    if parts and min(map(len, parts)) <= width:
        raise DatabaseError(f"{what}: a line of the batch's COPY has fewer fields than expected")
    columns = list(zip(*parts, strict=False)) if parts else [()] * (width + 1)
    key_text = [_column(columns[LEADING_FIELDS + i], encoding) for i in range(key_columns)]
    keys: list[Key] = list(zip(*key_text, strict=True))
    xmins = _column(columns[0], "ascii")
    versions = list(map("\t".join, zip(*key_text, xmins, strict=True)))
    tids = _column(columns[1], "ascii")
    lines = list(columns[width])
    return keys, lines, tids, rows_digest(versions), time_range(columns[2])
