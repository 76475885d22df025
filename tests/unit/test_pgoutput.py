"""pgoutput v1 messages: every message round-trips through encode/decode, hand-built bytes from
the documented layout decode to the right fields, and any other byte string ends in a clean
PgoutputError, never a crash."""

from __future__ import annotations

import re
import struct
from datetime import UTC, datetime

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from drtool.pg.stream.pgoutput import (
    UNCHANGED_TOAST,
    Begin,
    Column,
    Commit,
    Delete,
    Insert,
    LogicalMessage,
    Message,
    Origin,
    PgoutputError,
    Relation,
    Truncate,
    TypeMsg,
    Update,
    datetime_to_pg_time,
    decode,
    encode,
    pg_time_to_datetime,
)

u8 = st.integers(0, 2**8 - 1)
u32 = st.integers(0, 2**32 - 1)
i32 = st.integers(-(2**31), 2**31 - 1)
u64 = st.integers(0, 2**64 - 1)
i64 = st.integers(-(2**63), 2**63 - 1)
cstr = st.text().filter(lambda s: "\0" not in s)
value = st.one_of(st.none(), st.just(UNCHANGED_TOAST), st.text(), st.binary())
tuples = st.lists(value, max_size=12).map(tuple)

begins = st.builds(Begin, u64, i64, u32)
commits = st.builds(Commit, u8, u64, u64, i64)
origins = st.builds(Origin, u64, cstr)
columns = st.builds(Column, u8, cstr, u32, i32)
relations = st.builds(
    Relation, u32, cstr, cstr, st.sampled_from("dnfi"), st.lists(columns, max_size=8).map(tuple)
)
types = st.builds(TypeMsg, u32, cstr, cstr)
inserts = st.builds(Insert, u32, tuples)
updates = st.one_of(
    st.builds(Update, u32, st.none(), st.none(), tuples),
    st.builds(Update, u32, tuples, st.none(), tuples),
    st.builds(Update, u32, st.none(), tuples, tuples),
)
deletes = st.one_of(
    st.builds(Delete, u32, tuples, st.none()), st.builds(Delete, u32, st.none(), tuples)
)
truncates = st.builds(Truncate, u8, st.lists(u32, max_size=10).map(tuple))
messages_ = st.builds(LogicalMessage, u8, u64, cstr, st.binary())
messages = st.one_of(
    begins,
    commits,
    origins,
    relations,
    types,
    inserts,
    updates,
    deletes,
    truncates,
    messages_,
)


def _round_trip(msg: Message) -> None:
    data = encode(msg)
    assert decode(data) == msg
    assert encode(decode(data)) == data


@given(begins)
def test_begin_round_trips(msg: Begin) -> None:
    _round_trip(msg)


@given(commits)
def test_commit_round_trips(msg: Commit) -> None:
    _round_trip(msg)


@given(origins)
def test_origin_round_trips(msg: Origin) -> None:
    _round_trip(msg)


@given(relations)
def test_relation_round_trips(msg: Relation) -> None:
    _round_trip(msg)


@given(types)
def test_type_round_trips(msg: TypeMsg) -> None:
    _round_trip(msg)


@given(inserts)
def test_insert_round_trips(msg: Insert) -> None:
    _round_trip(msg)


@given(updates)
def test_update_round_trips(msg: Update) -> None:
    _round_trip(msg)


@given(deletes)
def test_delete_round_trips(msg: Delete) -> None:
    _round_trip(msg)


@given(truncates)
def test_truncate_round_trips(msg: Truncate) -> None:
    _round_trip(msg)


@given(messages_)
def test_logical_message_round_trips(msg: LogicalMessage) -> None:
    _round_trip(msg)


def _decode_cleanly(data: bytes) -> None:
    try:
        msg = decode(data)
    except PgoutputError:
        return
    # Whatever decodes is canonical: it encodes back to the very same bytes.
    assert encode(msg) == data


@given(st.binary(max_size=200))
@example(b"T\x7f\xff\xff\xff\x00")
@example(b"I\x00\x00\x00\x01N\x7f\xff")
@example(b"M\x00" + bytes(8) + b"p\x00\xff\xff\xff\xff")
def test_any_bytes_decode_or_raise_pgoutput_error(data: bytes) -> None:
    _decode_cleanly(data)


@given(st.sampled_from(sorted(set(b"BCORYIUDTM"))), st.binary(max_size=120))
def test_any_body_after_a_known_type_decodes_or_raises_pgoutput_error(
    tag: int, body: bytes
) -> None:
    _decode_cleanly(bytes([tag]) + body)


@given(messages, st.data())
def test_truncated_valid_message_raises_pgoutput_error(msg: Message, data: st.DataObject) -> None:
    raw = encode(msg)
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(PgoutputError):
        decode(raw[:cut])


@given(messages, st.data())
def test_valid_message_with_trailing_bytes_raises_pgoutput_error(
    msg: Message, data: st.DataObject
) -> None:
    extra = data.draw(st.binary(min_size=1, max_size=8))
    with pytest.raises(PgoutputError, match="trailing"):
        decode(encode(msg) + extra)


@given(messages, st.data())
def test_flipped_byte_decodes_or_raises_pgoutput_error(msg: Message, data: st.DataObject) -> None:
    raw = bytearray(encode(msg))
    at = data.draw(st.integers(0, len(raw) - 1))
    raw[at] ^= data.draw(st.integers(1, 255))
    _decode_cleanly(bytes(raw))


# -- golden bytes, built by hand from the documented layout ----------------------------------


def _s(text: str) -> bytes:
    return text.encode() + b"\0"


def test_golden_begin() -> None:
    raw = b"B" + struct.pack(">QqI", 0x16B3748, 823_456_789_000_000, 735)
    msg = decode(raw)
    assert msg == Begin(final_lsn=0x16B3748, commit_time=823_456_789_000_000, xid=735)
    assert pg_time_to_datetime(msg.commit_time) == datetime(2026, 2, 3, 17, 59, 49, tzinfo=UTC)
    assert encode(msg) == raw


def test_golden_commit() -> None:
    raw = b"C\x00" + struct.pack(">QQq", 0x100, 0x180, -1)
    assert decode(raw) == Commit(flags=0, commit_lsn=0x100, end_lsn=0x180, commit_time=-1)


def test_golden_relation_with_two_columns() -> None:
    raw = (
        b"R"
        + struct.pack(">I", 16384)
        + _s("public")
        + _s("orders")
        + b"d"
        + struct.pack(">h", 2)
        + b"\x01"
        + _s("id")
        + struct.pack(">Ii", 23, -1)
        + b"\x00"
        + _s("note")
        + struct.pack(">Ii", 1043, 68)
    )
    msg = decode(raw)
    assert isinstance(msg, Relation)
    assert (msg.oid, msg.qualified, msg.replica_identity) == (16384, "public.orders", "d")
    assert msg.columns == (Column(1, "id", 23, -1), Column(0, "note", 1043, 68))
    assert [c.is_key for c in msg.columns] == [True, False]
    assert msg.shape() == ("public", "orders", "d", (("id", 23, -1, 1), ("note", 1043, 68, 0)))
    assert encode(msg) == raw


def test_relation_shape_ignores_the_oid_and_sees_a_type_change() -> None:
    one = Relation(1, "s", "t", "d", (Column(1, "id", 23, -1),))
    assert one.shape() == Relation(2, "s", "t", "d", one.columns).shape()
    assert one.shape() != Relation(1, "s", "t", "d", (Column(1, "id", 20, -1),)).shape()
    assert hash(one.shape()) == hash(Relation(2, "s", "t", "d", one.columns).shape())


def test_golden_type() -> None:
    raw = b"Y" + struct.pack(">I", 16400) + _s("public") + _s("mood")
    assert decode(raw) == TypeMsg(16400, "public", "mood")


def test_golden_origin() -> None:
    raw = b"O" + struct.pack(">Q", 77) + _s("node_a")
    assert decode(raw) == Origin(77, "node_a")


def test_golden_insert_with_a_null_and_a_text_value() -> None:
    raw = b"I" + struct.pack(">I", 16384) + b"N" + struct.pack(">h", 3)
    raw += b"n" + b"t" + struct.pack(">i", 4) + "héj".encode() + b"u"
    assert decode(raw) == Insert(16384, (None, "héj", UNCHANGED_TOAST))


def test_golden_update_with_an_old_tuple() -> None:
    raw = b"U" + struct.pack(">I", 16384)
    raw += b"O" + struct.pack(">h", 2) + b"t" + struct.pack(">i", 1) + b"1" + b"n"
    raw += b"N" + struct.pack(">h", 2) + b"t" + struct.pack(">i", 1) + b"1"
    raw += b"b" + struct.pack(">i", 2) + b"\x00\xff"
    msg = decode(raw)
    assert msg == Update(16384, key=None, old=("1", None), new=("1", b"\x00\xff"))
    assert encode(msg) == raw


def test_golden_update_with_a_key_and_without() -> None:
    key = b"K" + struct.pack(">h", 1) + b"t" + struct.pack(">i", 1) + b"7"
    new = b"N" + struct.pack(">h", 1) + b"t" + struct.pack(">i", 1) + b"8"
    assert decode(b"U" + struct.pack(">I", 9) + key + new) == Update(9, ("7",), None, ("8",))
    assert decode(b"U" + struct.pack(">I", 9) + new) == Update(9, None, None, ("8",))


def test_golden_delete_with_a_key() -> None:
    raw = b"D" + struct.pack(">I", 16384) + b"K" + struct.pack(">h", 1) + b"t"
    raw += struct.pack(">i", 2) + b"42"
    assert decode(raw) == Delete(16384, key=("42",), old=None)


def test_golden_truncate_with_cascade() -> None:
    raw = b"T" + struct.pack(">iB", 2, 1) + struct.pack(">II", 16384, 16390)
    msg = decode(raw)
    assert msg == Truncate(options=1, relation_oids=(16384, 16390))
    assert isinstance(msg, Truncate) and msg.cascade and not msg.restart_identity
    assert Truncate(2, ()).restart_identity


def test_golden_logical_message() -> None:
    raw = b"M\x01" + struct.pack(">Q", 0x2000) + _s("drtool") + struct.pack(">i", 3) + b"a\0b"
    assert decode(raw) == LogicalMessage(flags=1, lsn=0x2000, prefix="drtool", content=b"a\0b")


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"", "empty"),
        (b"X\x00", "unknown message type b'X' at offset 0"),
        (b"B" + bytes(10), "Begin message: truncated"),
        (b"C" + bytes(30), "Commit message: 5 trailing bytes at offset 26"),
        (b"O" + bytes(8) + b"abc", "Origin message: origin name has no NUL terminator"),
        (b"Y" + bytes(4) + b"\xff\x00\x00", "Type message: namespace is not valid UTF-8"),
        (b"I" + bytes(4) + b"N\x00\x01x", "bad tuple value kind b'x' at offset 8"),
        (b"I" + bytes(4) + b"N\x00\x01t\xff\xff\xff\xff", "negative value length -1"),
        (b"I" + bytes(4) + b"X", "unexpected new tuple marker"),
        (b"D" + bytes(4) + b"N\x00\x00", "unexpected tuple marker"),
        (b"R" + bytes(4) + b"\x00\x00z\x00\x00", "unknown replica identity 'z'"),
        (b"T\xff\xff\xff\xff\x00", "negative relation count"),
        (b"T\x00\x00\x00\x03\x00" + bytes(4), "truncated relation oids"),
    ],
)
def test_invalid_bytes_raise_a_pgoutput_error_naming_type_and_offset(
    raw: bytes, match: str
) -> None:
    with pytest.raises(PgoutputError, match=re.escape(match)):
        decode(raw)


@pytest.mark.parametrize(
    "msg",
    [
        Begin(-1, 0, 0),
        Begin(0, 0, 2**32),
        Commit(256, 0, 0, 0),
        Origin(0, "a\0b"),
        Relation(1, "s", "t", "x", ()),
        Update(1, ("k",), ("o",), ()),
        Delete(1, None, None),
        Insert(1, ("\ud800",)),
        Insert(1, (1,)),  # type: ignore[arg-type]
    ],
)
def test_unencodable_messages_raise_a_pgoutput_error(msg: Message) -> None:
    with pytest.raises(PgoutputError):
        encode(msg)


@given(i64)
def test_pg_time_converts_to_datetime_and_back(us: int) -> None:
    try:
        dt = pg_time_to_datetime(us)
    except OverflowError:
        return
    assert dt.tzinfo is not None
    assert datetime_to_pg_time(dt) == us


def test_pg_epoch_is_2000_utc() -> None:
    assert pg_time_to_datetime(0) == datetime(2000, 1, 1, tzinfo=UTC)
    assert datetime_to_pg_time(datetime(2000, 1, 1, 0, 0, 1, tzinfo=UTC)) == 1_000_000
    with pytest.raises(ValueError, match="timezone-aware"):
        datetime_to_pg_time(datetime(2000, 1, 1))
