"""Turning what the slot returns into a segment's plaintext while learning what the segment
holds: its commit range, transactions, per-table changes and the shapes of its relations."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from drtool.errors import IntegrityError
from drtool.pg.stream.frames import MAGIC, encode_frame, format_lsn
from drtool.pg.stream.pgoutput import (
    Begin,
    Commit,
    Delete,
    Insert,
    PgoutputError,
    Relation,
    Truncate,
    Update,
    decode,
    pg_time_to_datetime,
)

CHUNK = 256 * 1024
_VERBS = {Insert: "insert", Update: "update", Delete: "delete"}


@dataclass
class SegmentFacts:
    messages: int = 0
    transactions: int = 0
    changes: int = 0
    first_commit_at: datetime | None = None
    last_commit_at: datetime | None = None
    to_lsn: int | None = None  # the end of the last commit
    relations: dict[str, dict[str, int]] = field(default_factory=dict)
    shapes: dict[int, tuple[object, ...]] = field(default_factory=dict)  # oid -> newest shape
    names: dict[int, str] = field(default_factory=dict)
    in_transaction: bool = False
    # Relation shapes seen so far (kept across a stream's cycles): a Relation message with
    # another shape means DDL; the last commit before it is the latest recoverable point
    # from an older base backup.
    known_shapes: dict[int, tuple[object, ...]] = field(default_factory=dict)
    changed_relations: list[str] = field(default_factory=list)
    old_shape_until: datetime | None = None

    def count(self, oid: int, verb: str) -> None:
        name = self.names.get(oid, str(oid))
        per = self.relations.setdefault(name, {})
        per[verb] = per.get(verb, 0) + 1


def frames(rows: Iterable[tuple[int, int, bytes]], facts: SegmentFacts) -> Iterator[bytes]:
    """The segment's plaintext in chunks of about 256 KiB; ``facts`` filled in as it goes.
    Ends with a whole transaction, or raises."""
    buf = bytearray(MAGIC)
    for lsn, xid, data in rows:
        try:
            msg = decode(data)
        except PgoutputError as exc:
            raise IntegrityError(
                f"the slot returned an undecodable message at lsn {lsn}: {exc}"
            ) from None
        facts.messages += 1
        if isinstance(msg, Begin):
            facts.in_transaction = True
        elif isinstance(msg, Commit):
            facts.in_transaction = False
            facts.transactions += 1
            at = pg_time_to_datetime(msg.commit_time)
            facts.first_commit_at = facts.first_commit_at or at
            facts.last_commit_at = at
            facts.to_lsn = msg.end_lsn
        elif isinstance(msg, Relation):
            shape = msg.shape()
            old = facts.known_shapes.get(msg.oid)
            if old is not None and old != shape:
                facts.changed_relations.append(msg.qualified)
                if facts.old_shape_until is None:
                    facts.old_shape_until = facts.last_commit_at
            facts.known_shapes[msg.oid] = shape
            facts.shapes[msg.oid] = shape
            facts.names[msg.oid] = msg.qualified
        elif isinstance(msg, Insert | Update | Delete):
            facts.changes += 1
            facts.count(msg.relation_oid, _VERBS[type(msg)])
        elif isinstance(msg, Truncate):
            facts.changes += 1
            for oid in msg.relation_oids:
                facts.count(oid, "truncate")
        buf += encode_frame(lsn, xid, data)
        if len(buf) >= CHUNK:
            yield bytes(buf)
            buf.clear()
    if facts.in_transaction:
        raise IntegrityError(
            "the slot's changes ended inside a transaction"
            + (f" (after {format_lsn(facts.to_lsn)})" if facts.to_lsn else "")
        )
    if buf:
        yield bytes(buf)
