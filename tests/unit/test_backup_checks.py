"""The pure parts of the backup's platform and exclusion checks: pg_dump's schema patterns,
how dependency warnings are worded and collapsed, and platform facts read back from a
manifest."""

from __future__ import annotations

import re

from drtool.pg.dump.dependencies import (
    EXTENSION,
    FOREIGN_KEY,
    FOREIGN_KEY_DATA,
    MAX_LISTED,
    OBJECT,
    Dependency,
    dependency_warnings,
    schema_pattern_regex,
)
from drtool.pg.platform.detect import PlatformFacts
from drtool.platforms import SUPABASE


def _matches(pattern: str, name: str) -> bool:
    return re.fullmatch(schema_pattern_regex(pattern), name) is not None


def test_schema_patterns_are_read_as_pg_dump_reads_them() -> None:
    assert _matches("auth", "auth") and not _matches("auth", "auth2")
    assert _matches("_realtime", "_realtime") and not _matches("_realtime", "xrealtime")
    assert _matches("pg*sodium*", "pgsodium_masks") and _matches("ext?", "ext1")
    assert not _matches("ext?", "ext")
    assert _matches("Auth", "auth") and not _matches('"Auth"', "auth")
    assert _matches('"My*"', "My*") and not _matches('"My*"', "Mystery")
    assert _matches('"a""b"', 'a"b')
    assert _matches("a.b$", "a.b$") and not _matches("a.b", "axb")


def _object(n: int, schema: str = "public", ref: str = "platform") -> Dependency:
    return Dependency(
        OBJECT, schema, f"policy p{n} on table {schema}.t", ref, f"function {ref}.f()"
    )


def test_one_warning_per_pair_of_schemas_naming_both_objects() -> None:
    found = [
        Dependency(EXTENSION, "ext", "citext", "ext", "schema ext"),
        Dependency(EXTENSION, "ext", "pgcrypto", "ext", "schema ext"),
        Dependency(
            FOREIGN_KEY,
            "public",
            "foreign key notes_t_fkey on table public.notes",
            "platform",
            "table platform.tenants",
            "public.notes",
        ),
        _object(1),
        _object(2, schema="app"),
        Dependency(OBJECT, "", "event trigger t", "platform", "function platform.on_ddl()"),
    ]
    warnings = dependency_warnings(found)
    assert len(warnings) == 4
    assert any(
        "database-wide objects need schema platform" in w
        and "event trigger t uses function platform.on_ddl()" in w
        for w in warnings
    )
    assert all(w.startswith("restore will fail: ") for w in warnings)
    [ext] = [w for w in warnings if "extensions" in w]
    assert "extensions citext, pgcrypto are installed in schema ext" in ext
    [public] = [w for w in warnings if "objects in schema public" in w]
    assert "need schema platform" in public
    assert "foreign key notes_t_fkey on table public.notes references table platform.tenants" in (
        public
    )
    assert "policy p1 on table public.t uses function platform.f()" in public
    assert any("objects in schema app need schema platform" in w for w in warnings)


def test_many_similar_objects_collapse_into_and_n_more() -> None:
    found = [_object(n) for n in range(MAX_LISTED + 7)]
    [warning] = dependency_warnings(found)
    assert warning.count("policy p") == MAX_LISTED
    assert warning.endswith("and 7 more")


def test_a_foreign_key_on_an_empty_table_cannot_fail() -> None:
    def fk(table: str) -> Dependency:
        return Dependency(
            FOREIGN_KEY_DATA,
            "public",
            f"foreign key {table}_e_fkey",
            "public",
            "public.embeddings",
            f"public.{table}",
        )

    found = [fk("notes"), fk("empty")]
    counts = {"public.notes": 3, "public.empty": 0, "public.embeddings": 9}
    [warning] = dependency_warnings(found, counts)
    assert "rows of public.notes reference public.embeddings (foreign key notes_e_fkey)" in (
        warning
    )
    assert "public.empty" not in warning
    assert dependency_warnings([fk("empty")], {"public.empty": 0}) == []
    assert dependency_warnings([fk("notes")], {"public.notes": 3, "public.embeddings": 0}) == []
    # Without counts (a partitioned table has none of its own) the warning stays.
    assert len(dependency_warnings([fk("empty")])) == 1


def test_platform_facts_read_back_from_a_manifest() -> None:
    facts = PlatformFacts(
        SUPABASE,
        {"auth": "20240612123726", "storage": None},
        {"auth.users": ["instance_id", "id", "email"]},
    )
    again = PlatformFacts.from_manifest(facts.name, facts.details())
    assert again == facts
    assert PlatformFacts.from_manifest(None, None) is None
    assert PlatformFacts.from_manifest("unknown-cloud", {}) is None
    bare = PlatformFacts.from_manifest("supabase", None)
    assert bare is not None and bare.schema_versions == {} and bare.data_tables == {}
