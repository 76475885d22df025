"""Which stored objects Object Lock keeps (SPEC "Storage layout"): data objects, manifests and
audit records; never leases, job-run records, journals, markers or check records."""

from __future__ import annotations

import pytest

from drtool.storage.base import content_type, object_lock_applies

LOCKED = [
    "backups/20261126T021500.123Z-7f3a/manifest.json",
    "backups/20261126T021500.123Z-7f3a/dump.pgdump.zst.age",
    "backups/20261126T021500.123Z-7f3a/globals.sql.zst.age",
    "backups/20261126T021500.123Z-7f3a/bundle.age",
    "exports/u1/20261126T021500.123Z-7f3a/manifest.json",
    "exports/u1/20261126T021500.123Z-7f3a/public.notes.jsonl.zst.age",
    "archive/old-raw-events/2026/11/20261126T021500.123Z-7f3a/rows.copy.zst.age",
    "archive/old-raw-events/2026/11/20261126T021500.123Z-7f3a/manifest.json",
    "archive/journal/2026/11/20261126T021500.123Z-7f3a/manifest.json",  # a policy "journal"
    "streams/drtool/20261126T021500.123Z-7f3a/manifest.json",
    "audit/2026/11/20261126T021500.123Z-7f3a.json",
]
UNLOCKED = [
    "scheduler/backup.json",
    "runs/backup.json",
    "archive/old-raw-events/journal/20261126T021500.123Z-7f3a.json",
    "archive/old-raw-events/2026/11/20261126T021500.123Z-7f3a/void.json",
    "drills/20261126T021500.123Z-7f3a.json",
    "verifications/20261126T021500.123Z-7f3a/20261127T021500.123Z-0001.json",
    "restores/20261126T021500.123Z-7f3a/20261127T021500.123Z-0001.json",
]


@pytest.mark.parametrize("key", LOCKED)
def test_data_objects_manifests_and_audit_records_are_locked(key: str) -> None:
    assert object_lock_applies(key)


@pytest.mark.parametrize("key", UNLOCKED)
def test_rewritten_state_and_records_are_not_locked(key: str) -> None:
    assert not object_lock_applies(key)


def test_json_objects_have_a_json_content_type() -> None:
    assert content_type("runs/backup.json") == "application/json"
    assert content_type("backups/x/dump.pgdump.zst.age") == "application/octet-stream"
