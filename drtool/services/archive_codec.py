"""The archived batch format: a pg_dump-plain-style COPY block (header line, the rows' COPY
text lines in primary-key order, ``\\.``), and the canonical hash of a set of rows (SHA-256 of
the lines sorted bytewise), comparable with rows a DELETE ... RETURNING gives in any order."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from drtool.errors import IntegrityError

TRAILER = b"\\."


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def copy_header(schema: str, table: str, columns: Sequence[str]) -> bytes:
    cols = ", ".join(_quote(c) for c in columns)
    return f"COPY {_quote(schema)}.{_quote(table)} ({cols}) FROM stdin;".encode()


def encode_batch(header: bytes, lines: Sequence[bytes]) -> bytes:
    return b"\n".join([header, *lines, TRAILER]) + b"\n"


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


def canonical_sha256(lines: Iterable[bytes]) -> str:
    digest = hashlib.sha256()
    for line in sorted(lines):
        digest.update(line)
        digest.update(b"\n")
    return digest.hexdigest()
