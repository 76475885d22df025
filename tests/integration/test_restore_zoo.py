"""Restore fidelity on an object zoo (tests/fixtures/zoo.py): a drtool backup restored by
drtool equals a plain ``pg_dump`` restored by ``pg_restore`` (tables, contents, objects per
kind, large objects); inheritance parents are counted without their children; foreign keys on
partitions, odd names, partitioned parents and large objects in a data-only reload."""

from __future__ import annotations

import json
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from drtool.pg.cluster import EphemeralCluster
from drtool.pg.tools import find_tool
from tests.fixtures.cli import Setup
from tests.fixtures.pg import Database
from tests.fixtures.zoo import LO_OIDS, base_tables, describe_objects, fresh_database
from tests.integration.restore_support import backup, checksums, read_manifest, scalar


@pytest.fixture
def other_db(pg_cluster: EphemeralCluster) -> Iterator[Database]:
    db = fresh_database(pg_cluster, "other")
    try:
        yield db
    finally:
        pg_cluster.drop_database(db.name)


def pg_dump_restore(source: Database, into: Database, tmp_path: Path) -> None:
    """The reference: a plain custom-format pg_dump restored by pg_restore."""
    dump = tmp_path / "reference.dump"
    env = source.env
    subprocess.run(
        [str(find_tool("pg_dump").path), "--format=custom", f"--file={dump}", source.dsn],
        env=env,
        check=True,
    )
    subprocess.run(
        [str(find_tool("pg_restore").path), "--exit-on-error", f"--dbname={into.dsn}", str(dump)],
        env=env,
        check=True,
    )


def own_rows(db: Database, table: str) -> int:
    schema, name = table.split(".", 1)
    with db.connect() as conn:
        query = 'select count(*) from only "{}"."{}"'.format(
            schema.replace('"', '""'), name.replace('"', '""')
        )
        row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])


def test_zoo_restore_equals_pg_dump_and_pg_restore(
    zoo_setup: Setup, zoo_db: Database, empty_db: Database, other_db: Database, tmp_path: Path
) -> None:
    backup_id = backup(zoo_setup)
    manifest = read_manifest(zoo_setup, backup_id)
    # Every ordinary table, counted without its children, as pg_dump dumps it.
    tables = base_tables(zoo_db)
    assert sorted(manifest["tables"]) == tables
    assert manifest["tables"] == {t: own_rows(zoo_db, t) for t in tables}
    assert manifest["tables"]["public.animals"] == 5
    out = zoo_setup.run("restore", backup_id, "--to", empty_db.dsn, "--json").json
    assert out["tables"] == manifest["tables"]
    pg_dump_restore(zoo_db, other_db, tmp_path)
    assert base_tables(empty_db) == base_tables(other_db) == tables
    mine = checksums(empty_db.dsn, empty_db.password, tables)
    assert mine == checksums(other_db.dsn, other_db.password, tables)
    assert mine == checksums(zoo_db.dsn, zoo_db.password, tables)
    objects = describe_objects(empty_db)
    assert objects == describe_objects(other_db)
    assert objects == describe_objects(zoo_db)
    assert [oid for oid, _ in objects["large objects"]] == list(LO_OIDS)
    assert objects["rules"] == [("public.audit_log.audit_log_keep",)]


def test_restore_table_inheritance_parent_counts_its_own_rows(
    zoo_setup: Setup, empty_db: Database
) -> None:
    backup_id = backup(zoo_setup)
    out = zoo_setup.run("restore", backup_id, "--to", empty_db.dsn, "--table", "animals", "--json")
    assert out.json["tables"] == {"public.animals": 5}
    assert own_rows(empty_db, "public.animals") == 5


def test_child_without_data_restores_and_rehearses(
    zoo_setup: Setup, empty_db: Database, pg_cluster: EphemeralCluster
) -> None:
    zoo_setup.doc["backup"] = {"exclude_table_data": ["public.cats"]}
    zoo_setup.write()
    backup_id = backup(zoo_setup)
    manifest = read_manifest(zoo_setup, backup_id)
    assert manifest["tables"]["public.cats"] == 0
    assert manifest["tables"]["public.animals"] == 5
    out = zoo_setup.run("restore", backup_id, "--to", empty_db.dsn, "--json").json
    assert out["tables"]["public.animals"] == 5 and out["tables"]["public.cats"] == 0
    drill = zoo_setup.run("rehearse", "--scratch", pg_cluster.dsn("postgres"), "--json").json
    assert drill["verdict"] == "pass", drill
    assert all(t["ok"] for t in drill["tables"])


def test_export_user_with_foreign_keys_declared_on_partitions(
    zoo_setup: Setup, zoo_db: Database, tmp_path: Path
) -> None:
    zoo_setup.doc["exports"] = {"users_table": "public.customers", "user_id_column": "customer_id"}
    zoo_setup.write()
    out = tmp_path / "export.zip"
    doc = zoo_setup.run("export-user", "3", "--out", str(out), "--json").json
    expected = scalar(
        zoo_db.dsn, zoo_db.password, "select count(*) from public.payments where customer_id = 3"
    )
    assert expected > 0
    assert doc["tables"]["public.payments"] == expected
    assert doc["tables"]["public.customers"] == 1
    with zipfile.ZipFile(out) as archive:
        lines = archive.read("public.payments.jsonl").decode().splitlines()
    assert len(lines) == expected
    assert {json.loads(line)["customer_id"] for line in lines} == {3}
