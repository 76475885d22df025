"""The archived batch format: a pg_dump-plain-style COPY block (header line, the rows' COPY
text lines in primary-key order, ``\\.``), and the rows' hash: SHA-256 of the row lines, each
with its newline, in primary-key order (exactly the bytes between header and terminator)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from drtool.errors import IntegrityError

TRAILER = b"\\."


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def copy_header(schema: str, table: str, columns: Sequence[str]) -> bytes:
    cols = ", ".join(_quote(c) for c in columns)
    return f"COPY {_quote(schema)}.{_quote(table)} ({cols}) FROM stdin;".encode()


def encode_batch(header: bytes, lines: Sequence[bytes]) -> bytes:
    return b"\n".join([header, *lines, TRAILER]) + b"\n"


def rows_sha256(body: bytes, header: bytes) -> str:
    """SHA-256 of a batch's row lines: the bytes between the header and the terminator."""
    rows = memoryview(body)[len(header) + 1 : len(body) - len(TRAILER) - 1]
    return hashlib.sha256(rows).hexdigest()


def decode_batch(body: bytes, header: bytes, what: str) -> list[bytes]:
    """The row lines of a stored batch; IntegrityError unless it is exactly the expected
    header, rows, and the terminator."""
    if not body.endswith(b"\n"):
        raise IntegrityError(f"{what}: the batch does not end with a newline", obj="rows")
    lines = body[:-1].split(b"\n")
    if len(lines) < 2 or lines[0] != header or lines[-1] != TRAILER:
        raise IntegrityError(
            f"{what}: the batch is not the COPY block the manifest describes", obj="rows"
        )
    return lines[1:-1]
