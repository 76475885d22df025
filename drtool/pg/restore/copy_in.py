"""Loading the parallel format's data objects into a target: each object's COPY text (its
psql preamble skipped, its end-of-data line checked and held back) streamed into
``COPY table (columns) FROM STDIN`` on a loader connection, in one transaction per loader."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import psycopg
from psycopg import sql

from drtool.errors import IntegrityError
from drtool.pg.conn import Target, connect, translate
from drtool.pg.dump.copy_out import COPY_TRAILER, copy_in_statement


@dataclass(frozen=True)
class PartLoad:
    """One data object to load: where its rows go and how long its preamble is."""

    obj: str
    schema: str
    table: str
    columns: tuple[str, ...]
    header_size: int


def copy_text(chunks: Iterable[bytes], header_size: int, obj: str) -> Iterator[bytes]:
    """The COPY text of a data object: the first ``header_size`` bytes skipped, the final
    end-of-data line checked and not passed on (the protocol's end of copy says it)."""
    skip = header_size
    tail = b""
    keep = len(COPY_TRAILER)
    for chunk in chunks:
        if skip:
            cut = min(skip, len(chunk))
            chunk, skip = chunk[cut:], skip - cut
        data = tail + chunk
        if len(data) > keep:
            yield data[:-keep]
            tail = data[-keep:]
        else:
            tail = data
    if skip or tail != COPY_TRAILER:
        raise IntegrityError(
            f"{obj}: the COPY data does not end with its end-of-data line", obj=obj
        )


class Loader:
    """A connection to the target under the backup's COPY session settings; every part it
    loads is in one transaction, committed or rolled back by the caller (``finish``)."""

    def __init__(self, conn: psycopg.Connection[tuple[object, ...]], target: Target) -> None:
        self.conn = conn
        self.target = target

    def load(self, part: PartLoad, chunks: Iterable[bytes]) -> None:
        statement = copy_in_statement(part.schema, part.table, list(part.columns))
        try:
            with self.conn.cursor() as cur, cur.copy(statement) as copy:
                for piece in copy_text(chunks, part.header_size, part.obj):
                    copy.write(piece)
        except psycopg.Error as exc:
            raise translate(
                exc, self.target, f"loading {part.obj} into {part.schema}.{part.table}"
            ) from exc
        finally:
            close = getattr(chunks, "close", None)
            if callable(close):
                close()

    def finish(self, commit: bool) -> None:
        try:
            if commit:
                self.conn.commit()
            else:
                self.conn.rollback()
        except psycopg.Error as exc:
            raise translate(exc, self.target, "committing the loaded rows") from exc


@contextlib.contextmanager
def loader(target: Target, settings: Mapping[str, str], app_name: str) -> Iterator[Loader]:
    """A loader connection, its session set as the data was written (``settings``: the
    manifest's ``copy_settings``, client encoding and row security included)."""
    with connect(target, "loading rows", autocommit=False) as conn:
        try:
            conn.execute(sql.SQL("SET application_name = {}").format(sql.Literal(app_name)))
            conn.execute("SET statement_timeout = 0")
            for name, value in settings.items():
                conn.execute(
                    sql.SQL("SET {} = {}").format(sql.Identifier(name), sql.Literal(value))
                )
            conn.commit()
        except psycopg.Error as exc:
            raise translate(exc, target, "preparing a loader session") from exc
        try:
            yield Loader(conn, target)
        finally:
            with contextlib.suppress(psycopg.Error):
                conn.rollback()
