"""Replica lag in `status` on an injected clock: the replica's newest backup, the lag (the age of
the oldest primary backup it lacks) growing while replication is stopped, the replica_lag
breach, an unreadable replica named with its error while the others are still reported, and
the per-replica metrics."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from drtool.config import Config
from drtool.services.context import Context
from drtool.services.jobs.health import gather_status
from drtool.services.jobs.metrics import registry_for
from drtool.storage.local import LocalStorage
from tests.unit.dr_state import T0, Clock, ReadLog, put_backup


def make_context(
    tmp: Path, clock: Clock, replicas: list[dict[str, object]], **sections: object
) -> Context:
    config = Config.model_validate(
        {
            "storage": {"url": (tmp / "storage").as_uri(), "replicas": replicas},
            **sections,
        }
    )
    return Context(config, ReadLog(tmp / "storage"), clock)


def replica(tmp: Path, name: str) -> dict[str, object]:
    return {"name": name, "url": (tmp / name).as_uri()}


def replicate(ctx: Context, name: str, item_id: str) -> None:
    """What `drtool replicate` does to a manifest-only backup: the same bytes there."""
    key = f"backups/{item_id}/manifest.json"
    ctx.replica_storage(name).put_bytes(key, ctx.storage.get_bytes(key))


def test_lag_is_zero_when_the_replica_has_the_newest_and_grows_while_replication_stops(
    tmp_path: Path,
) -> None:
    clock = Clock(T0 + timedelta(hours=1))
    ctx = make_context(
        tmp_path, clock, [replica(tmp_path, "dr")], objectives={"replica_lag": "26h", "rpo": "30d"}
    )
    first = put_backup(ctx, T0)
    replicate(ctx, "dr", first)
    [state] = gather_status(ctx).replicas
    assert (state.name, state.newest_id, state.lag_seconds, state.ok) == ("dr", first, 0.0, True)

    # Replication stops; the primary goes on: the lag is the age of the first backup missing.
    missing = put_backup(ctx, T0 + timedelta(days=1))
    put_backup(ctx, T0 + timedelta(days=2))
    clock.now = T0 + timedelta(days=2, hours=1)
    result = gather_status(ctx)
    [state] = result.replicas
    assert state.newest_id == first and state.lag_seconds == 25 * 3600.0 and state.ok
    assert result.ok
    clock.advance(hours=2)
    result = gather_status(ctx)
    [state] = result.replicas
    assert state.lag_seconds == 27 * 3600.0 and not state.ok
    assert not result.ok and result.breached == ["replica_lag"]
    [text] = result.breaches
    assert text.startswith("replica dr lags 1d 3h behind the primary")
    assert f"backup {missing} is missing there" in text and "objective replica_lag 26h" in text

    replicate(ctx, "dr", missing)
    [state] = gather_status(ctx).replicas
    assert state.lag_seconds == 3 * 3600.0  # the newest is still missing


def test_an_empty_replica_lags_by_the_primarys_newest_backup(tmp_path: Path) -> None:
    clock = Clock(T0 + timedelta(hours=5))
    ctx = make_context(tmp_path, clock, [replica(tmp_path, "dr")])
    put_backup(ctx, T0)
    put_backup(ctx, T0 + timedelta(hours=2))
    result = gather_status(ctx)
    [state] = result.replicas
    assert state.newest_id is None and state.lag_seconds == 3 * 3600.0
    assert state.ok and result.ok, "no replica_lag objective: reported, not a breach"


def test_an_unreadable_replica_is_a_breach_naming_it_and_the_others_are_still_reported(
    tmp_path: Path,
) -> None:
    clock = Clock(T0 + timedelta(hours=1))
    unreachable = {
        "name": "broken",
        "url": "s3://gone/prefix",
        "endpoint_url": "http://127.0.0.1:9",  # nothing listens on the discard port
        "region": "us-east-1",
        "access_key_id": "unused-key-id",
        "secret_access_key": "unused-secret-key",
        "max_attempts": 1,
    }
    replicas = [unreachable, replica(tmp_path, "dr")]
    ctx = make_context(tmp_path, clock, replicas)
    newest = put_backup(ctx, T0)
    replicate(ctx, "dr", newest)
    result = gather_status(ctx)
    broken, good = result.replicas
    assert broken.name == "broken" and not broken.ok and broken.error
    assert broken.lag_seconds is None and broken.newest_id is None
    assert good.name == "dr" and good.ok and good.lag_seconds == 0.0
    assert result.breached == ["replica_lag"]
    [text] = result.breaches
    assert text.startswith("replica broken cannot be read")

    found = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(generate_latest(registry_for(result)).decode())
        for s in family.samples
    }
    assert found[("drtool_replica_up", (("replica", "broken"),))] == 0.0
    assert found[("drtool_replica_up", (("replica", "dr"),))] == 1.0
    assert found[("drtool_replica_lag_seconds", (("replica", "dr"),))] == 0.0
    assert ("drtool_replica_lag_seconds", (("replica", "broken"),)) not in found
    assert found[("drtool_objective_breached", (("objective", "replica_lag"),))] == 1.0


def test_status_reads_only_the_replicas_manifests(tmp_path: Path) -> None:
    clock = Clock(T0 + timedelta(hours=1))
    ctx = make_context(tmp_path, clock, [replica(tmp_path, "dr")])
    newest = put_backup(ctx, T0)
    replicate(ctx, "dr", newest)
    data = tmp_path / "dr" / "backups" / newest / "dump.pgdump.zst.age"
    data.write_bytes(b"x")
    data.chmod(0)  # a data object read would fail
    [state] = gather_status(ctx).replicas
    assert state.ok and state.newest_id == newest
    assert LocalStorage  # the replica is a plain local directory
