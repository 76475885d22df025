"""The restore script filter (role map, staging of platform tables, SET SESSION AUTHORIZATION)
and the TOC listing parser it is planned over."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from drtool.pg.restore.pg_restore import parse_toc
from drtool.pg.restore.script import ScriptFilter, map_roles

SCRIPT = (
    b"SET statement_timeout = 0;\n"
    b"ALTER TABLE public.notes OWNER TO supabase_admin;\n"
    b"GRANT ALL ON TABLE public.notes TO anon;\n"
    b'GRANT SELECT ON TABLE public.notes TO "Odd Role";\n'
    b"ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA public GRANT ALL ON TABLES"
    b" TO supabase_admin;\n"
    b"COPY auth.users (id, email) FROM stdin;\n"
    b"1\tALTER TABLE x OWNER TO supabase_admin;\n"
    b"2\t\\\\.x\n"
    b"\\.\n"
    b"COPY public.empty (a) FROM stdin;\n"
    b"\\.\n"
    b'SET SESSION AUTHORIZATION "supabase_admin";\n'
    b"RESET SESSION AUTHORIZATION;\n"
    b"CREATE POLICY own ON public.notes FOR SELECT TO supabase_admin, authenticated USING (true);\n"
)


def _filter() -> ScriptFilter:
    return ScriptFilter(
        role_map={"supabase_admin": "postgres", "Odd Role": "x"},
        drop_session_authorization=True,
        stage=frozenset({"auth.users"}),
        insert_order=("auth.users",),
    )


def _run(chunks: list[bytes]) -> bytes:
    flt = _filter()
    out = b"".join(piece for chunk in chunks for piece in flt.feed(chunk))
    return out + flt.finish()


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, last = [], 0
    for p in points:
        out.append(data[last:p])
        last = p
    return [*out, data[last:]]


EXPECTED = _run([SCRIPT])


def test_roles_are_mapped_where_the_script_names_roles_only() -> None:
    text = EXPECTED.decode()
    assert 'ALTER TABLE public.notes OWNER TO "postgres";' in text
    assert "GRANT ALL ON TABLE public.notes TO anon;" in text
    assert 'GRANT SELECT ON TABLE public.notes TO "x";' in text
    assert 'FOR ROLE "postgres" IN SCHEMA public GRANT ALL ON TABLES TO "postgres";' in text
    assert 'TO "postgres", authenticated USING (true);' in text
    # COPY data is never rewritten, even when it looks like a statement.
    assert "1\tALTER TABLE x OWNER TO supabase_admin;\n2\t\\\\.x\n\\.\n" in text
    assert "-- (drtool) SET SESSION AUTHORIZATION" in text
    assert "-- (drtool) RESET SESSION AUTHORIZATION;" in text


def test_platform_rows_go_through_a_staging_table_then_into_the_table() -> None:
    text = EXPECTED.decode()
    assert 'CREATE TEMPORARY TABLE "drtool_stage_1" (LIKE "auth"."users") ON COMMIT DROP;' in text
    assert 'COPY pg_temp."drtool_stage_1" (id, email) FROM stdin;' in text
    # Inserted as soon as the last staged table's rows are in: before the post-data section.
    assert (
        '2\t\\\\.x\n\\.\nINSERT INTO "auth"."users" (id, email) OVERRIDING SYSTEM VALUE '
        'SELECT id, email FROM pg_temp."drtool_stage_1";\nCOPY public.empty (a) FROM stdin;\n\\.\n'
    ) in text
    assert text.count("INSERT INTO") == 1


@settings(max_examples=300)
@given(st.lists(st.integers(min_value=0, max_value=10_000), max_size=40))
def test_any_chunking_gives_the_same_script(cuts: list[int]) -> None:
    assert _run(_split(SCRIPT, cuts)) == EXPECTED


def test_no_mapping_leaves_lines_alone() -> None:
    line = "ALTER TABLE public.t OWNER TO supabase_admin;"
    assert map_roles(line, {}) == line
    assert map_roles(line, {"other": "x"}) == line


def test_toc_lines_with_an_empty_owner_and_event_triggers_parse() -> None:
    listing = (
        ";\n; Archive created at 2026-12-05\n;     Dumped from database version: 15.18\n;\n"
        "4310; 3079 16401 EXTENSION - pgcrypto \n"
        "4311; 0 0 COMMENT - EXTENSION pgcrypto \n"
        "4400; 3466 17001 EVENT TRIGGER - pgrst_drop_watch supabase_admin\n"
        "4401; 826 17002 DEFAULT ACL public DEFAULT PRIVILEGES FOR TABLES supabase_admin\n"
        "4402; 0 0 ACL - SCHEMA auth supabase_admin\n"
        "4403; 0 17003 TABLE DATA auth users supabase_auth_admin\n"
        "4404; 2620 17004 TRIGGER auth users on_auth_user_created postgres\n"
    )
    toc = parse_toc(listing)
    by_id = {e.dump_id: e for e in toc.entries}
    assert (by_id[4310].kind, by_id[4310].name, by_id[4310].owner) == ("EXTENSION", "pgcrypto", "-")
    assert by_id[4311].subject == ("EXTENSION", "pgcrypto")
    assert (by_id[4400].kind, by_id[4400].name) == ("EVENT TRIGGER", "pgrst_drop_watch")
    assert (by_id[4401].kind, by_id[4401].schema, by_id[4401].owner) == (
        "DEFAULT ACL",
        "public",
        "supabase_admin",
    )
    assert by_id[4402].subject == ("SCHEMA", "auth")
    assert (by_id[4403].kind, by_id[4403].schema, by_id[4403].name) == (
        "TABLE DATA",
        "auth",
        "users",
    )
    assert by_id[4404].name == "users on_auth_user_created"
    assert by_id[4404].line.startswith("4404; 2620 17004 TRIGGER")
    assert toc.server_major == 15
