"""Restore fidelity on an object zoo (tests/fixtures/zoo.py): a drtool backup restored by
drtool equals a plain ``pg_dump`` restored by ``pg_restore`` (tables, contents, objects per
kind, large objects); inheritance parents are counted without their children; foreign keys on
partitions, odd names, partitioned parents and large objects in a data-only reload."""

from __future__ import annotations

import hashlib
import json
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from drtool.errors import UsageError
from drtool.pg.cluster.ephemeral import EphemeralCluster
from drtool.pg.tools.find import find_tool
from drtool.services.restore.request import parse_table
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


def test_table_with_quoted_odd_names(
    zoo_setup: Setup, zoo_db: Database, empty_db: Database
) -> None:
    backup_id = backup(zoo_setup)
    with empty_db.connect() as conn:
        conn.execute('create schema "my schema"')
        conn.execute('create schema "Odd""Schema"')
    wanted = ["my schema.my.table", "my schema.Mixed Case", 'Odd"Schema.Tab"le']
    out = zoo_setup.run(
        "restore",
        backup_id,
        "--to",
        empty_db.dsn,
        "--table",
        '"my schema"."my.table"',
        "--table",
        "my schema.Mixed Case",
        "--table",
        '"Odd""Schema"."Tab""le"',
        # The plan checks only what --table restores: the schemas it needs are no clash.
        "--json",
    ).json
    assert sorted(out["tables"]) == sorted(wanted)
    assert checksums(empty_db.dsn, empty_db.password, wanted) == checksums(
        zoo_db.dsn, zoo_db.password, wanted
    )
    bad = zoo_setup.run("restore", backup_id, "--to", empty_db.dsn, "--table", "a.b.c", expect=2)
    assert "double-quote" in bad.stderr


def test_table_partitioned_parent_is_named_as_such_and_changes_nothing(
    zoo_setup: Setup, zoo_db: Database, empty_db: Database
) -> None:
    """pg_restore -t restores a partition's definition and rows but not its TABLE ATTACH entry:
    the parent and -t for each partition would leave detached tables. drtool refuses, names the
    table as partitioned with the partitions, and says how to get the rows back."""
    backup_id = backup(zoo_setup)
    refused = zoo_setup.run(
        "restore", backup_id, "--to", empty_db.dsn, "--table", "public.payments", expect=2
    )
    assert "public.payments: a partitioned table" in refused.stderr
    assert "public.payments_2025, public.payments_2026" in refused.stderr
    assert base_tables(empty_db) == []
    # The way it names: the partitions' rows reloaded into a database that has the table.
    zoo_setup.run("restore", backup_id, "--to", empty_db.dsn)
    with empty_db.connect() as conn:
        conn.execute("delete from public.payments where id % 3 = 0")
    zoo_setup.run(
        "restore",
        backup_id,
        "--to",
        empty_db.dsn,
        "--table",
        "payments_2025",
        "--table",
        "payments_2026",
        "--data-only",
        "--force",
    )
    query = "select count(*) from public.payments"
    assert scalar(empty_db.dsn, empty_db.password, query) == scalar(
        zoo_db.dsn, zoo_db.password, query
    )
    parts = ["public.payments_2025", "public.payments_2026"]
    assert checksums(empty_db.dsn, empty_db.password, parts) == checksums(
        zoo_db.dsn, zoo_db.password, parts
    )


def test_data_only_force_replaces_large_objects(
    zoo_setup: Setup, zoo_db: Database, empty_db: Database
) -> None:
    backup_id = backup(zoo_setup)
    zoo_setup.run("restore", backup_id, "--to", empty_db.dsn)
    with empty_db.connect() as conn:
        conn.execute("delete from public.tickets where no > 3")
        conn.execute(f"select lo_put({LO_OIDS[0]}, 0, 'CHANGED'::bytea)")
        conn.execute("select lo_from_bytea(424299, 'only on the target'::bytea)")
    out = zoo_setup.run("restore", backup_id, "--to", empty_db.dsn, "--data-only", "--force")
    assert "exit 3" not in out.stderr
    tables = base_tables(zoo_db)
    assert checksums(empty_db.dsn, empty_db.password, tables) == checksums(
        zoo_db.dsn, zoo_db.password, tables
    )
    # The dump's large objects are back with their contents, owner and comment; a large
    # object the dump does not have is left alone.
    objects = describe_objects(empty_db)
    assert (424299, hashlib.md5(b"only on the target").hexdigest()) in objects["large objects"]
    objects["large objects"].remove((424299, hashlib.md5(b"only on the target").hexdigest()))
    assert objects == describe_objects(zoo_db)


def test_psql_error_does_not_read_like_drtool_exit_3(zoo_setup: Setup, empty_db: Database) -> None:
    backup_id = backup(zoo_setup)
    zoo_setup.run("restore", backup_id, "--to", empty_db.dsn)
    with empty_db.connect() as conn:
        conn.execute("alter table public.audit_log add column must int not null default 1")
        conn.execute("alter table public.audit_log alter column must drop default")
    failed = zoo_setup.run(
        "restore",
        backup_id,
        "--to",
        empty_db.dsn,
        "--data-only",
        "--force",
        "--table",
        "public.audit_log",
        expect=None,
    )
    assert failed.code == 1, failed.stderr
    assert "psql stopped with an error (psql exit status 3)" in failed.stderr
    assert "failed (exit 3)" not in failed.stderr
    assert scalar(empty_db.dsn, empty_db.password, "select count(*) from public.audit_log") == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("contacts", ("public", "contacts")),
        ("auth.users", ("auth", "users")),
        ("my schema.Order Lines", ("my schema", "Order Lines")),
        ('"my schema"."my.table"', ("my schema", "my.table")),
        ('"a.b"', ("public", "a.b")),
        ('public."A""B"', ("public", 'A"B')),
        ('"Odd""Schema".t', ('Odd"Schema', "t")),
    ],
)
def test_table_names_parse_as_written_or_sql_quoted(text: str, expected: tuple[str, str]) -> None:
    assert parse_table(text) == expected


@pytest.mark.parametrize("text", ["a.b.c", '"a', "a.", ".a", '"a"b', 'a"b', '""', "s. "])
def test_malformed_table_names_exit_2(text: str) -> None:
    with pytest.raises(UsageError):
        parse_table(text)


def test_data_only_force_of_an_inheritance_parent_leaves_its_children(
    zoo_setup: Setup, zoo_db: Database, empty_db: Database
) -> None:
    backup_id = backup(zoo_setup)
    zoo_setup.run("restore", backup_id, "--to", empty_db.dsn)
    with empty_db.connect() as conn:
        conn.execute("delete from only public.animals where id > 2")
        conn.execute("insert into public.cats (id, name) values (99, 'new cat')")
    out = zoo_setup.run(
        "restore",
        backup_id,
        "--to",
        empty_db.dsn,
        "--table",
        "animals",
        "--data-only",
        "--force",
        "--json",
    )
    assert out.json["tables"] == {"public.animals": 5}
    assert own_rows(empty_db, "public.animals") == own_rows(zoo_db, "public.animals")
    # The children were not selected: their rows, the new one included, stay.
    assert own_rows(empty_db, "public.cats") == own_rows(zoo_db, "public.cats") + 1
    assert own_rows(empty_db, "public.dogs") == own_rows(zoo_db, "public.dogs")
