"""Shared parts of the replication tests: a primary with every kind of item made by the real
CLI, replica configuration, storage snapshots, and a throttling TCP proxy to moto."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drtool.config import StorageConfig
from drtool.storage import Storage, open_storage
from tests.fixtures.cli import Setup, make_setup
from tests.fixtures.pg import TEST_PASSWORD
from tests.fixtures.s3 import MotoServer
from tests.integration.test_archive import POLICIES

NOT_REPLICATED = ("runs/", "scheduler/")  # job state of the primary, not items


def sample_copy(pg_cluster: Any) -> Iterator[str]:
    """A database cloned from the session's sample (archive runs delete rows from it)."""
    name = f"repl_{uuid.uuid4().hex[:10]}"
    with pg_cluster.connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE sample')
    try:
        yield name
    finally:
        pg_cluster.drop_database(name)


def primary_setup(
    directory: Path, pg_cluster: Any, dbname: str, storage: StorageConfig, heavy_user: str
) -> Setup:
    """A primary holding two backups, their verification records, one export, archived
    batches, a purge record and a drill record: every kind replication copies, each made by
    the CLI."""
    setup = make_setup(directory, pg_cluster.dsn(dbname), TEST_PASSWORD, storage)
    setup.doc["archival"] = {"policies": POLICIES}
    setup.write()
    setup.run("backup", "--label", "first")
    setup.run("backup", "--label", "second")
    setup.run("verify", "--all")
    setup.run("export-user", heavy_user)
    setup.run("archive", "run")
    setup.run("rehearse")
    return setup


def add_replica(setup: Setup, name: str, storage: StorageConfig, **keys: Any) -> None:
    doc: dict[str, Any] = {"name": name, "url": storage.url}
    if storage.endpoint_url:
        doc |= {"endpoint_url": storage.endpoint_url, "region": storage.region or "us-east-1"}
        doc |= {"addressing_style": "path", "part_size": storage.part_size}
    setup.doc["storage"]["replicas"] = [*setup.doc["storage"].get("replicas", []), doc | keys]
    setup.write()


def s3_env(setup: Setup, moto: MotoServer) -> None:
    setup.env.update(moto.env())


def snapshot(storage: Storage, skip: tuple[str, ...] = NOT_REPLICATED) -> dict[str, str]:
    """key -> SHA-256 of every object (job state left out)."""
    return {
        info.key: hashlib.sha256(storage.get_bytes(info.key)).hexdigest()
        for info in storage.list("")
        if not info.key.startswith(skip)
    }


def replicated_part(primary: Storage) -> dict[str, str]:
    """What a replica must hold after a complete run: everything but job state, the archive
    journal (pending batches), restore records (what was restored from the primary) and the
    audit trail's head (the primary's rewritten pointer; the audit records are copied)."""
    return {
        k: v
        for k, v in snapshot(primary).items()
        if "/journal/" not in k and not k.startswith("restores/") and k != "audit/head.json"
    }


def open_cfg(setup: Setup, cfg: StorageConfig) -> Storage:
    return open_storage(cfg, base_dir=setup.dir)


@pytest.fixture(scope="module")
def primary(
    tmp_path_factory: pytest.TempPathFactory, pg_cluster: Any, sample_db: Any
) -> Iterator[Setup]:
    """A file:// primary with every kind of item (module-scoped: tests clone it)."""
    directory = tmp_path_factory.mktemp("primary")
    storage = StorageConfig(url=(directory / "storage").as_uri())
    for dbname in sample_copy(pg_cluster):
        yield primary_setup(
            directory / "cfg", pg_cluster, dbname, storage, sample_db.info.heavy_user_id
        )
