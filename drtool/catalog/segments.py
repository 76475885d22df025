"""Listing a slot's change segments (``streams/<slot>/segments/<id>/``): complete ones only
(a manifest), oldest first, grouped by chain (``generation``)."""

from __future__ import annotations

from drtool.catalog.catalog import MANIFEST_NAME, path_id, read_manifest, segments_prefix
from drtool.catalog.manifest import SegmentManifest, expect_kind
from drtool.catalog.records.document import read_record
from drtool.ids import is_valid_id
from drtool.storage.base import Storage


def segment_keys(storage: Storage, slot: str) -> list[tuple[str, str]]:
    """``(id, manifest key)`` of every complete segment, oldest first (ids sort by time)."""
    found = []
    for info in storage.list(segments_prefix(slot)):
        if info.key.endswith("/" + MANIFEST_NAME):
            item = path_id(info.key)
            if is_valid_id(item):
                found.append((item, info.key))
    return sorted(found)


def read_segment(storage: Storage, key: str) -> SegmentManifest | None:
    """A segment's manifest (None if deleted meanwhile); unreadable is an IntegrityError."""
    manifest = read_record(storage, key, read_manifest)
    return expect_kind(manifest, SegmentManifest) if manifest is not None else None


def newest_segment(storage: Storage, slot: str) -> SegmentManifest | None:
    for _, key in reversed(segment_keys(storage, slot)):
        found = read_segment(storage, key)
        if found is not None:
            return found
    return None


def all_segments(storage: Storage, slot: str) -> list[SegmentManifest]:
    out = []
    for _, key in segment_keys(storage, slot):
        found = read_segment(storage, key)
        if found is not None:
            out.append(found)
    return out


def generations(segments: list[SegmentManifest]) -> dict[str, list[SegmentManifest]]:
    """Segments by generation, each in sequence order."""
    out: dict[str, list[SegmentManifest]] = {}
    for seg in segments:
        out.setdefault(seg.generation, []).append(seg)
    for chain in out.values():
        chain.sort(key=lambda s: (s.sequence, s.id))
    return out
