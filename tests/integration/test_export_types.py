"""Exotic schemas: a table name and a column name that need quoting, every awkward type
(bytea, numeric, arrays, enum, jsonb, NULL vs empty string, timestamps with and without zone,
a generated column, an ALWAYS identity) and a trigger that would block inserts all round-trip
through export-user and restore-user; a table that references users without the user column
is warned about by name."""

from __future__ import annotations

from typing import Any

from psycopg import sql

from drtool.config import StorageConfig
from tests.integration.export_helpers import fingerprint, people_setup

SCHEMA = """
create type mood as enum ('happy', 'sad', 'it''s complicated');
create table people (id text primary key, name text, updated_at timestamptz default now());
create table "Weird Table" (
  "Id" bigint generated always as identity primary key,
  user_id text not null references people (id),
  "Odd Col" text,
  blob bytea,
  amount numeric(30, 10),
  tags text[],
  grid int[][],
  feeling mood,
  doc jsonb,
  at_local timestamp,
  at_zone timestamptz,
  twice numeric generated always as (amount * 2) stored
);
create table child (
  id serial primary key,
  user_id text not null references people (id),
  parent bigint references "Weird Table" ("Id"),
  note text
);
create table orphan_notes (id int primary key, person text references people (id));
create function refuse() returns trigger language plpgsql as
  $$ begin raise exception 'inserts are blocked'; end $$;
"""

ROWS = """
insert into people values ('alice', 'Alice'), ('bob', 'Bob');
insert into "Weird Table" (user_id, "Odd Col", blob, amount, tags, grid, feeling, doc,
                           at_local, at_zone) values
  ('alice', '', '\\x00ff5c0a'::bytea, 12345678901234567890.0123456789,
   array['a,b', 'c"d', null, E'tab\\there'], '{{1,2},{3,4}}', 'it''s complicated',
   '{"k": [1, "\\\\.", null], "nested": {"x": "\\n"}}',
   '2024-02-29 12:34:56.789', '2024-02-29 12:34:56.789+05:30'),
  ('alice', null, null, null, '{}', null, null, 'null', null, null),
  ('alice', E'\\\\.', '', 0, array[''], null, 'sad', '"\\\\."', 'infinity', '-infinity'),
  ('bob', 'bob''s', '\\xdead', 1, null, null, 'happy', '{}', now(), now());
insert into child (user_id, parent, note) values
  ('alice', 1, 'first'), ('alice', 3, E'line\\nbreak'), ('bob', 4, 'bobs');
insert into orphan_notes values (1, 'alice');
"""

TABLES = ("public.people", "public.Weird Table", "public.child")


def _fp(conn: Any, user: str) -> dict[str, tuple[int, str]]:
    fp = fingerprint(conn, user, ("public.Weird Table", "public.child"))
    fp.update(fingerprint(conn, user, ("public.people",), column="id"))
    return fp


def test_quoted_names_and_every_type_round_trip_past_a_blocking_trigger(
    empty_db: Any, tmp_path: Any, file_storage_config: StorageConfig
) -> None:
    setup = people_setup(empty_db, tmp_path, file_storage_config, SCHEMA, ROWS)
    with empty_db.connect() as conn:
        before, bob = _fp(conn, "alice"), _fp(conn, "bob")
    doc = setup.run("--json", "export-user", "alice").json
    assert doc["tables"] == {"public.people": 1, "public.Weird Table": 3, "public.child": 2}
    assert any("public.orphan_notes" in w for w in doc["warnings"])
    shown = setup.run("show", doc["id"]).stdout
    assert "public.Weird Table" in shown and "orphan_notes" in shown
    with empty_db.connect() as conn:
        conn.autocommit = True
        conn.execute("delete from child where user_id = 'alice'")
        conn.execute("""delete from "Weird Table" where user_id = 'alice'""")
        conn.execute(
            """create trigger no_inserts before insert on "Weird Table" """
            "for each row execute function refuse()"
        )
    setup.run("restore-user", "alice", "--from-export", doc["id"], "--to", empty_db.dsn)
    with empty_db.connect() as conn:
        assert _fp(conn, "alice") == before
        assert _fp(conn, "bob") == bob
        enabled = conn.execute(
            "select tgenabled from pg_trigger where tgname = 'no_inserts'"
        ).fetchone()
        assert enabled == ("O",)  # re-enabled as it was
        # The identity and the serial were moved past the restored ids.
        conn.execute("""insert into child (user_id, note) values ('bob', 'next')""")
        conn.commit()


def test_export_is_exact_whatever_the_database_s_session_defaults(
    empty_db: Any, tmp_path: Any, file_storage_config: StorageConfig
) -> None:
    # Defaults that make plain COPY text lossy or ambiguous: 2 float digits, day-first dates,
    # SQL-standard intervals, an exotic zone. drtool writes and reads under its own settings.
    with empty_db.connect() as conn:
        conn.autocommit = True
        db = conn.execute("select current_database()").fetchone()
        assert db is not None
        for name, value in (
            ("extra_float_digits", "-13"),
            ("datestyle", "SQL, DMY"),
            ("intervalstyle", "sql_standard"),
            ("timezone", "Pacific/Chatham"),
        ):
            conn.execute(
                sql.SQL("alter database {} set {} = {}").format(
                    sql.Identifier(str(db[0])), sql.Identifier(name), sql.Literal(value)
                )
            )
    setup = people_setup(
        empty_db,
        tmp_path,
        file_storage_config,
        "create table people (id text primary key);"
        "create table measures (id int primary key, user_id text references people (id),"
        " f float8, r real, d date, ts timestamp, iv interval, tz timestamptz);"
        "insert into people values ('alice'), ('bob');"
        "insert into measures values"
        " (1, 'alice', 1/3::float8, 1/3::real, '2024-02-01', '2024-02-01 01:02:03.456789',"
        "  interval '-1 year +2 mons -3 days 04:05:06.789', '2024-02-01 00:00:00.5+00'),"
        " (2, 'alice', pi(), -0.1::real, '0044-03-15 BC', '294276-12-31 23:59:59',"
        "  interval '1 day -00:00:01', 'epoch'), (3, 'bob', 2.5, 1, null, null, null, null);",
    )

    def exact(conn: Any) -> dict[str, tuple[int, str]]:
        for setting in ("extra_float_digits = 3", "datestyle = 'ISO'", "intervalstyle = postgres"):
            conn.execute(f"set {setting}")
        return fingerprint(conn, "alice", ("public.measures",))

    with empty_db.connect() as conn:
        before = exact(conn)
    doc = setup.run("--json", "export-user", "alice").json
    with empty_db.connect() as conn:
        conn.execute("delete from measures where user_id = 'alice'")
        conn.commit()
    setup.run("restore-user", "alice", "--from-export", doc["id"], "--to", empty_db.dsn)
    with empty_db.connect() as conn:
        assert exact(conn) == before


def test_json_columns_and_tables_without_a_primary_key_restore_in_both_modes(
    empty_db: Any, tmp_path: Any, file_storage_config: StorageConfig
) -> None:
    # `json` (unlike jsonb) has no equality operator, and a table without a primary key can
    # only be matched row by row: neither may break insert-missing or replace.
    setup = people_setup(
        empty_db,
        tmp_path,
        file_storage_config,
        "create table people (id text primary key);"
        "create table prefs (id int primary key, user_id text references people (id),"
        " doc json, spot point);"
        "create table events (user_id text references people (id), doc json, n int);"
        "insert into people values ('alice'), ('bob');"
        """insert into prefs values (1, 'alice', '{"a": [1, 2]}', '(1,2)'),"""
        """ (2, 'alice', '{"b": null}', null), (3, 'bob', '{}', '(0,0)');"""
        """insert into events values ('alice', '{"e": 1}', 1), ('alice', '{"e": 1}', 1),"""
        """ ('alice', null, 2), ('bob', '[]', 3);""",
    )
    tables = ("public.prefs", "public.events")
    with empty_db.connect() as conn:
        before, bob = fingerprint(conn, "alice", tables), fingerprint(conn, "bob", tables)
    doc = setup.run("--json", "export-user", "alice").json
    assert doc["tables"]["public.events"] == 3
    restore = ("restore-user", "alice", "--from-export", doc["id"], "--to", empty_db.dsn)

    with empty_db.connect() as conn:
        conn.execute("delete from events where user_id = 'alice' and n = 2")
        conn.execute("delete from prefs where id = 2")
        conn.commit()
    setup.run(*restore)
    with empty_db.connect() as conn:
        assert fingerprint(conn, "alice", tables) == before

    with empty_db.connect() as conn:
        conn.execute("""update prefs set doc = '{"edited": true}', spot = '(9,9)' where id = 1""")
        conn.execute("insert into events values ('alice', '{\"late\": 1}', 4)")
        conn.commit()
    setup.run(*restore, "--mode", "replace")
    with empty_db.connect() as conn:
        assert fingerprint(conn, "alice", tables) == before
        assert fingerprint(conn, "bob", tables) == bob
