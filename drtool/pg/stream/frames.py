"""The plaintext of a change-stream segment (docs/format.md, "Change segments"): a magic line,
then one frame per pgoutput message as ``pg_logical_slot_peek_binary_changes`` returned it:

    u32 length of data | u64 lsn | u32 xid | data (the pgoutput message, unchanged)

all big-endian. The messages are PostgreSQL's documented logical replication formats, so a
segment can be read without drtool's code; the frames only add where each message came from."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

MAGIC = b"DRTSEG1\n"
_HEAD = struct.Struct(">IQI")
MAX_FRAME = 1 << 30  # PostgreSQL's own limit on a value (1 GB) bounds a message


class FrameError(ValueError):
    """The segment's plaintext is not a sequence of frames."""


@dataclass(frozen=True, slots=True)
class Frame:
    lsn: int
    xid: int
    data: bytes


def encode_frame(lsn: int, xid: int, data: bytes) -> bytes:
    return _HEAD.pack(len(data), lsn, xid) + data


def read_frames(chunks: Iterable[bytes]) -> Iterator[Frame]:
    """The frames in a stream of plaintext chunks; a bad magic, a torn frame or an absurd
    length is a FrameError."""
    buf = bytearray()
    it = iter(chunks)
    magic_seen = False
    pos = 0

    def fill(n: int) -> bool:
        nonlocal buf, pos
        while len(buf) - pos < n:
            try:
                chunk = next(it)
            except StopIteration:
                return False
            if pos:
                del buf[:pos]
                pos = 0
            buf += chunk
        return True

    if not fill(len(MAGIC)) or bytes(buf[: len(MAGIC)]) != MAGIC:
        raise FrameError("not a drtool change segment (bad magic)")
    pos = len(MAGIC)
    magic_seen = True
    while magic_seen:
        if not fill(_HEAD.size):
            if len(buf) - pos:
                raise FrameError("the segment ends inside a frame header")
            return
        length, lsn, xid = _HEAD.unpack_from(buf, pos)
        if length > MAX_FRAME:
            raise FrameError(f"a frame of {length} bytes at lsn {format_lsn(lsn)}")
        if not fill(_HEAD.size + length):
            raise FrameError(f"the segment ends inside the frame at lsn {format_lsn(lsn)}")
        start = pos + _HEAD.size
        data = bytes(buf[start : start + length])
        pos = start + length
        yield Frame(lsn, xid, data)


def format_lsn(value: int) -> str:
    """PostgreSQL's text form of an LSN (``16/B374D848``)."""
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def parse_lsn(text: str) -> int:
    """An LSN from its text form; a ValueError for anything else."""
    high, sep, low = text.partition("/")
    if not sep or not high or not low or len(high) > 8 or len(low) > 8:
        raise ValueError(f"not an LSN: {text!r}")
    return (int(high, 16) << 32) | int(low, 16)
