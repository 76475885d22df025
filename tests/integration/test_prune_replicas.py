"""`prune` on each replica, in-process on an injected clock (no PostgreSQL): the same rules,
judged by what each replica holds (its own newest complete and newest verified backups stay,
whatever the primary has), items under Object Lock on a lock-enabled moto replica kept with
the reason, and an unreachable replica named (exit 1) while the others are still pruned."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from drtool.config import Config
from drtool.errors import EXIT_FAILED
from drtool.services.context import Context, build_context, with_source
from drtool.services.retention.prune import run_prune
from tests.fixtures.s3 import MotoServer
from tests.integration.test_prune_service import ZERO, put_export
from tests.unit.dr_state import put_backup, put_verification

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def days_ago(n: float) -> datetime:
    return NOW - timedelta(days=n)


@pytest.fixture
def vault(moto_server: MotoServer) -> Iterator[dict[str, Any]]:
    """A replica on a lock-enabled moto bucket: what drtool writes there is locked a day."""
    bucket = moto_server.create_bucket(ObjectLockEnabledForBucket=True)
    yield {
        "name": "vault",
        "url": f"s3://{bucket}/prefix",
        "endpoint_url": moto_server.endpoint_url,
        "region": moto_server.region,
        "access_key_id": moto_server.access_key_id,
        "secret_access_key": moto_server.secret_access_key,
        "addressing_style": "path",
        "object_lock": {"mode": "governance", "days": 1},
    }
    moto_server.empty_bucket(bucket)


def context(tmp_path: Path, replicas: list[dict[str, Any]]) -> Context:
    config = Config.model_validate(
        {
            "database": {"dsn": "postgresql://nobody@127.0.0.1:1/none"},
            "storage": {"url": (tmp_path / "primary").as_uri(), "replicas": replicas},
            "retention": {**ZERO, "exports_max_age": "30d"},
            "base_dir": tmp_path,
        }
    )
    return build_context(config, clock=lambda: NOW)


def backup_ids(ctx: Context) -> list[str]:
    return [m.id for m in ctx.catalog.listing("backup").items]


def test_each_replica_is_pruned_by_its_own_items(tmp_path: Path, vault: dict[str, Any]) -> None:
    gone = {
        "name": "gone",
        "url": "s3://gone/prefix",
        "endpoint_url": "http://127.0.0.1:9",  # nothing listens: this replica cannot be pruned
        "region": "us-east-1",
        "access_key_id": "unused-key-id",
        "secret_access_key": "unused-secret-key",
        "max_attempts": 1,
    }
    dr_doc = {"name": "dr", "url": (tmp_path / "dr").as_uri()}
    ctx = context(tmp_path, [gone, dr_doc, vault])
    dr, locked = with_source(ctx, "dr"), with_source(ctx, "vault")

    p1, p2, p3 = (put_backup(ctx, days_ago(n)) for n in (3, 2, 1))
    # The replica lags (no p3) and holds more: older backups, one verified there only, and
    # exports the primary already pruned.
    for item_id in (p1, p2):
        key = f"backups/{item_id}/manifest.json"
        dr.storage.put_bytes(key, ctx.storage.get_bytes(key))
    only_there = put_backup(dr, days_ago(10))
    verified_there = put_backup(dr, days_ago(5))
    put_verification(dr, verified_there, days_ago(4), ok=True)
    old_export = put_export(dr.storage, "u1", days_ago(60))
    new_export = put_export(dr.storage, "u1", days_ago(1))
    # The vault's backups are under Object Lock (written through its storage: locked a day).
    v_old, v_new = put_backup(locked, days_ago(9)), put_backup(locked, days_ago(8))

    result = run_prune(ctx)

    # The primary: the usual rules.
    assert {e.id for e in result.removed} == {p1, p2}
    assert backup_ids(ctx) == [p3]
    # The unreachable replica is named; the ones after it were still pruned.
    failed, dr_result, vault_result = result.replicas
    assert failed.name == "gone" and not failed.ok and "cannot connect" in (failed.error or "")
    assert result.exit_code == EXIT_FAILED
    assert result.summary() is not None and "replica gone not pruned" in result.summary()
    # dr: its own newest (p2, which the primary removed) and newest verified stay.
    assert dr_result.ok
    kept = {e.id: e.reason for e in dr_result.kept}
    assert kept[p2] == "newest backup" and kept[verified_there] == "newest verified backup"
    assert {(e.id, e.kind) for e in dr_result.removed} == {
        (only_there, "backup"),
        (p1, "backup"),
        (old_export, "export"),
    }
    assert backup_ids(dr) == [p2, verified_there]
    assert [m.id for m in dr.catalog.listing("export").items] == [new_export]
    # vault: the older backup would go, but Object Lock keeps it, with the reason.
    reasons = {e.id: e.reason for e in vault_result.kept}
    assert vault_result.removed == [] and reasons[v_new] == "newest backup"
    assert reasons[v_old].startswith("object lock until ")
    assert backup_ids(locked) == [v_new, v_old]


def test_a_dry_run_removes_nothing_anywhere(tmp_path: Path) -> None:
    ctx = context(tmp_path, [{"name": "dr", "url": (tmp_path / "dr").as_uri()}])
    dr = with_source(ctx, "dr")
    old, new = put_backup(dr, days_ago(3)), put_backup(dr, days_ago(1))
    result = run_prune(ctx, dry_run=True)
    [replica] = result.replicas
    assert [e.id for e in replica.removed] == [old] and result.exit_code == 0
    assert backup_ids(dr) == [new, old]
