"""Reading pg_dump's SQL as text: the roles a schema script needs, extensions it creates, and
role definitions in pg_dumpall globals; never a crash on any text."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from drtool.pg.dump.sql_text import parse_globals, schema_facts
from drtool.pg.restore.pg_restore import condense_errors
from drtool.pg.restore.run import Selection

SCHEMA = """\
--
-- Name: contacts; Type: TABLE; Schema: public; Owner: app_owner
--
CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA public;
ALTER TABLE public.contacts OWNER TO app_owner;
ALTER TABLE "My Schema"."T" OWNER TO "Mixed Case";
GRANT SELECT,INSERT ON TABLE public.contacts TO authenticated;
GRANT ALL ON TABLE public.contacts TO service_role WITH GRANT OPTION;
GRANT SELECT ON TABLE public.contacts TO PUBLIC;
REVOKE ALL ON SCHEMA public FROM pg_database_owner;
ALTER DEFAULT PRIVILEGES FOR ROLE app_owner IN SCHEMA public GRANT ALL ON TABLES  TO reporting;
CREATE POLICY "Own contacts" ON public.contacts TO authenticated USING ((user_id = auth.uid()));
CREATE POLICY p2 ON "My Schema"."T" AS RESTRICTIVE FOR SELECT TO anon, "Mixed Case" USING (true);
"""

GLOBALS = """\
SET default_transaction_read_only = off;
CREATE ROLE anon;
ALTER ROLE anon WITH NOSUPERUSER NOINHERIT NOCREATEDB NOLOGIN NOREPLICATION NOBYPASSRLS;
CREATE ROLE authenticator;
ALTER ROLE authenticator WITH NOINHERIT LOGIN CONNECTION LIMIT 10 VALID UNTIL 'infinity';
ALTER ROLE authenticator SET statement_timeout TO '8s';
ALTER ROLE authenticator IN DATABASE postgres SET search_path TO 'x';
CREATE ROLE postgres;
ALTER ROLE postgres WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS;
CREATE ROLE odd;
ALTER ROLE odd WITH NOLOGIN PASSWORD 'x';
GRANT anon TO authenticator WITH INHERIT TRUE, SET TRUE GRANTED BY postgres;
"""


def test_schema_facts_name_owners_grantees_policy_roles_and_extensions() -> None:
    facts = schema_facts(SCHEMA)
    assert facts.owners == {"app_owner", "Mixed Case"}
    assert facts.grantees == {"authenticated", "service_role", "app_owner", "reporting"}
    assert facts.policy_roles == {"authenticated", "anon", "Mixed Case"}
    assert facts.extensions == ["pgcrypto"]
    assert facts.roles(with_owners_and_grants=False) == {"authenticated", "anon", "Mixed Case"}


def test_globals_give_attributes_settings_and_memberships() -> None:
    found = parse_globals(GLOBALS)
    assert found.roles["anon"].attributes[-1] == "NOBYPASSRLS"
    auth = found.roles["authenticator"]
    assert "CONNECTION LIMIT 10" in auth.attributes and "VALID UNTIL 'infinity'" in auth.attributes
    assert auth.settings == ["statement_timeout TO '8s'"]
    assert found.roles["postgres"].superuser
    # An attribute list drtool does not understand is not executed.
    assert found.roles["odd"].attributes == []
    [member] = found.memberships
    assert (member.role, member.member, member.options) == (
        "anon",
        "authenticator",
        " WITH INHERIT TRUE, SET TRUE",
    )


@given(st.text(max_size=2000))
def test_any_text_parses_without_crashing(text: str) -> None:
    schema_facts(text)
    parse_globals(text)
    condense_errors(text)


def test_echoed_statements_are_cut_so_the_error_stays_visible() -> None:
    lines = ['pg_restore: error: could not execute query: ERROR:  schema "x" does not exist']
    lines += ["Command was: CREATE TABLE x.t ("] + [f"    c{i} int," for i in range(300)]
    lines += [");", "pg_restore: warning: errors ignored on restore: 1"]
    text = condense_errors("\n".join(lines))
    assert 'schema "x" does not exist' in text and "c200" not in text
    assert text.endswith("errors ignored on restore: 1")


def test_table_selection_is_the_cross_product_pg_restore_applies() -> None:
    selection = Selection((("public", "a"), ("auth", "users")))
    assert selection.filter_args() == [
        "--schema",
        "public",
        "--schema",
        "auth",
        "--table",
        "a",
        "--table",
        "users",
    ]
    assert selection.covers("auth", "a") and selection.covers("public", "users")
    assert not selection.covers("other", "a")
