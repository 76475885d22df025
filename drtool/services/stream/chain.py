"""The chain of change segments of one slot: listing, continuity checks (a gap, a missing or a
reordered segment is an IntegrityError, exit 3), and choosing what a replay needs."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from drtool.catalog.manifest import BackupManifest, SegmentManifest
from drtool.catalog.segments import all_segments, generations
from drtool.errors import IntegrityError
from drtool.pg.stream.frames import parse_lsn
from drtool.storage.base import Storage

HINT = (
    "a segment was deleted, replaced or edited in storage: `drtool verify --stream` names it; "
    "recover to a time before the gap, or from a base backup after it"
)


def check_links(segments: list[SegmentManifest]) -> None:
    """Consecutive segments of one generation, in order: sequence numbers without a hole,
    each naming its predecessor, LSN ranges that never go back."""
    for prev, seg in itertools.pairwise(segments):
        where = f"stream {seg.slot}: segment {seg.id} (#{seg.sequence})"
        if seg.generation != prev.generation:
            raise IntegrityError(f"{where} belongs to another chain than {prev.id}", hint=HINT)
        if seg.sequence != prev.sequence + 1:
            missing = seg.sequence - prev.sequence - 1
            if missing > 0:
                raise IntegrityError(
                    f"{where}: {missing} segment(s) missing after #{prev.sequence} "
                    f"({prev.id}, changes up to {prev.to_lsn})",
                    hint=HINT,
                )
            raise IntegrityError(f"{where} is out of order after #{prev.sequence}", hint=HINT)
        if seg.predecessor != prev.id:
            raise IntegrityError(
                f"{where} names {seg.predecessor} as its predecessor, not {prev.id}", hint=HINT
            )
        if parse_lsn(seg.from_lsn) < parse_lsn(prev.to_lsn):
            raise IntegrityError(
                f"{where} starts at {seg.from_lsn}, before its predecessor ends ({prev.to_lsn})",
                hint=HINT,
            )
    for seg in segments:
        if parse_lsn(seg.to_lsn) < parse_lsn(seg.from_lsn):
            raise IntegrityError(
                f"stream {seg.slot}: segment {seg.id} ends ({seg.to_lsn}) before it starts "
                f"({seg.from_lsn})",
                hint=HINT,
            )


@dataclass(frozen=True)
class ReplayPlan:
    """What ``restore --until`` applies on top of ``base``."""

    base: BackupManifest
    generation: str | None
    segments: list[SegmentManifest]  # in order; the last may hold commits after ``until``
    covered_to: datetime | None  # every change committed before this is stored
    schema_limit: datetime | None  # replay cannot go past this (a schema change)
    schema_changes: list[str]


def base_lsn(base: BackupManifest) -> int:
    assert base.stream is not None
    return parse_lsn(base.stream.lsn)


def plan_replay(
    storage: Storage,
    slot: str,
    base: BackupManifest,
    until: datetime,
    stored_through: tuple[str, datetime] | None,
) -> ReplayPlan:
    """The segments to apply on ``base`` to reach ``until``: from the one holding the base's
    WAL position (and the one before it: a transaction can commit just before the snapshot's
    position yet be invisible to it) through the first that ends after ``until``; checked for
    gaps. ``stored_through``: (generation, time) from the stream's state record."""
    lsn = base_lsn(base)
    snapshot_at = base.snapshot_at or base.created_at
    chains = generations(all_segments(storage, slot))
    usable = [g for g, chain in chains.items() if parse_lsn(chain[0].generation_lsn) <= lsn]
    if not usable:
        state_generation = stored_through[0] if stored_through else None
        covered = stored_through[1] if stored_through else None
        return ReplayPlan(base, state_generation, [], covered, None, [])
    generation = max(usable, key=lambda g: parse_lsn(chains[g][0].generation_lsn))
    chain = chains[generation]
    start = 0
    for i, seg in enumerate(chain):
        if parse_lsn(seg.to_lsn) > lsn:
            start = max(i - 1, 0)
            break
    else:
        start = len(chain)
    chosen: list[SegmentManifest] = []
    for seg in chain[start:]:
        chosen.append(seg)
        if seg.last_commit_at is not None and seg.last_commit_at > until:
            break
    check_links(chain[start:])
    if start == 0 and chain and chain[0].sequence != 1 and parse_lsn(chain[0].from_lsn) > lsn:
        first = chain[0]
        raise IntegrityError(
            f"stream {slot}: the segments before #{first.sequence} ({first.id}) are missing: "
            f"changes between the base backup {base.id} and {first.from_lsn}",
            hint=HINT,
        )
    covered = max((s.last_commit_at for s in chain if s.last_commit_at), default=None)
    if stored_through is not None and stored_through[0] == generation:
        covered = max(filter(None, [covered, stored_through[1]]), default=None)
    limit: datetime | None = None
    changes: list[str] = []
    for seg in chain[start:]:
        # A change seen after the base backup's snapshot happened after the previous check.
        if (
            seg.schema_changes
            and seg.schema_changed_after is not None
            and seg.created_at > snapshot_at
        ):
            limit = seg.schema_changed_after
            changes = seg.schema_changes
            break
    return ReplayPlan(base, generation, chosen, covered, limit, changes)


def iter_chain(storage: Storage, slot: str) -> Iterator[tuple[str, list[SegmentManifest]]]:
    yield from sorted(generations(all_segments(storage, slot)).items())
