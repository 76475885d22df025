"""Which change segments retention may remove: those no kept backup can be replayed from.
Replay from backup B needs the segments from the one holding B's WAL position (and the one
before it) onwards, in B's chain; anything older than that for the oldest kept backup of a
chain goes, and so does a whole chain no kept backup can start (unless it is the running
stream's, whose base backup may still be coming)."""

from __future__ import annotations

from dataclasses import dataclass

from drtool.catalog.manifest import BackupManifest, Manifest, SegmentManifest
from drtool.catalog.segments import generations
from drtool.pg.stream.frames import parse_lsn


@dataclass(frozen=True)
class SegmentVerdict:
    segment: SegmentManifest
    reason: str


def plan_segments(
    segments: list[SegmentManifest], kept: list[Manifest], current: str | None
) -> tuple[list[SegmentVerdict], list[SegmentVerdict]]:
    """(remove, keep), each with its reason."""
    bases = [
        parse_lsn(m.stream.lsn)
        for m in kept
        if isinstance(m, BackupManifest) and m.stream is not None
    ]
    remove: list[SegmentVerdict] = []
    keep: list[SegmentVerdict] = []
    for generation, chain in sorted(generations(segments).items()):
        start = parse_lsn(chain[0].generation_lsn)
        usable = [lsn for lsn in bases if lsn >= start]
        if not usable:
            if generation == current:
                keep += [SegmentVerdict(s, "the running stream's chain") for s in chain]
            else:
                why = "no kept backup can be replayed with this chain"
                remove += [SegmentVerdict(s, why) for s in chain]
            continue
        oldest = min(usable)
        before = [i for i, s in enumerate(chain) if parse_lsn(s.to_lsn) <= oldest]
        # The last segment ending at or before the oldest base is kept: a transaction may
        # commit just before the base's position and still be invisible to its snapshot.
        cut = before[-1] if before else -1
        for i, seg in enumerate(chain):
            if i < cut:
                remove.append(SegmentVerdict(seg, "older than every kept backup's position"))
            else:
                keep.append(SegmentVerdict(seg, "needed to replay a kept backup"))
    return remove, keep
