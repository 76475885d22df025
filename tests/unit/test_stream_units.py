"""The pure parts of continuous archiving: snapshot visibility (with xid wraparound), segment
frames, chain continuity, the recovery time, and which segments retention may remove."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drtool.catalog.manifest import BackupManifest, SegmentManifest, StreamPoint
from drtool.errors import IntegrityError, UsageError
from drtool.pg.stream.apply import XidSnapshot
from drtool.pg.stream.frames import (
    MAGIC,
    FrameError,
    encode_frame,
    format_lsn,
    parse_lsn,
    read_frames,
)
from drtool.services.retention.segments import plan_segments
from drtool.services.stream.chain import check_links
from drtool.services.stream.replay import parse_until

T0 = datetime(2026, 12, 5, 17, 0, tzinfo=UTC)
OTHER = "20261205T170001.000Z-0001"


def test_snapshot_sees_exactly_the_committed_transactions_before_it() -> None:
    snap = XidSnapshot.parse("100:110:103,107")
    assert snap.sees(99) and snap.sees(100) and snap.sees(105) and snap.sees(109)
    assert not snap.sees(103) and not snap.sees(107)  # running when it was taken
    assert not snap.sees(110) and not snap.sees(200)  # began after it


def test_snapshot_places_32_bit_xids_in_its_epoch_across_wraparound() -> None:
    epoch = 3 << 32
    snap = XidSnapshot(epoch + 5, epoch + 10, frozenset({epoch + 7}))
    assert snap.full_xid(8) == epoch + 8
    assert snap.sees(2**32 - 5)  # the previous epoch's last xids: long committed
    assert not snap.sees(7) and not snap.sees(12)
    late = XidSnapshot(epoch - 10, epoch - 3, frozenset())
    assert late.full_xid(2) == epoch + 2 and not late.sees(2)  # the next epoch: after it


@pytest.mark.parametrize("text", ["", "1:2", "5:3:", "1:5:9", "a:b:", "1:5:2,x"])
def test_a_malformed_snapshot_is_an_integrity_error(text: str) -> None:
    with pytest.raises(IntegrityError):
        XidSnapshot.parse(text)


@given(st.lists(st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**32 - 1), st.binary())))
def test_frames_round_trip_in_any_chunking(frames: list[tuple[int, int, bytes]]) -> None:
    data = MAGIC + b"".join(encode_frame(lsn, xid, body) for lsn, xid, body in frames)
    for size in (1, 7, 4096):
        chunks = [data[i : i + size] for i in range(0, len(data), size)]
        got = [(f.lsn, f.xid, f.data) for f in read_frames(chunks)]
        assert got == frames


def test_a_torn_or_foreign_segment_is_a_frame_error() -> None:
    whole = MAGIC + encode_frame(1, 2, b"hello")
    with pytest.raises(FrameError, match="inside the frame"):
        list(read_frames([whole[:-1]]))
    with pytest.raises(FrameError, match="inside a frame header"):
        list(read_frames([whole + b"\x00\x00"]))
    with pytest.raises(FrameError, match="magic"):
        list(read_frames([b"PGDMP" + whole]))


@given(st.integers(0, 2**64 - 1))
def test_lsn_text_round_trips(value: int) -> None:
    assert parse_lsn(format_lsn(value)) == value


def _seg(seq: int, frm: int, to: int, **kw: Any) -> SegmentManifest:
    doc: dict[str, Any] = {
        "id": f"20261205T1700{seq:02d}.000Z-00{seq:02d}",
        "created_at": T0 + timedelta(seconds=seq),
        "finished_at": T0 + timedelta(seconds=seq),
        "tool_version": "test",
        "slot": "drtool",
        "generation": "20261205T170000.000Z-0000",
        "generation_lsn": format_lsn(0),
        "sequence": seq,
        "predecessor": f"20261205T1700{seq - 1:02d}.000Z-00{seq - 1:02d}" if seq > 1 else None,
        "from_lsn": format_lsn(frm),
        "to_lsn": format_lsn(to),
        "first_commit_at": T0 + timedelta(seconds=seq),
        "last_commit_at": T0 + timedelta(seconds=seq),
        "transactions": 1,
        "changes": 1,
    }
    doc.update(kw)
    return SegmentManifest.model_validate(doc)


def test_a_continuous_chain_passes() -> None:
    check_links([_seg(1, 0, 10), _seg(2, 10, 20), _seg(3, 25, 30)])  # 20..25: empty advance


@pytest.mark.parametrize(
    ("chain", "message"),
    [
        ([_seg(1, 0, 10), _seg(3, 20, 30)], "missing after #1"),
        ([_seg(2, 10, 20), _seg(1, 0, 10)], "out of order"),
        ([_seg(1, 0, 10), _seg(2, 5, 20)], "before its predecessor ends"),
        ([_seg(1, 0, 10), _seg(2, 10, 20, predecessor=None)], "names None"),
        (
            [_seg(1, 0, 10), _seg(2, 10, 20, generation="20261205T170001.000Z-0001")],
            "another chain",
        ),
    ],
)
def test_gaps_reorders_and_foreign_segments_are_integrity_errors(
    chain: list[SegmentManifest], message: str
) -> None:
    with pytest.raises(IntegrityError, match=message):
        check_links(chain)


def test_until_needs_an_offset() -> None:
    assert parse_until("2026-12-05T17:03:59Z") == datetime(2026, 12, 5, 17, 3, 59, tzinfo=UTC)
    assert parse_until("2026-12-05 18:03:59+01:00") == datetime(2026, 12, 5, 17, 3, 59, tzinfo=UTC)
    for bad in ("2026-12-05T17:03:59", "yesterday", ""):
        with pytest.raises(UsageError, match="offset"):
            parse_until(bad)


def _backup(lsn: int) -> BackupManifest:
    return BackupManifest(
        id=f"20261205T16{lsn:04d}.000Z-aaaa",
        created_at=T0,
        finished_at=T0,
        tool_version="test",
        stream=StreamPoint(lsn=format_lsn(lsn), snapshot="1:1:"),
    )


def test_retention_keeps_the_segments_of_the_oldest_kept_backup_and_one_before() -> None:
    chain = [_seg(1, 0, 10), _seg(2, 10, 20), _seg(3, 20, 30), _seg(4, 30, 40)]
    remove, keep = plan_segments(chain, [_backup(25), _backup(35)], None)
    assert [v.segment.sequence for v in remove] == [1]
    assert [v.segment.sequence for v in keep] == [2, 3, 4]


def test_retention_removes_a_chain_no_kept_backup_starts_unless_it_is_running() -> None:
    chain = [_seg(1, 0, 10), _seg(2, 10, 20)]
    gone, _ = plan_segments(chain, [], None)
    assert len(gone) == 2
    _, kept = plan_segments(chain, [], chain[0].generation)
    assert len(kept) == 2
