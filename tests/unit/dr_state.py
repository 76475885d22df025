"""Cheap DR state written straight into a local storage for status/metrics/jobs tests: backup
manifests (no data objects), verification and drill records, and a context on a fixed clock."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from drtool.catalog.manifest import BackupManifest, ObjectEntry
from drtool.catalog.records.verifications import Problem, VerificationRecord, write_verification
from drtool.config import Config, StorageConfig
from drtool.ids import new_id
from drtool.services.context import Context
from drtool.storage.local import LocalStorage

T0 = datetime(2026, 11, 26, 2, 15, tzinfo=UTC)


class ReadLog(LocalStorage):
    """A local directory that remembers every key read."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.read: list[str] = []

    def get(self, key: str) -> Iterator[bytes]:
        self.read.append(key)
        return super().get(key)

    def get_bytes(self, key: str) -> bytes:
        self.read.append(key)
        return super().get_bytes(key)


class Clock:
    """A settable clock for ``Context.clock``."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def make_context(tmp: Path, clock: Clock, **sections: Any) -> Context:
    config = Config.model_validate(
        {"storage": StorageConfig(url=(tmp / "storage").as_uri()), **sections}
    )
    return Context(config, ReadLog(tmp / "storage"), clock)


def put_backup(ctx: Context, snapshot_at: datetime, size: int = 4096) -> str:
    item_id = new_id(snapshot_at)
    key = f"backups/{item_id}/dump.pgdump.zst.age"
    manifest = BackupManifest(
        id=item_id,
        created_at=snapshot_at,
        snapshot_at=snapshot_at,
        finished_at=snapshot_at + timedelta(seconds=30),
        tool_version="0.1.0",
        objects=[
            ObjectEntry(
                name="dump",
                key=key,
                size=size,
                sha256="0" * 64,
                plain_size=size * 3,
                plain_sha256="1" * 64,
            )
        ],
    )
    ctx.storage.put_bytes(f"backups/{item_id}/manifest.json", manifest.to_json())
    return item_id


def put_verification(ctx: Context, item_id: str, at: datetime, ok: bool) -> None:
    problems = [] if ok else [Problem("dump", None, "stored SHA-256 differs", "use another")]
    record = VerificationRecord(
        id=new_id(at),
        item_id=item_id,
        kind="backup",
        at=at,
        deep=False,
        ok=ok,
        problems=problems,
        seconds=0.5,
        bytes=4096,
        tool_version="0.1.0",
    )
    write_verification(ctx.storage, record)


def put_drill(
    ctx: Context, at: datetime, verdict: str = "pass", rto: float = 120.0, **extra: Any
) -> str:
    drill_id = new_id(at)
    doc = {
        "id": drill_id,
        "backup_id": None,
        "created_at": at.isoformat(),
        "verdict": verdict,
        "rto_seconds": rto,
        "rpo_seconds": 3600.0,
        **extra,
    }
    ctx.storage.put_bytes(f"drills/{drill_id}.json", json.dumps(doc).encode())
    return drill_id
