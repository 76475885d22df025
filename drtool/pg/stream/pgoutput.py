"""The pgoutput plugin's logical replication messages, protocol version 1 (non-streaming):
decode one message body into a frozen dataclass, and encode it back to the exact same bytes.
Layout: PostgreSQL docs, "Logical Replication Message Formats"; all integers are big-endian.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

# Commit timestamps count microseconds from the PostgreSQL epoch, not the Unix one.
PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
# relreplident in pg_class: default (primary key), nothing, full row, index.
REPLICA_IDENTITIES = frozenset("dnfi")

_U8 = struct.Struct(">B")
_I16 = struct.Struct(">h")
_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")
_U64 = struct.Struct(">Q")
_I64 = struct.Struct(">q")


class PgoutputError(ValueError):
    """Bytes that are not one valid pgoutput v1 message, or a message that cannot be encoded."""


class UnchangedToast(enum.Enum):
    """The type of ``UNCHANGED_TOAST``: an unchanged TOASTed value the server did not send."""

    UNCHANGED_TOAST = "u"

    def __repr__(self) -> str:
        return "UNCHANGED_TOAST"


UNCHANGED_TOAST: Literal[UnchangedToast.UNCHANGED_TOAST] = UnchangedToast.UNCHANGED_TOAST

# None: SQL NULL ('n'); UNCHANGED_TOAST ('u'); str: text format ('t'); bytes: binary format ('b').
Value = None | UnchangedToast | str | bytes
TupleData = tuple[Value, ...]


def pg_time_to_datetime(us: int) -> datetime:
    """A pgoutput timestamp (microseconds since 2000-01-01 UTC) as an aware UTC datetime."""
    return PG_EPOCH + timedelta(microseconds=us)


def datetime_to_pg_time(dt: datetime) -> int:
    """An aware datetime as microseconds since 2000-01-01 UTC (the inverse of the above)."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"a timezone-aware datetime is needed, got {dt!r}")
    return (dt - PG_EPOCH) // timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Begin:
    final_lsn: int
    commit_time: int
    xid: int


@dataclass(frozen=True, slots=True)
class Commit:
    flags: int
    commit_lsn: int
    end_lsn: int
    commit_time: int


@dataclass(frozen=True, slots=True)
class Origin:
    commit_lsn: int
    name: str


@dataclass(frozen=True, slots=True)
class Column:
    flags: int
    name: str
    type_oid: int
    type_modifier: int

    @property
    def is_key(self) -> bool:
        return bool(self.flags & 1)


ColumnShape = tuple[str, int, int, int]
RelationShape = tuple[str, str, str, tuple[ColumnShape, ...]]


@dataclass(frozen=True, slots=True)
class Relation:
    oid: int
    namespace: str  # empty for pg_catalog
    name: str
    replica_identity: str
    columns: tuple[Column, ...]

    @property
    def qualified(self) -> str:
        return f"{self.namespace}.{self.name}"

    def shape(self) -> RelationShape:
        """What a schema change alters (everything but the oid), hashable, to compare."""
        cols = tuple((c.name, c.type_oid, c.type_modifier, c.flags) for c in self.columns)
        return (self.namespace, self.name, self.replica_identity, cols)


@dataclass(frozen=True, slots=True)
class TypeMsg:
    oid: int
    namespace: str  # empty for pg_catalog
    name: str


@dataclass(frozen=True, slots=True)
class Insert:
    relation_oid: int
    new: TupleData


@dataclass(frozen=True, slots=True)
class Update:
    """``key`` ('K': replica identity columns changed) or ``old`` ('O': REPLICA IDENTITY FULL),
    never both; neither when the key did not change."""

    relation_oid: int
    key: TupleData | None
    old: TupleData | None
    new: TupleData


@dataclass(frozen=True, slots=True)
class Delete:
    """Exactly one of ``key`` ('K') and ``old`` ('O')."""

    relation_oid: int
    key: TupleData | None
    old: TupleData | None


@dataclass(frozen=True, slots=True)
class Truncate:
    options: int
    relation_oids: tuple[int, ...]

    @property
    def cascade(self) -> bool:
        return bool(self.options & 1)

    @property
    def restart_identity(self) -> bool:
        return bool(self.options & 2)


@dataclass(frozen=True, slots=True)
class LogicalMessage:
    """pg_logical_emit_message(); flags 1 means transactional."""

    flags: int
    lsn: int
    prefix: str
    content: bytes


Message = (
    Begin
    | Commit
    | Origin
    | Relation
    | TypeMsg
    | Insert
    | Update
    | Delete
    | Truncate
    | LogicalMessage
)

_NAMES = {
    b"B": "Begin",
    b"C": "Commit",
    b"O": "Origin",
    b"R": "Relation",
    b"Y": "Type",
    b"I": "Insert",
    b"U": "Update",
    b"D": "Delete",
    b"T": "Truncate",
    b"M": "Message",
}


# -- decoding ----------------------------------------------------------------------------------


class _Reader:
    def __init__(self, data: bytes, kind: str) -> None:
        self._data = data
        self._pos = 1
        self._kind = kind

    def fail(self, what: str, at: int | None = None) -> PgoutputError:
        offset = self._pos if at is None else at
        return PgoutputError(f"pgoutput {self._kind} message: {what} at offset {offset}")

    def need(self, n: int, what: str) -> None:
        left = len(self._data) - self._pos
        if n > left:
            raise self.fail(f"truncated {what} (needs {n} bytes, {left} left)")

    def take(self, n: int, what: str) -> bytes:
        self.need(n, what)
        chunk = self._data[self._pos : self._pos + n]
        self._pos += n
        return chunk

    def _unpack(self, fmt: struct.Struct, what: str) -> int:
        value: int = fmt.unpack(self.take(fmt.size, what))[0]
        return value

    def u8(self, what: str) -> int:
        return self._unpack(_U8, what)

    def u32(self, what: str) -> int:
        return self._unpack(_U32, what)

    def i32(self, what: str) -> int:
        return self._unpack(_I32, what)

    def u64(self, what: str) -> int:
        return self._unpack(_U64, what)

    def i64(self, what: str) -> int:
        return self._unpack(_I64, what)

    def count(self, fmt: struct.Struct, what: str) -> int:
        start = self._pos
        value = self._unpack(fmt, what)
        if value < 0:
            raise self.fail(f"negative {what} {value}", start)
        return value

    def text(self, raw: bytes, what: str, at: int) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.fail(f"{what} is not valid UTF-8 ({exc.reason})", at + exc.start) from None

    def cstring(self, what: str) -> str:
        start = self._pos
        end = self._data.find(b"\0", start)
        if end < 0:
            raise self.fail(f"{what} has no NUL terminator", start)
        self._pos = end + 1
        return self.text(self._data[start:end], what, start)

    def tag(self, allowed: bytes, what: str) -> bytes:
        start = self._pos
        tag = self.take(1, what)
        if tag not in allowed:
            raise self.fail(f"unexpected {what} {tag!r} (expected one of {allowed!r})", start)
        return tag

    def tuple_data(self) -> TupleData:
        values: list[Value] = []
        for _ in range(self.count(_I16, "column count")):
            start = self._pos
            kind = self.take(1, "tuple value kind")
            if kind == b"n":
                values.append(None)
            elif kind == b"u":
                values.append(UNCHANGED_TOAST)
            elif kind in (b"t", b"b"):
                raw = self.take(self.count(_I32, "value length"), "value")
                at = self._pos - len(raw)
                values.append(self.text(raw, "text value", at) if kind == b"t" else raw)
            else:
                raise self.fail(f"bad tuple value kind {kind!r}", start)
        return tuple(values)

    def done(self) -> None:
        if self._pos != len(self._data):
            raise self.fail(f"{len(self._data) - self._pos} trailing bytes")


def decode(data: bytes) -> Message:
    """One pgoutput v1 message (the ``data`` of a slot change) -> its dataclass; PgoutputError
    when it is not exactly one valid message."""
    data = bytes(data)
    if not data:
        raise PgoutputError("pgoutput message: empty input at offset 0")
    tag = data[:1]
    kind = _NAMES.get(tag)
    if kind is None:
        raise PgoutputError(f"pgoutput message: unknown message type {tag!r} at offset 0")
    r = _Reader(data, kind)
    msg = _DECODERS[tag](r)
    r.done()
    return msg


def _begin(r: _Reader) -> Begin:
    return Begin(r.u64("final LSN"), r.i64("commit time"), r.u32("xid"))


def _commit(r: _Reader) -> Commit:
    return Commit(r.u8("flags"), r.u64("commit LSN"), r.u64("end LSN"), r.i64("commit time"))


def _origin(r: _Reader) -> Origin:
    return Origin(r.u64("commit LSN"), r.cstring("origin name"))


def _relation(r: _Reader) -> Relation:
    oid = r.u32("relation oid")
    namespace = r.cstring("namespace")
    name = r.cstring("relation name")
    identity = chr(r.u8("replica identity"))
    if identity not in REPLICA_IDENTITIES:
        raise r.fail(f"unknown replica identity {identity!r}")
    columns = tuple(
        Column(r.u8("column flags"), r.cstring("column name"), r.u32("type oid"), r.i32("typmod"))
        for _ in range(r.count(_I16, "column count"))
    )
    return Relation(oid, namespace, name, identity, columns)


def _type(r: _Reader) -> TypeMsg:
    return TypeMsg(r.u32("type oid"), r.cstring("namespace"), r.cstring("type name"))


def _insert(r: _Reader) -> Insert:
    oid = r.u32("relation oid")
    r.tag(b"N", "new tuple marker")
    return Insert(oid, r.tuple_data())


def _update(r: _Reader) -> Update:
    oid = r.u32("relation oid")
    key = old = None
    tag = r.tag(b"KON", "tuple marker")
    if tag != b"N":
        if tag == b"K":
            key = r.tuple_data()
        else:
            old = r.tuple_data()
        r.tag(b"N", "new tuple marker")
    return Update(oid, key, old, r.tuple_data())


def _delete(r: _Reader) -> Delete:
    oid = r.u32("relation oid")
    tag = r.tag(b"KO", "tuple marker")
    data = r.tuple_data()
    return Delete(oid, data, None) if tag == b"K" else Delete(oid, None, data)


def _truncate(r: _Reader) -> Truncate:
    n = r.count(_I32, "relation count")
    options = r.u8("options")
    # Each oid is 4 bytes: check up front so a huge count fails fast, without a huge loop.
    r.need(4 * n, "relation oids")
    return Truncate(options, tuple(r.u32("relation oid") for _ in range(n)))


def _message(r: _Reader) -> LogicalMessage:
    flags = r.u8("flags")
    lsn = r.u64("LSN")
    prefix = r.cstring("prefix")
    content = r.take(r.count(_I32, "content length"), "content")
    return LogicalMessage(flags, lsn, prefix, content)


_DECODERS: dict[bytes, Callable[[_Reader], Message]] = {
    b"B": _begin,
    b"C": _commit,
    b"O": _origin,
    b"R": _relation,
    b"Y": _type,
    b"I": _insert,
    b"U": _update,
    b"D": _delete,
    b"T": _truncate,
    b"M": _message,
}


# -- encoding ----------------------------------------------------------------------------------


class _Writer:
    def __init__(self, tag: bytes, kind: str) -> None:
        self._out = bytearray(tag)
        self._kind = kind

    def fail(self, what: str) -> PgoutputError:
        return PgoutputError(f"cannot encode pgoutput {self._kind} message: {what}")

    def pack(self, fmt: struct.Struct, value: int, what: str) -> _Writer:
        # bool is an int subclass that would encode silently; anything else must be a real int.
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(f"{what} must be an int, got {value!r}")
        try:
            self._out += fmt.pack(value)
        except struct.error:
            raise self.fail(f"{what} {value} is out of range for {fmt.format}") from None
        return self

    def u8(self, value: int, what: str) -> _Writer:
        return self.pack(_U8, value, what)

    def u32(self, value: int, what: str) -> _Writer:
        return self.pack(_U32, value, what)

    def i32(self, value: int, what: str) -> _Writer:
        return self.pack(_I32, value, what)

    def u64(self, value: int, what: str) -> _Writer:
        return self.pack(_U64, value, what)

    def i64(self, value: int, what: str) -> _Writer:
        return self.pack(_I64, value, what)

    def count(self, fmt: struct.Struct, value: int, what: str) -> _Writer:
        if value < 0:
            raise self.fail(f"negative {what}")
        return self.pack(fmt, value, what)

    def raw(self, data: bytes) -> _Writer:
        self._out += data
        return self

    def cstring(self, value: str, what: str) -> _Writer:
        if not isinstance(value, str):
            raise self.fail(f"{what} must be a str, got {value!r}")
        raw = _utf8(value, what, self)
        if b"\0" in raw:
            raise self.fail(f"{what} {value!r} contains a NUL character")
        self._out += raw + b"\0"
        return self

    def tuple_data(self, values: TupleData) -> _Writer:
        self.count(_I16, len(values), "column count")
        for value in values:
            if value is None:
                self._out += b"n"
            elif value is UNCHANGED_TOAST:
                self._out += b"u"
            elif isinstance(value, str):
                raw = _utf8(value, "text value", self)
                self.raw(b"t").count(_I32, len(raw), "value length").raw(raw)
            elif isinstance(value, bytes):
                self.raw(b"b").count(_I32, len(value), "value length").raw(value)
            else:
                raise self.fail(f"unsupported tuple value {value!r}")
        return self

    def result(self) -> bytes:
        return bytes(self._out)


def _utf8(value: str, what: str, w: _Writer) -> bytes:
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise w.fail(f"{what} is not encodable as UTF-8 ({exc.reason})") from None


def encode(msg: Message) -> bytes:
    """The exact inverse of ``decode``; PgoutputError for a value the format cannot carry."""
    match msg:
        case Begin():
            w = _Writer(b"B", "Begin").u64(msg.final_lsn, "final LSN")
            return w.i64(msg.commit_time, "commit time").u32(msg.xid, "xid").result()
        case Commit():
            w = _Writer(b"C", "Commit").u8(msg.flags, "flags").u64(msg.commit_lsn, "commit LSN")
            return w.u64(msg.end_lsn, "end LSN").i64(msg.commit_time, "commit time").result()
        case Origin():
            w = _Writer(b"O", "Origin").u64(msg.commit_lsn, "commit LSN")
            return w.cstring(msg.name, "origin name").result()
        case Relation():
            return _encode_relation(msg)
        case TypeMsg():
            w = _Writer(b"Y", "Type").u32(msg.oid, "type oid")
            return w.cstring(msg.namespace, "namespace").cstring(msg.name, "type name").result()
        case Insert():
            w = _Writer(b"I", "Insert").u32(msg.relation_oid, "relation oid")
            return w.raw(b"N").tuple_data(msg.new).result()
        case Update():
            w = _Writer(b"U", "Update").u32(msg.relation_oid, "relation oid")
            if msg.key is not None and msg.old is not None:
                raise w.fail("key and old tuple are exclusive")
            if msg.key is not None:
                w.raw(b"K").tuple_data(msg.key)
            elif msg.old is not None:
                w.raw(b"O").tuple_data(msg.old)
            return w.raw(b"N").tuple_data(msg.new).result()
        case Delete():
            w = _Writer(b"D", "Delete").u32(msg.relation_oid, "relation oid")
            if (msg.key is None) == (msg.old is None):
                raise w.fail("exactly one of key and old tuple is needed")
            if msg.key is not None:
                return w.raw(b"K").tuple_data(msg.key).result()
            assert msg.old is not None
            return w.raw(b"O").tuple_data(msg.old).result()
        case Truncate():
            w = _Writer(b"T", "Truncate").count(_I32, len(msg.relation_oids), "relation count")
            w.u8(msg.options, "options")
            for oid in msg.relation_oids:
                w.u32(oid, "relation oid")
            return w.result()
        case LogicalMessage():
            w = _Writer(b"M", "Message").u8(msg.flags, "flags").u64(msg.lsn, "LSN")
            w.cstring(msg.prefix, "prefix")
            if not isinstance(msg.content, bytes):
                raise w.fail(f"content must be bytes, got {type(msg.content).__name__}")
            return w.count(_I32, len(msg.content), "content length").raw(msg.content).result()
    raise PgoutputError(f"cannot encode {type(msg).__name__} as a pgoutput message")


def _encode_relation(msg: Relation) -> bytes:
    w = _Writer(b"R", "Relation").u32(msg.oid, "relation oid")
    w.cstring(msg.namespace, "namespace").cstring(msg.name, "relation name")
    if msg.replica_identity not in REPLICA_IDENTITIES:
        raise w.fail(f"unknown replica identity {msg.replica_identity!r}")
    w.u8(ord(msg.replica_identity), "replica identity")
    w.count(_I16, len(msg.columns), "column count")
    for col in msg.columns:
        w.u8(col.flags, "column flags").cstring(col.name, "column name")
        w.u32(col.type_oid, "type oid").i32(col.type_modifier, "typmod")
    return w.result()
