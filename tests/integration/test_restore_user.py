"""restore-user on a copy of the sample database: a deleted user's rows come back exactly
(checksums equal to before) from an export and from a backup, other users' rows unchanged;
replace reverts the user's edits; dry-run counts right and changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from drtool.config import StorageConfig
from drtool.pg.cluster.ephemeral import EphemeralCluster
from tests.fixtures.cli import Setup, make_setup
from tests.integration.export_helpers import copy_database, delete_user_rows, fingerprint


@dataclass
class Copy:
    setup: Setup
    dsn: str
    name: str
    cluster: EphemeralCluster

    def connect(self) -> psycopg.Connection[tuple[object, ...]]:
        conn = self.cluster.connect(self.name)
        conn.autocommit = True
        return conn

    @property
    def to(self) -> str:
        # The password travels in the environment (PGPASSWORD), never in argv.
        return self.dsn


@pytest.fixture
def copy(
    tmp_path: Path, pg_cluster: EphemeralCluster, sample_db: Any, file_storage_config: StorageConfig
) -> Iterator[Copy]:
    name, dsn = copy_database(pg_cluster, "sample")
    setup = make_setup(tmp_path / "cfg", dsn, sample_db.password, file_storage_config)
    setup.env["PGPASSWORD"] = sample_db.password
    try:
        yield Copy(setup, dsn, name, pg_cluster)
    finally:
        pg_cluster.drop_database(name)


def test_restore_from_export_brings_back_exactly_the_deleted_users_rows(
    copy: Copy, sample_db: Any
) -> None:
    heavy = sample_db.info.heavy_user_id
    with copy.connect() as conn:
        before = fingerprint(conn, heavy)
        others = fingerprint(conn, heavy, others=True)
    export_id = copy.setup.run("--json", "export-user", heavy).json["id"]
    with copy.connect() as conn:
        delete_user_rows(conn, heavy)
        assert fingerprint(conn, heavy)["public.contacts"][0] == 0
    dry = copy.setup.run(
        "--json", "restore-user", heavy, "--from-export", export_id, "--to", copy.to, "--dry-run"
    ).json
    assert dry["dry_run"] is True
    would = {t["table"]: t["inserted"] for t in dry["tables"]}
    assert would["public.contacts"] == before["public.contacts"][0]
    assert would["auth.users"] == 0  # the users-table row was kept
    with copy.connect() as conn:
        assert fingerprint(conn, heavy)["public.contacts"][0] == 0  # dry run changed nothing
    done = copy.setup.run(
        "--json", "restore-user", heavy, "--from-export", export_id, "--to", copy.to
    ).json
    assert {t["table"]: t["inserted"] for t in done["tables"]} == would
    with copy.connect() as conn:
        assert fingerprint(conn, heavy) == before
        assert fingerprint(conn, heavy, others=True) == others
        # Sequences were moved past the restored ids: the app's next insert works.
        conn.execute(
            "insert into public.sync_audit (user_id, provider, action, status) "
            "values (%s, 'gmail', 'sync', 'ok')",
            (heavy,),
        )
    again = copy.setup.run(
        "--json", "restore-user", heavy, "--from-export", export_id, "--to", copy.to
    ).json
    assert sum(t["inserted"] for t in again["tables"]) == 0


def test_replace_mode_reverts_the_users_edits_and_leaves_other_users_alone(
    copy: Copy, sample_db: Any
) -> None:
    heavy = sample_db.info.heavy_user_id
    export_id = copy.setup.run("--json", "export-user", heavy).json["id"]
    with copy.connect() as conn:
        before = fingerprint(conn, heavy)
        conn.execute("update public.contacts set notes = 'edited' where user_id = %s", (heavy,))
        edited = conn.execute(
            "select count(*) from public.contacts where user_id = %s", (heavy,)
        ).fetchone()
        conn.execute(
            "delete from public.messages where id = (select min(id) from public.messages "
            "where user_id = %s)",
            (heavy,),
        )
        conn.execute(
            "insert into public.sessions (id, user_id, expires_at) "
            "values (gen_random_uuid(), %s, now())",
            (heavy,),
        )
        others = fingerprint(conn, heavy, others=True)
    assert edited is not None
    args = ("restore-user", heavy, "--from-export", export_id, "--to", copy.to, "--mode", "replace")
    dry = {t["table"]: t for t in copy.setup.run("--json", *args, "--dry-run").json["tables"]}
    assert dry["public.contacts"]["updated"] == edited[0]
    assert dry["public.sessions"]["deleted"] == 1
    assert dry["public.messages"]["inserted"] >= 1
    done = {t["table"]: t for t in copy.setup.run("--json", *args).json["tables"]}
    assert done["public.contacts"]["updated"] == edited[0]
    assert done["public.sessions"]["deleted"] == 1
    with copy.connect() as conn:
        assert fingerprint(conn, heavy) == before
        assert fingerprint(conn, heavy, others=True) == others


def test_restore_from_backup_brings_back_the_deleted_users_rows(copy: Copy, sample_db: Any) -> None:
    heavy = sample_db.info.heavy_user_id
    backup_id = copy.setup.run("--json", "backup").json["id"]
    with copy.connect() as conn:
        before = fingerprint(conn, heavy)
        delete_user_rows(conn, heavy)
        others = fingerprint(conn, heavy, others=True)
    copy.setup.run("restore-user", heavy, "--from-backup", backup_id, "--to", copy.to)
    with copy.connect() as conn:
        assert fingerprint(conn, heavy) == before
        assert fingerprint(conn, heavy, others=True) == others


def test_restore_of_another_users_export_or_into_a_database_without_the_tables_exits_2(
    copy: Copy, sample_db: Any, empty_db: Any
) -> None:
    heavy = sample_db.info.heavy_user_id
    export_id = copy.setup.run("--json", "export-user", heavy).json["id"]
    with copy.connect() as conn:
        row = conn.execute("select id::text from auth.users where id <> %s limit 1", (heavy,))
        other = str(row.fetchone()[0])  # type: ignore[index]
    wrong = copy.setup.run(
        "restore-user", other, "--from-export", export_id, "--to", copy.to, expect=2
    )
    assert "holds the rows of user" in wrong.stderr
    missing = copy.setup.run(
        "restore-user", heavy, "--from-export", export_id, "--to", empty_db.dsn, expect=2
    )
    assert "has no table" in missing.stderr and "auth.users" in missing.stderr


def test_a_damaged_export_exits_3_and_changes_nothing(copy: Copy, sample_db: Any) -> None:
    heavy = sample_db.info.heavy_user_id
    export_id = copy.setup.run("--json", "export-user", heavy).json["id"]
    with copy.connect() as conn:
        delete_user_rows(conn, heavy)
        deleted = fingerprint(conn, heavy)
    storage = Path(copy.setup.doc["storage"]["url"].removeprefix("file://"))
    (rows,) = storage.glob(f"exports/*/{export_id}/rows.copy.zst.age")
    data = bytearray(rows.read_bytes())
    data[-100] ^= 0x01  # a bit in the last chunk: found only after earlier rows were loaded
    rows.write_bytes(bytes(data))
    result = copy.setup.run(
        "restore-user", heavy, "--from-export", export_id, "--to", copy.to, expect=3
    )
    assert "rows" in result.stderr
    with copy.connect() as conn:
        assert fingerprint(conn, heavy) == deleted


def test_round_trip_through_s3_restores_the_deleted_users_rows(
    tmp_path: Path, pg_cluster: EphemeralCluster, sample_db: Any, s3_storage_config: StorageConfig
) -> None:
    name, dsn = copy_database(pg_cluster, "sample")
    try:
        setup = make_setup(tmp_path / "s3cfg", dsn, sample_db.password, s3_storage_config)
        setup.env["PGPASSWORD"] = sample_db.password
        copy = Copy(setup, dsn, name, pg_cluster)
        heavy = sample_db.info.heavy_user_id
        with copy.connect() as conn:
            before = fingerprint(conn, heavy)
        export_id = setup.run("--json", "export-user", heavy).json["id"]
        with copy.connect() as conn:
            delete_user_rows(conn, heavy)
        setup.run("restore-user", heavy, "--from-export", export_id, "--to", dsn)
        with copy.connect() as conn:
            assert fingerprint(conn, heavy) == before
    finally:
        pg_cluster.drop_database(name)
