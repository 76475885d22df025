"""`run_prune` in-process on local storage with an injected clock: exports past
exports_max_age, and leftovers judged by age (no PostgreSQL needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from drtool.catalog.manifest import ExportManifest
from drtool.config import Config
from drtool.ids import new_id
from drtool.services.context import build_context
from drtool.services.retention.prune import run_prune
from drtool.storage.base import Storage

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ZERO = {"keep_last": 0, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0, "keep_yearly": 0}


def config(tmp_path: Path, **retention: str) -> Config:
    return Config.model_validate(
        {
            "database": {"dsn": "postgresql://nobody@127.0.0.1:1/none"},
            "storage": {"url": (tmp_path / "storage").as_uri()},
            "retention": {**ZERO, **retention},
            "base_dir": tmp_path,
        }
    )


def put_export(storage: Storage, user_id: str, at: datetime) -> str:
    item_id = new_id(at)
    folder = f"exports/{user_id}/{item_id}/"
    storage.put_bytes(folder + "data.zst.age", b"rows")
    manifest = ExportManifest(
        id=item_id, user_id=user_id, created_at=at, finished_at=at, tool_version="test"
    )
    storage.put_bytes(folder + "manifest.json", manifest.to_json())
    return item_id


def test_exports_older_than_max_age_go_but_each_users_newest_stays(tmp_path: Path) -> None:
    ctx = build_context(config(tmp_path, exports_max_age="30d"), clock=lambda: NOW)
    new = put_export(ctx.storage, "u1", NOW - timedelta(days=2))
    old = put_export(ctx.storage, "u1", NOW - timedelta(days=40))
    only = put_export(ctx.storage, "u2", NOW - timedelta(days=400))
    dry = run_prune(ctx, dry_run=True)
    assert [(e.id, e.kind) for e in dry.removed] == [(old, "export")]
    assert len(list(ctx.storage.list(f"exports/u1/{old}/"))) == 2
    result = run_prune(ctx)
    assert [e.id for e in result.removed] == [old]
    assert {e.id for e in result.kept} == {new, only}
    assert not list(ctx.storage.list(f"exports/u1/{old}/"))
    assert [m.id for m in ctx.catalog.listing("export").items] == sorted([new, only], reverse=True)


def test_leftovers_go_only_once_older_than_abandoned_after(tmp_path: Path) -> None:
    cfg = config(tmp_path, abandoned_after="6h")
    real = build_context(cfg)
    partial = f"backups/{new_id()}/dump.pgdump.zst.age"
    real.storage.put_bytes(partial, b"left by a killed backup")
    temp = tmp_path / "storage" / ".drtool-tmp" / ("ab" * 8) / "backups" / "x" / "dump"
    temp.parent.mkdir(parents=True)
    temp.write_bytes(b"half an upload")
    soon = build_context(cfg, clock=lambda: datetime.now(UTC) + timedelta(hours=5))
    assert run_prune(soon).abandoned_removed == 0
    assert real.storage.exists(partial) and temp.exists()
    later = build_context(cfg, clock=lambda: datetime.now(UTC) + timedelta(hours=7))
    result = run_prune(later)
    assert result.abandoned_removed == 2
    assert not real.storage.exists(partial) and not temp.exists()
    assert {a.what.split(" ")[0] for a in result.abandoned} == {"unfinished", "partial"}
