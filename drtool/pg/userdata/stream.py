"""Reading the stored form of an export back: the stream of COPY sections split incrementally
into each table's rows, every section's header, row count and SHA-256 checked against the
manifest, and nothing accepted after the last section."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from drtool.errors import IntegrityError
from drtool.pg.userdata.copy_out import END_OF_DATA, copy_header
from drtool.pg.userdata.tables import UserTable

# The end-of-data marker as a whole line: a data line is never ``\.`` (COPY text escapes a
# backslash as ``\\``), so its first occurrence at a line start ends the section.
_MARK_AFTER_NEWLINE = b"\n" + END_OF_DATA


@dataclass(frozen=True)
class SectionCheck:
    rows: int
    sha256: str


class SectionReader:
    """Splits ``chunks`` into sections; each section's rows must be consumed before the next."""

    def __init__(self, chunks: Iterator[bytes], what: str) -> None:
        self._source = chunks
        self._buf = b""
        self._what = what
        self._eof = False

    def _fail(self, problem: str) -> IntegrityError:
        return IntegrityError(
            f"{self._what}: {problem}",
            hint="the export is damaged or was altered; use another export or --from-backup",
            obj="rows",
        )

    def _more(self) -> bool:
        if self._eof:
            return False
        for chunk in self._source:
            if chunk:
                self._buf += chunk
                return True
        self._eof = True
        return False

    def header(self, expected: bytes) -> None:
        while len(self._buf) < len(expected) and self._more():
            pass
        if not self._buf.startswith(expected):
            raise self._fail(f"expected the section {expected.decode(errors='replace').strip()!r}")
        self._buf = self._buf[len(expected) :]

    def rows(self, table: str, check: SectionCheck) -> Iterator[bytes]:
        digest, rows = hashlib.sha256(), 0
        while True:
            if self._buf.startswith(END_OF_DATA):
                self._buf = self._buf[len(END_OF_DATA) :]
                break
            at = self._buf.find(_MARK_AFTER_NEWLINE)
            if at >= 0:
                data, self._buf = self._buf[: at + 1], self._buf[at + len(_MARK_AFTER_NEWLINE) :]
                digest.update(data)
                rows += data.count(b"\n")
                yield data
                break
            cut = self._buf.rfind(b"\n")
            if cut >= 0:
                data, self._buf = self._buf[: cut + 1], self._buf[cut + 1 :]
                digest.update(data)
                rows += data.count(b"\n")
                yield data
            if not self._more():
                raise self._fail(f"section {table} ends early (truncated)")
        if rows != check.rows or digest.hexdigest() != check.sha256:
            raise self._fail(
                f"section {table} has {rows} rows and SHA-256 {digest.hexdigest()[:16]}..., the "
                f"manifest records {check.rows} rows and {check.sha256[:16]}..."
            )

    def finish(self) -> None:
        """Nothing may follow the last section; reading to the end runs the pipeline's own
        final size and SHA-256 checks."""
        if self._buf or self._more():
            raise self._fail("unexpected data after the last section")


def split_sections(
    chunks: Iterator[bytes],
    tables: Sequence[UserTable],
    checks: Sequence[SectionCheck],
    what: str,
) -> Iterator[tuple[UserTable, Iterator[bytes]]]:
    """(table, its rows) in stream order; the rows of one must be consumed before the next."""
    reader = SectionReader(chunks, what)
    for table, check in zip(tables, checks, strict=True):
        reader.header(copy_header(table))
        yield table, reader.rows(table.qualified, check)
    reader.finish()
