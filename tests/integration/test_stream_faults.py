"""Continuous archiving under real faults: ``stream run`` killed with SIGKILL at random moments
and restarted, a crash between storing a segment and advancing the slot, SIGTERM, a deleted,
a tampered and a reordered segment, and a slot holding more WAL than stream.max_slot_lag."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from datetime import datetime
from typing import Any

import pytest

from tests.fixtures.pg import TEST_PASSWORD
from tests.fixtures.stream import (
    APP_TABLES,
    StreamProject,
    fresh_target,
    restore_until,
    segment_manifests,
    storage_root,
)
from tests.integration.restore_support import checksums, user_tables
from tests.integration.test_scheduler import free_port


def _step(project: StreamProject, i: int) -> datetime:
    """One application transaction of a mixed workload (deterministic in ``i``)."""
    kind = i % 4
    if kind == 0:
        return project.write(
            f"insert into public.deals (contact_id, stage, amount, details)"
            f" select id, 'lead', {i}, '{{\"i\": {i}}}' from public.contacts"
            f" where id % 3 = {i % 3}",
            f"insert into public.raw_log values ('step {i}', now())",
        )
    if kind == 1:
        return project.write(
            f"update public.deals set amount = coalesce(amount, 0) + {i} where id % 5 = {i % 5}"
        )
    if kind == 2:
        return project.write(f"delete from public.deals where id % 7 = {i % 7} and amount < {i}")
    return project.write(
        f"insert into public.deal_events select id, 'touch', '{{}}', now()"
        f" from public.deals where id % 4 = {i % 4}"
    )


def _wait_for(predicate: Any, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _state(project: StreamProject) -> dict[str, Any] | None:
    path = storage_root(project.setup) / "streams" / "drtool" / "state.json"
    try:
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _stored_through(project: StreamProject) -> datetime | None:
    state = _state(project)
    if not state or not state.get("stored_through_at"):
        return None
    return datetime.fromisoformat(state["stored_through_at"])


def _started(project: StreamProject) -> bool:
    """The stream has run a cycle and its base backup is stored."""
    backups = list((storage_root(project.setup) / "backups").glob("*/manifest.json"))
    return bool(backups) and _stored_through(project) is not None


def _restore_equals(project: StreamProject, cluster: Any, at: datetime, expected: Any) -> Any:
    with fresh_target(cluster) as target:
        doc = restore_until(project, target.dsn, at).json
        assert checksums(target.dsn, TEST_PASSWORD, APP_TABLES) == expected
    return doc


def test_sigkill_at_random_moments_then_restart_loses_and_repeats_nothing(
    stream_project: StreamProject, fresh_project_cluster: Any
) -> None:
    project = stream_project
    rng = random.Random(1505)
    proc = project.setup.popen("stream", "run")
    try:
        _wait_for(lambda: _started(project), what="the first cycle and base backup")
        points = []
        kills = 0
        for i in range(40):
            at = _step(project, i)
            if i % 10 == 9:
                points.append((at, checksums(project.db.dsn, TEST_PASSWORD, APP_TABLES)))
            if i % 8 == 4:
                time.sleep(rng.uniform(0.0, 1.5))  # anywhere in a flush cycle
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
                kills += 1
                proc = project.setup.popen("stream", "run")
        last = points[-1][0]
        _wait_for(lambda: (_stored_through(project) or last) > last, what="the last write stored")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert kills == 5
    project.setup.run("verify", "--stream")
    segments = segment_manifests(project.setup)
    chains = {s["generation"] for s in segments}
    assert len(chains) == 1, "a restart continued the chain"
    for i in (1, len(points) - 1):
        _restore_equals(project, fresh_project_cluster, *points[i])


def test_crash_between_storing_a_segment_and_advancing_the_slot_stores_nothing_twice(
    stream_project: StreamProject, fresh_project_cluster: Any
) -> None:
    """The state after such a crash, made exactly: the slot where it was before the segment
    (a copy of it taken then), the segment stored."""
    project = stream_project
    setup = project.setup
    setup.run("stream", "run", "--once")
    admin = project.cluster
    with admin.connect(project.db.name) as conn:
        conn.execute("select pg_copy_logical_replication_slot('drtool', 'drtool_before')")
    first = [_step(project, i) for i in range(4)]
    setup.run("stream", "run", "--once")
    stored = segment_manifests(setup)
    assert sum(s["transactions"] for s in stored) == 4
    with admin.connect(project.db.name) as conn:
        conn.execute("select pg_drop_replication_slot('drtool')")
        conn.execute("select pg_copy_logical_replication_slot('drtool_before', 'drtool')")
        conn.execute("select pg_drop_replication_slot('drtool_before')")
    more = [_step(project, i) for i in range(4, 6)]
    run = setup.run("stream", "run", "--once")
    assert "stored but not confirmed" in run.stderr
    segments = segment_manifests(setup)
    assert sum(s["transactions"] for s in segments) == 6, "each transaction stored once"
    assert len({s["generation"] for s in segments}) == 1
    assert first and more
    expected = checksums(project.db.dsn, TEST_PASSWORD, APP_TABLES)
    _restore_equals(project, fresh_project_cluster, more[-1], expected)


def test_sigterm_stores_what_is_committed_and_exits_cleanly(
    stream_project: StreamProject,
) -> None:
    project = stream_project
    project.setup.doc["stream"]["flush_interval"] = "1h"  # only SIGTERM makes it store
    project.setup.write()
    proc = project.setup.popen("stream", "run")
    try:
        _wait_for(lambda: _started(project), what="the first cycle and base backup")
        before = len(segment_manifests(project.setup))
        at = _step(project, 0)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    segments = segment_manifests(project.setup)
    assert len(segments) == before + 1
    assert datetime.fromisoformat(segments[-1]["last_commit_at"]) <= at
    state = _state(project)
    assert state is not None and state["running"] is False
    # The slot stays: a stopped stream loses nothing (and the server keeps WAL for it).
    assert project.scalar("select count(*) from pg_replication_slots") == 1
    status = project.setup.run("stream", "status", "--json", expect=4).json
    assert status["slot_exists"] is True and status["running"] is False
    assert any("stopped" in b for b in status["breaches"])


def _damage_setup(project: StreamProject) -> list[dict[str, Any]]:
    setup = project.setup
    setup.run("stream", "run", "--once")
    for i in range(6):
        _step(project, i)
        if i % 2 == 1:
            setup.run("stream", "run", "--once")
    segments = segment_manifests(setup)
    assert len(segments) >= 3
    return segments


@pytest.mark.parametrize("damage", ["deleted", "tampered", "reordered"])
def test_gap_tamper_and_reorder_are_integrity_errors_and_leave_the_target_alone(
    stream_project: StreamProject, fresh_project_cluster: Any, damage: str
) -> None:
    project = stream_project
    segments = _damage_setup(project)
    root = storage_root(project.setup) / "streams" / "drtool" / "segments"
    middle = segments[1]
    folder = root / middle["id"]
    if damage == "deleted":
        (folder / "manifest.json").unlink()
    elif damage == "tampered":
        data = bytearray((folder / "changes.pgoutput.zst.age").read_bytes())
        data[len(data) // 2] ^= 0x01
        (folder / "changes.pgoutput.zst.age").write_bytes(bytes(data))
    else:
        # Two segments swap places: their manifests name each other's numbers.
        a, b = root / segments[1]["id"], root / segments[2]["id"]
        ma, mb = (
            json.loads((a / "manifest.json").read_text()),
            json.loads((b / "manifest.json").read_text()),
        )
        ma["sequence"], mb["sequence"] = mb["sequence"], ma["sequence"]
        (a / "manifest.json").write_text(json.dumps(ma))
        (b / "manifest.json").write_text(json.dumps(mb))
    verify = project.setup.run("verify", "--stream", "--json", expect=3).json
    assert not verify["ok"]
    now = project.write("select 1")
    with fresh_target(fresh_project_cluster) as target:
        run = restore_until(project, target.dsn, now, expect=3)
        assert "segment" in run.stderr
        assert [t for t in user_tables(target.dsn, TEST_PASSWORD) if t.startswith("public.")] == []


def test_slot_lag_above_the_limit_breaches_and_notifies(
    stream_project: StreamProject, webhook: Any
) -> None:
    project = stream_project
    setup = project.setup
    setup.run("stream", "run", "--once")
    # The stream stops; the application goes on writing: the slot holds the WAL.
    for _ in range(3):
        project.write(
            "insert into public.raw_log select repeat('w', 500), now()"
            " from generate_series(1, 2000)"
        )
    setup.doc["stream"]["max_slot_lag"] = "100kB"
    setup.doc["notifications"] = {"webhook_url": webhook.url, "on": ["breach"]}
    setup.write()
    status = setup.run("status", "--json", expect=4).json
    assert "stream_slot_lag" in status["breached"]
    stream = setup.run("stream", "status", "--json", expect=4).json
    assert stream["slot_retained_bytes"] > 100_000
    assert any("stream drop" in b for b in stream["breaches"])
    # The stream run notices it too, and says so on the webhook.
    setup.run("stream", "run", "--once")
    assert any("max_slot_lag" in p["text"] for p in webhook.posts())
    setup.run("stream", "drop")
    assert project.scalar("select count(*) from pg_replication_slots") == 0
    audit = setup.run("audit", "--json").json
    assert any(r["command"] == "stream drop" for r in audit["records"])
    after = setup.run("stream", "status", "--json", expect=None).json
    assert after["slot_exists"] is False
    assert not any("max_slot_lag" in b for b in after["breaches"])


def test_drop_refuses_while_the_stream_runs(stream_project: StreamProject) -> None:
    project = stream_project
    proc = project.setup.popen("stream", "run")
    try:
        _wait_for(lambda: _started(project), what="the first cycle")
        run = project.setup.run("stream", "drop", expect=5)
        assert "drtool:stream:drtool" in run.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert project.scalar("select count(*) from pg_replication_slots") == 1


def test_the_cron_container_runs_the_stream_beside_the_scheduler(
    stream_project: StreamProject,
) -> None:
    """`schedule run` with stream.enabled keeps `stream run` running (restarted when it is
    killed) and stops it cleanly with itself."""
    project = stream_project
    setup = project.setup
    directory = setup.dir / "schedules"
    directory.mkdir()
    (directory / "status.yaml").write_text('cron: "0 5 * * *"\ncommand: status\n')
    setup.doc["schedule"] = {"dir": "schedules"}
    setup.doc["metrics"] = {"listen": f"127.0.0.1:{free_port()}"}
    setup.write()
    proc = setup.popen("schedule", "run", "--grace", "30s")
    try:
        _wait_for(lambda: _started(project), what="the stream beside the scheduler")
        first = _state(project)
        assert first is not None and first["running"] is True
        os.kill(first["pid"], signal.SIGKILL)
        _wait_for(
            lambda: (_state(project) or {}).get("pid") not in (None, first["pid"]),
            what="the stream restarted",
        )
        at = _step(project, 0)
        _wait_for(lambda: (_stored_through(project) or at) > at, what="the write stored")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=90) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    state = _state(project)
    assert state is not None and state["running"] is False
