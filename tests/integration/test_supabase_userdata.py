"""Per-user exports on a Supabase-faithful project (tests/fixtures/supabase.py), connected as
Supabase's non-superuser ``postgres``: profiles keyed by ``id`` and ``storage.objects`` by its
TEXT ``owner_id`` (exports.user_columns), the tables holding users' rows that are not exported
named, the auth secrets left out of the --out archive without configuration, and a user
deleted from auth.users (profile and contacts cascaded, standalone notes set null) brought back
whole by restore-user, in both modes.

Each test works on its own copy of the session's ``supabase_source`` (CREATE DATABASE ...
TEMPLATE, as the cluster's superuser), never on the source itself."""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from drtool.config import StorageConfig, load_config
from drtool.pg.cluster.ephemeral import EphemeralCluster
from drtool.pipeline.store import load
from drtool.services.context import build_context
from drtool.services.keys import configured_identities
from tests.fixtures.cli import Setup, make_setup
from tests.fixtures.pg import Database
from tests.fixtures.supabase import SUPABASE_USERS
from tests.integration.export_helpers import copy_database

ADA = SUPABASE_USERS[0][0]  # sessions, refresh tokens, an MFA factor, documents
GRACE = SUPABASE_USERS[1][0]
ALAN = SUPABASE_USERS[2][0]
BARBARA = SUPABASE_USERS[4][0]  # unconfirmed: a confirmation token and a one-time token

USER_COLUMNS = {"public.profiles": "id", "storage.objects": "owner_id"}
# Discovered on the platform layer (user_id) or configured above, with their user column.
EXPECTED = {
    "auth.users": "id",
    "auth.identities": "user_id",
    "auth.sessions": "user_id",
    "auth.refresh_tokens": "user_id",  # varchar(255): compared as text
    "auth.mfa_factors": "user_id",
    "auth.one_time_tokens": "user_id",
    "public.profiles": "id",
    "public.contacts": "user_id",
    "public.notes": "user_id",
    "storage.objects": "owner_id",  # TEXT holding the uuid
}
# Secret columns of the source (drtool.platforms.SUPABASE.secret_columns) that hold values.
SECRET_QUERIES = {
    "auth.users.encrypted_password": ("select encrypted_password from auth.users where id = %s"),
    "auth.users.confirmation_token": (
        "select confirmation_token from auth.users where id = %s and confirmation_token <> ''"
    ),
    "auth.sessions.refresh_token_hmac_key": (
        "select refresh_token_hmac_key from auth.sessions where user_id = %s"
    ),
    # The live tokens; a revoked token's value is also its child's ``parent`` (see
    # test_out_archive_leaves_out_revoked_refresh_tokens_named_as_parents).
    "auth.refresh_tokens.token": (
        "select token from auth.refresh_tokens where user_id = %s::text and token not in "
        "(select parent from auth.refresh_tokens where parent is not null)"
    ),
    "auth.mfa_factors.secret": "select secret from auth.mfa_factors where user_id = %s",
    "auth.one_time_tokens.token_hash": (
        "select token_hash from auth.one_time_tokens where user_id = %s"
    ),
}


@dataclass
class Project:
    cluster: EphemeralCluster
    name: str
    setup: Setup

    @property
    def dsn(self) -> str:
        """As ``postgres``, the application's role (its password in PGPASSWORD)."""
        return self.cluster.dsn(self.name, user="postgres")

    def connect(self, user: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        return self.cluster.connect(self.name, user=user)


@pytest.fixture
def project(
    supabase_source: Database, tmp_path: Path, file_storage_config: StorageConfig
) -> Iterator[Project]:
    """A private copy of the Supabase source project, configured as an operator would:
    profiles by id, storage objects by owner_id."""
    cluster = supabase_source.cluster
    name, _ = copy_database(cluster, supabase_source.name)
    try:
        with cluster.connect(name) as conn:
            # As on the platform (and in the source): the project's database is postgres's.
            conn.execute(
                sql.SQL("alter database {} owner to postgres").format(sql.Identifier(name))
            )
        setup = make_setup(
            tmp_path / "cfg",
            cluster.dsn(name, user="postgres"),
            supabase_source.password,
            file_storage_config,
        )
        setup.doc["exports"] = {"user_columns": dict(USER_COLUMNS)}
        setup.write()
        setup.env["PGPASSWORD"] = str(supabase_source.password)
        yield Project(cluster, name, setup)
    finally:
        cluster.drop_database(name)


def fingerprint(
    conn: psycopg.Connection[tuple[object, ...]], user_id: str, *, others: bool = False
) -> dict[str, tuple[int, str]]:
    """(rows, md5 of the sorted row texts) per user-scoped table, of the user's rows, or of
    everyone else's (rows whose user column is NULL included)."""
    out: dict[str, tuple[int, str]] = {}
    for table, column in EXPECTED.items():
        schema, name = table.split(".")
        op = sql.SQL("is distinct from" if others else "=")
        row = conn.execute(
            sql.SQL(
                "select count(*), coalesce(md5(string_agg(t::text, '|' order by t::text)), '') "
                "from {}.{} t where {}::text {} %s::text"
            ).format(sql.Identifier(schema), sql.Identifier(name), sql.Identifier(column), op),
            (user_id,),
        ).fetchone()
        assert row is not None
        out[table] = (int(row[0]), str(row[1]))  # type: ignore[call-overload]
    return out


def secrets_of(project: Project, user_id: str) -> dict[str, list[str]]:
    """The secret values the source holds for the user, by column (read as the superuser)."""
    with project.connect(project.cluster.superuser) as conn:
        found = {
            column: [str(r[0]) for r in conn.execute(query, (user_id,)).fetchall() if r[0]]
            for column, query in SECRET_QUERIES.items()
        }
    return {column: values for column, values in found.items() if values}


def _plaintext(setup: Setup, export_id: str) -> bytes:
    config = load_config(setup.config_path, setup.env)
    ctx = build_context(config)
    found = ctx.catalog.get(export_id, "export")
    return b"".join(load(ctx.storage, found.object("rows").stored(), configured_identities(config)))


def test_export_user_covers_profiles_and_storage_and_names_tables_not_exported(
    project: Project,
) -> None:
    with project.connect() as conn:
        # An app table that points at users without a user column.
        conn.execute(
            "create table public.invitations (id bigint generated always as identity primary "
            "key, invited_by uuid references auth.users on delete set null, email text)"
        )
        conn.execute(
            "insert into public.invitations (invited_by, email) values (%s, 'x@y')", (ADA,)
        )
        expected = fingerprint(conn, ADA)
    doc = project.setup.run("--json", "export-user", ADA).json
    assert doc["platform"] == "supabase"
    for table, (rows, _) in expected.items():
        assert doc["tables"][table] == rows, table
    assert doc["tables"]["public.profiles"] == 1
    assert doc["tables"]["storage.objects"] == expected["storage.objects"][0] == 3
    assert doc["tables"]["auth.refresh_tokens"] == 6
    named = {n["table"]: n for n in doc["not_exported"]}
    assert "auth.users" in named["public.invitations"]["reason"]
    assert "auth.mfa_factors" in named["auth.mfa_challenges"]["reason"]
    assert "auth.sessions" in named["auth.mfa_amr_claims"]["reason"]
    assert not any(n["excluded"] for n in named.values())
    for table in named:
        assert table not in doc["tables"]
        assert any(w.startswith(table + " ") for w in doc["warnings"])
    manifest = project.setup.run("--json", "show", doc["id"]).json
    assert manifest["platform"] == "supabase"
    assert manifest["not_exported"] == doc["not_exported"]
    details = {d["table"]: d for d in manifest["table_details"]}
    for table, column in EXPECTED.items():
        assert details[table]["user_column"] == column
    # The stored export keeps everything (it is for restore-user), and nobody else's rows.
    plain = _plaintext(project.setup, doc["id"])
    for values in secrets_of(project, ADA).values():
        assert all(v.encode() in plain for v in values)
    for other, _, _ in SUPABASE_USERS[1:]:
        assert other.encode() not in plain


def test_excluded_table_referencing_users_is_named_as_excluded(project: Project) -> None:
    project.setup.doc["exports"]["exclude_tables"] = ["auth.one_time_tokens"]
    project.setup.write()
    doc = project.setup.run("--json", "export-user", BARBARA).json
    assert "auth.one_time_tokens" not in doc["tables"]
    named = {n["table"]: n for n in doc["not_exported"]}
    assert named["auth.one_time_tokens"]["excluded"] is True
    assert "exports.exclude_tables" in named["auth.one_time_tokens"]["reason"]
    assert not any("one_time_tokens" in w for w in doc["warnings"])
    human = project.setup.run("export-user", BARBARA).stdout
    assert "not exported: auth.one_time_tokens" in human


@pytest.mark.parametrize("user", [ADA, BARBARA])
def test_out_archive_leaves_out_the_auth_secrets_and_lists_them(
    project: Project, tmp_path: Path, user: str
) -> None:
    secrets = secrets_of(project, user)
    # Ada: password hash, session keys, refresh tokens, TOTP secret; Barbara: the
    # confirmation token and its one-time token.
    assert len(secrets) == (4 if user == ADA else 3)
    project.setup.doc["exports"]["redact_columns"] = ["public.profiles.website"]
    project.setup.write()
    out = tmp_path / "subject.zip"
    doc = project.setup.run("--json", "export-user", user, "--out", str(out)).json
    with zipfile.ZipFile(out) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    manifest = json.loads(members["manifest.json"])
    everything = out.read_bytes() + b"".join(members.values())
    for column, values in secrets.items():
        assert column in manifest["redacted_columns"], column
        for value in values:
            assert value.encode() not in everything, column
    reasons = {r["column"]: r["reason"] for r in manifest["redactions"]}
    assert reasons["public.profiles.website"] == "exports.redact_columns"
    assert reasons["auth.users.encrypted_password"] == "Supabase credential"
    assert set(doc["redacted_columns"]) == set(manifest["redacted_columns"]) == set(reasons)
    assert manifest["platform"] == "supabase"
    assert "auth.mfa_challenges" in {n["table"] for n in manifest["not_exported"]}
    assert "auth.users.encrypted_password" in members["README.txt"].decode()
    # The data is there: every row the user's, the profile by id, storage objects by their
    # text owner_id, sessions without their key; nobody else's id anywhere.
    for table, info in manifest["tables"].items():
        data = members[info["file"]]
        assert hashlib.sha256(data).hexdigest() == info["sha256"]
        rows = [json.loads(line) for line in data.splitlines()]
        assert len(rows) == doc["tables"][table]
        assert all(row[EXPECTED.get(table, "user_id")] == user for row in rows), table
    profile = json.loads(members["public.profiles.jsonl"])
    assert profile["full_name"] and "website" not in profile
    user_row = json.loads(members["auth.users.jsonl"])
    assert user_row["email"] and "encrypted_password" not in user_row
    objects = [json.loads(x) for x in members["storage.objects.jsonl"].splitlines()]
    assert objects and all(o["name"].startswith(user + "/") for o in objects)
    for line in members["auth.sessions.jsonl"].splitlines():
        session = json.loads(line)
        assert session["user_agent"] and "refresh_token_hmac_key" not in session
    for other, _, _ in SUPABASE_USERS:
        if other != user:
            assert other.encode() not in everything


def test_out_archive_leaves_out_revoked_refresh_tokens_named_as_parents(
    project: Project, tmp_path: Path
) -> None:
    with project.connect(project.cluster.superuser) as conn:
        parents = [
            str(r[0])
            for r in conn.execute(
                "select parent from auth.refresh_tokens where user_id = %s::text "
                "and parent is not null",
                (ADA,),
            ).fetchall()
        ]
    assert parents
    out = tmp_path / "subject.zip"
    project.setup.run("export-user", ADA, "--out", str(out))
    with zipfile.ZipFile(out) as zf:
        everything = b"".join(zf.read(name) for name in zf.namelist())
    assert [p for p in parents if p.encode() in everything] == []


def _delete_from_auth_users(conn: psycopg.Connection[tuple[object, ...]], user: str) -> int:
    """As the dashboard does; returns how many of the user's notes were detached."""
    conn.execute("delete from auth.users where id = %s", (user,))
    row = conn.execute(
        "select count(*) from public.notes where user_id is null and body like 'Standalone%%'"
    ).fetchone()
    assert row is not None
    return int(row[0])  # type: ignore[call-overload]


@pytest.mark.parametrize("owner", ["member", "not-owner"])
@pytest.mark.parametrize("mode", ["insert-missing", "replace"])
def test_restore_user_brings_back_a_user_deleted_from_auth_users(
    project: Project, mode: str, owner: str
) -> None:
    """``member``: postgres is a member of supabase_auth_admin (PostgreSQL 15 projects), so
    the auth.users trigger is disabled for the restore. ``not-owner``: auth.users belongs to a
    role postgres is not a member of (write grants only): the profile trigger fires when the
    user's row comes back, and its profile is replaced by the exported one."""
    with project.connect(project.cluster.superuser) as conn:
        if owner == "not-owner":
            conn.execute("alter table auth.users owner to supabase_admin")
            conn.execute("grant all on auth.users to postgres")
    with project.connect() as conn:
        # Notes without a contact: ON DELETE SET NULL detaches them (the ones on Ada's
        # contacts go with the contacts, ON DELETE CASCADE).
        conn.execute(
            "insert into public.notes (user_id, body) values (%s, 'Standalone one'), "
            "(%s, E'Standalone two\\nwith a newline')",
            (ADA, ADA),
        )
        before = fingerprint(conn, ADA)
        others = fingerprint(conn, ADA, others=True)
    export_id = project.setup.run("--json", "export-user", ADA).json["id"]
    with project.connect() as conn:
        assert _delete_from_auth_users(conn, ADA) == 2
        gone = fingerprint(conn, ADA)
    assert gone["public.profiles"][0] == gone["public.notes"][0] == gone["auth.users"][0] == 0
    assert gone["storage.objects"] == before["storage.objects"]  # no FK: still there
    args = ("restore-user", ADA, "--from-export", export_id, "--to", project.dsn, "--mode", mode)
    dry = {t["table"]: t for t in project.setup.run("--json", *args, "--dry-run").json["tables"]}
    assert dry["auth.users"]["inserted"] == 1
    assert dry["public.profiles"]["inserted"] == 1
    assert dry["public.contacts"]["inserted"] == 3
    assert dry["public.notes"]["reattached"] == 2
    assert dry["public.notes"]["inserted"] == before["public.notes"][0] - 2
    assert dry["auth.refresh_tokens"]["inserted"] == 6
    assert dry["storage.objects"]["unchanged"] == 3
    assert all(t["conflicts"] == 0 and t["deleted"] == 0 for t in dry.values())
    with project.connect() as conn:
        assert fingerprint(conn, ADA) == gone  # the dry run changed nothing
    human = project.setup.run(*args).stdout
    assert "REATTACH" in human
    with project.connect() as conn:
        assert fingerprint(conn, ADA) == before
        assert fingerprint(conn, ADA, others=True) == others
        enabled = conn.execute(
            "select tgenabled from pg_trigger where tgname = 'on_auth_user_created'"
        ).fetchone()
        assert enabled == ("O",)
        # Sequences were moved past the restored ids: the app's next inserts work.
        conn.execute("insert into public.notes (user_id, body) values (%s, 'next')", (ADA,))
        conn.execute("insert into auth.refresh_tokens (token, user_id) values ('next', %s)", (ADA,))
        conn.execute("delete from public.notes where body = 'next'")
        conn.execute("delete from auth.refresh_tokens where token = 'next'")
    again = project.setup.run("--json", *args).json
    assert [t["table"] for t in again["tables"] if t["inserted"] or t["reattached"]] == []
    assert [t["table"] for t in again["tables"] if t["updated"] or t["deleted"]] == []
    kept = [w for w in again["warnings"] if "on_auth_user_created" in w]
    assert bool(kept) == (owner == "not-owner")


def test_restore_user_replace_counts_detached_rows_once(project: Project) -> None:
    """A detached row that was also edited: replace makes it the exported row, counted as
    re-attached only; insert-missing gives the user back and keeps the edit."""
    export_id = project.setup.run("--json", "export-user", ADA).json["id"]
    with project.connect() as conn:
        note = conn.execute(
            "update public.notes set user_id = null, body = 'edited' where id = "
            "(select min(id) from public.notes where user_id = %s) returning id, body",
            (ADA,),
        ).fetchone()
    assert note is not None
    base = ("restore-user", ADA, "--from-export", export_id, "--to", project.dsn)
    kept = project.setup.run("--json", *base).json["tables"]
    notes = next(t for t in kept if t["table"] == "public.notes")
    assert (notes["reattached"], notes["updated"], notes["inserted"]) == (1, 0, 0)
    with project.connect() as conn:
        conn.execute("update public.notes set user_id = null where id = %s", (note[0],))
    replaced = project.setup.run("--json", *base, "--mode", "replace").json["tables"]
    notes = next(t for t in replaced if t["table"] == "public.notes")
    assert (notes["reattached"], notes["updated"], notes["inserted"]) == (1, 0, 0)
    with project.connect() as conn:
        row = conn.execute(
            "select user_id::text, body from public.notes where id = %s", (note[0],)
        ).fetchone()
    assert row is not None and row[0] == ADA and row[1] != "edited"


@pytest.mark.parametrize("mode", ["insert-missing", "replace"])
def test_restore_user_as_postgres_that_may_only_read_auth(project: Project, mode: str) -> None:
    """Newer Supabase images: postgres may only SELECT the auth tables. The app's rows of a
    user whose auth rows are intact come back; a user deleted from auth.users cannot, and the
    run says which table and changes nothing."""
    with project.connect(project.cluster.superuser) as conn:
        tables = [
            str(r[0])
            for r in conn.execute(
                "select quote_ident(relname) from pg_class where relkind = 'r' "
                "and relnamespace = 'auth'::regnamespace"
            ).fetchall()
        ]
        for table in tables:
            conn.execute(f"alter table auth.{table} owner to supabase_admin")
            conn.execute(f"revoke all on auth.{table} from postgres")
            conn.execute(f"grant select on auth.{table} to postgres")
    export_id = project.setup.run("--json", "export-user", ADA).json["id"]
    with project.connect() as conn:
        before = fingerprint(conn, ADA)
        conn.execute("delete from public.contacts where user_id = %s", (ADA,))
        conn.execute("delete from public.profiles where id = %s", (ADA,))
    args = ("restore-user", ADA, "--from-export", export_id, "--to", project.dsn, "--mode", mode)
    done = {t["table"]: t for t in project.setup.run("--json", *args).json["tables"]}
    assert done["public.contacts"]["inserted"] == 3 and done["public.profiles"]["inserted"] == 1
    assert done["auth.sessions"]["unchanged"] == 2
    with project.connect() as conn:
        assert fingerprint(conn, ADA) == before
    with project.connect(project.cluster.superuser) as conn:
        conn.execute("delete from auth.users where id = %s", (ADA,))
    with project.connect() as conn:
        gone = fingerprint(conn, ADA)
    dry = project.setup.run("--json", *args, "--dry-run").json
    assert any(w.startswith("auth.users: the role may not INSERT") for w in dry["warnings"])
    failed = project.setup.run("--json", *args, expect=1).json["error"]
    assert "auth.users" in failed["message"] and "INSERT" in failed["message"]
    assert "Auth API" in failed["hint"]
    with project.connect() as conn:
        assert fingerprint(conn, ADA) == gone


def test_export_users_changed_since_reads_text_user_columns(project: Project) -> None:
    """storage.objects.owner_id (text) and auth.refresh_tokens.user_id (varchar) select their
    users like any uuid column; the fixture's rows are all older than an hour."""
    quiet = project.setup.run("--json", "export-users", "--changed-since", "1h").json
    assert quiet["exported"] == 0 and quiet["failed"] == []
    with project.connect() as conn:
        conn.execute("update storage.objects set updated_at = now() where owner_id = %s", (GRACE,))
        conn.execute(
            "update auth.refresh_tokens set updated_at = now() where user_id = %s", (ALAN,)
        )
    doc = project.setup.run("--json", "export-users", "--changed-since", "1h").json
    assert doc["exported"] == 2 and doc["failed"] == []
    listed = project.setup.run("--json", "list", "--kind", "export").json["items"]
    assert len(listed) == 2
    every = project.setup.run("--json", "export-users", "--all").json
    assert every["exported"] == len(SUPABASE_USERS) and every["failed"] == []


def test_bad_user_columns_entry_exits_2_naming_the_key(project: Project) -> None:
    cases: list[tuple[dict[str, str], str]] = [
        ({"public.nope": "id"}, "public.nope"),
        ({"storage.objects": "uploader"}, "uploader"),
        ({"storage.objects": "created_at"}, "timestamp"),
    ]
    for user_columns, needle in cases:
        project.setup.doc["exports"]["user_columns"] = user_columns
        project.setup.write()
        error: Any = project.setup.run("--json", "export-user", ADA, expect=2).json["error"]
        assert "exports.user_columns" in error["message"] and needle in error["message"]
