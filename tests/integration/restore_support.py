"""Helpers for the restore tests: backups through the CLI, target DSNs with a password,
per-table content checksums, the stored files of a local-storage backup."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from tests.fixtures.cli import Setup
from tests.fixtures.pg import TEST_PASSWORD

DUMP_FILE = "dump.pgdump.zst.age"


def backup(setup: Setup) -> str:
    return setup.run("backup").stdout.strip().splitlines()[-1]


def with_password(dsn: str, password: str | None) -> str:
    """``postgresql://user@host/db`` with the password in it (as an operator might type it)."""
    if password is None:
        return dsn
    parts = urlsplit(dsn)
    user, _, host = parts.netloc.rpartition("@")
    netloc = f"{user}:{quote(password, safe='')}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


def connect(dsn: str, password: str | None) -> psycopg.Connection[Any]:
    return psycopg.connect(dsn, password=password, autocommit=True)


def user_tables(dsn: str, password: str | None) -> list[str]:
    with connect(dsn, password) as conn:
        rows = conn.execute(
            "select table_schema || '.' || table_name from information_schema.tables"
            " where table_type = 'BASE TABLE'"
            " and table_schema not in ('pg_catalog', 'information_schema') order by 1"
        ).fetchall()
    return [r[0] for r in rows]


def checksums(dsn: str, password: str | None, tables: list[str]) -> dict[str, str]:
    """md5 of every row's text form, in a fixed order: equal means equal content."""
    out: dict[str, str] = {}
    with connect(dsn, password) as conn:
        for name in tables:
            schema, table = name.split(".", 1)
            query = sql.SQL(
                "select coalesce(md5(string_agg(t::text, ',' order by t::text)), '') from {} t"
            ).format(sql.Identifier(schema, table))
            row = conn.execute(query).fetchone()
            assert row is not None
            out[name] = row[0]
    return out


def scalar(dsn: str, password: str | None, query: str) -> Any:
    with connect(dsn, password) as conn:
        row = conn.execute(query).fetchone()  # type: ignore[call-overload]
        assert row is not None
        return row[0]


def storage_root(setup: Setup) -> Path:
    url = setup.doc["storage"]["url"]
    assert url.startswith("file://"), "these helpers read local storage"
    return Path(urlsplit(url).path)


def manifest_path(setup: Setup, backup_id: str) -> Path:
    return storage_root(setup) / "backups" / backup_id / "manifest.json"


def dump_path(setup: Setup, backup_id: str) -> Path:
    return storage_root(setup) / "backups" / backup_id / DUMP_FILE


def read_manifest(setup: Setup, backup_id: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(manifest_path(setup, backup_id).read_text())
    return doc


def write_manifest(setup: Setup, backup_id: str, doc: dict[str, Any]) -> None:
    text = json.dumps(doc, indent=2, sort_keys=True) + "\n"
    manifest_path(setup, backup_id).write_text(text)


def restore_records(setup: Setup, backup_id: str) -> list[dict[str, Any]]:
    folder = storage_root(setup) / "restores" / backup_id
    if not folder.exists():
        return []
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def payload_start(data: bytes) -> int:
    """Offset of the first STREAM chunk of an age file: after the header line "--- MAC\\n"
    and the 16-byte payload nonce."""
    footer = data.index(b"\n--- ") + 1
    return data.index(b"\n", footer) + 1 + 16


@pytest.fixture(autouse=True)
def target_password(request: pytest.FixtureRequest) -> None:
    """Restore targets get their password from PGPASSWORD, not from a DSN on the command line
    (other tests scan every drtool command line for the test password)."""
    for name in ("file_setup", "any_setup"):
        if name in request.fixturenames:
            request.getfixturevalue(name).env["PGPASSWORD"] = TEST_PASSWORD
