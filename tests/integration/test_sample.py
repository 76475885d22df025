"""The sample OmniCRM database: reproducible, shaped like the real app (Supabase roles, RLS,
skewed users, old rows to archive, expired sessions) and compressible like real data.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
import zstandard
from psycopg import sql
from psycopg.rows import TupleRow

from drtool.errors import DatabaseError
from drtool.pg.cluster.ephemeral import EphemeralCluster
from drtool.pg.sample.load import ROLES, TABLES, SampleInfo, load_sample, plan_rows
from tests.fixtures.pg import Database

AS_OF = datetime(2026, 3, 1, tzinfo=UTC)
SCALE = 0.02
USER_TABLES = [t for t in TABLES if t.startswith("public.")]


def checksums(conn: psycopg.Connection[TupleRow]) -> dict[str, str]:
    out = {}
    for name in TABLES:
        schema, table = name.split(".")
        query = sql.SQL("SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM {}.{} AS t")
        row = conn.execute(query.format(sql.Identifier(schema), sql.Identifier(table))).fetchone()
        assert row is not None
        out[name] = row[0]
    return out


@pytest.fixture
def two_loads(pg_cluster: EphemeralCluster) -> Iterator[list[tuple[str, SampleInfo]]]:
    names = ["sample_det_a", "sample_det_b"]
    loads = []
    try:
        for name in names:
            dsn = pg_cluster.create_database(name)
            info = load_sample(dsn, SCALE, password=pg_cluster.password, seed=7, as_of=AS_OF)
            loads.append((name, info))
        yield loads
    finally:
        for name in names:
            pg_cluster.drop_database(name)


def test_same_scale_and_seed_load_identical_rows(
    pg_cluster: EphemeralCluster, two_loads: list[tuple[str, SampleInfo]]
) -> None:
    (name_a, info_a), (name_b, info_b) = two_loads
    with pg_cluster.connect(name_a) as a, pg_cluster.connect(name_b) as b:
        sums_a, sums_b = checksums(a), checksums(b)
    assert sums_a == sums_b
    assert all(sums_a.values()), "every table has rows"
    assert info_a.table_rows == info_b.table_rows
    assert info_a.heavy_user_id == info_b.heavy_user_id
    plan = plan_rows(SCALE)
    assert info_a.users == plan["users"]
    assert info_a.table_rows["public.raw_events"] == plan["raw_events"]


def test_another_seed_gives_other_rows(sample_db: Database, empty_db: Database) -> None:
    info = load_sample(empty_db.dsn, SCALE, password=empty_db.password, seed=8, as_of=AS_OF)
    assert info.heavy_user_id != sample_db.info.heavy_user_id
    with empty_db.connect() as conn:
        row = conn.execute("SELECT count(*) FROM auth.users WHERE id = %s", [info.heavy_user_id])
        assert row.fetchone() == (1,)


def test_load_on_a_given_connection_leaves_no_helpers_and_sequences_continue(
    empty_db: Database,
) -> None:
    with empty_db.connect() as conn:
        load_sample(conn, SCALE, as_of=AS_OF)
        leftovers = conn.execute(
            "SELECT count(*) FROM pg_proc WHERE pronamespace = pg_my_temp_schema()"
        ).fetchone()
        assert leftovers == (0,)
        for table in ("raw_events", "jobs", "messages", "interactions"):
            query = sql.SQL(
                "INSERT INTO public.{} (user_id, {}) SELECT id, {} FROM auth.users LIMIT 1 "
                "RETURNING id, (SELECT max(id) FROM public.{})"
            )
            cols, vals = {
                "raw_events": (
                    "provider, event_type, external_id, payload, occurred_at",
                    "'gmail', 'x', 'x', '{}', now()",
                ),
                "jobs": ("kind", "'test'"),
                "messages": (
                    "thread_id, role, content",
                    "(SELECT id FROM public.threads LIMIT 1), 'user', 'hi'",
                ),
                "interactions": (
                    "contact_id, kind, occurred_at",
                    "(SELECT id FROM public.contacts LIMIT 1), 'note', now()",
                ),
            }[table]
            stmt = query.format(
                sql.Identifier(table), sql.SQL(cols), sql.SQL(vals), sql.Identifier(table)
            )
            row = conn.execute(stmt).fetchone()
            assert row is not None and row[0] > row[1], table


def test_schema_roles_policies_and_function_exist(sample_db: Database) -> None:
    with sample_db.connect() as conn:
        for name in TABLES:
            row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [name]).fetchone()
            assert row == (True,), name
        roles = {r[0] for r in conn.execute("SELECT rolname FROM pg_roles").fetchall()}
        assert set(ROLES) <= roles
        conn.execute("SET search_path = pg_catalog")  # deparsed names in full
        policies = conn.execute(
            "SELECT tablename, roles, qual FROM pg_policies WHERE schemaname = 'public'"
        ).fetchall()
        assert {p[0] for p in policies} == {t.split(".")[1] for t in USER_TABLES}
        assert all(p[1] == ["authenticated"] and "auth.uid()" in p[2] for p in policies)
        rls = conn.execute(
            "SELECT bool_and(relrowsecurity) FROM pg_class WHERE oid = ANY(%s::regclass[])",
            [USER_TABLES],
        ).fetchone()
        assert rls == (True,)
        generated = conn.execute(
            "SELECT attgenerated FROM pg_attribute "
            "WHERE attrelid = 'public.contacts'::regclass AND attname = 'full_name'"
        ).fetchone()
        assert generated == ("s",)
        kinds = conn.execute("SELECT enum_range(NULL::public.interaction_kind)::text").fetchone()
        assert kinds is not None and "email" in kinds[0]
        fks = conn.execute(
            "SELECT count(*) FROM pg_constraint WHERE contype = 'f' "
            "AND confrelid = 'auth.users'::regclass AND connamespace = 'public'::regnamespace"
        ).fetchone()
        assert fks == (len(USER_TABLES),)
        user_id = sample_db.info.heavy_user_id
        with conn.transaction():
            conn.execute("SELECT set_config('request.jwt.claim.sub', %s, true)", [user_id])
            assert conn.execute("SELECT auth.uid()::text").fetchone() == (user_id,)


def test_rls_shows_an_authenticated_user_only_their_rows(sample_db: Database) -> None:
    user_id = sample_db.info.heavy_user_id
    with sample_db.connect() as conn, conn.transaction():
        total = conn.execute("SELECT count(*) FROM public.contacts").fetchone()
        conn.execute("SET LOCAL ROLE authenticated")
        conn.execute("SELECT set_config('request.jwt.claim.sub', %s, true)", [user_id])
        visible = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE user_id <> %s) FROM public.contacts",
            [user_id],
        ).fetchone()
    assert total is not None and visible is not None
    assert 0 < visible[0] < total[0] and visible[1] == 0


def test_heavy_user_owns_the_most_rows_and_top_users_a_large_share(sample_db: Database) -> None:
    union = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT user_id FROM {}.{}").format(*map(sql.Identifier, t.split(".")))
        for t in USER_TABLES
    )
    query = sql.SQL("SELECT user_id::text, count(*) FROM ({}) AS u GROUP BY 1 ORDER BY 2 DESC")
    with sample_db.connect() as conn:
        owners = conn.execute(query.format(union)).fetchall()
    assert owners[0][0] == sample_db.info.heavy_user_id
    total = sum(n for _, n in owners)
    assert owners[0][1] / total > 0.2
    assert owners[0][1] > 1.5 * owners[1][1]


def test_row_ages_match_the_archival_and_purge_policies(sample_db: Database) -> None:
    with sample_db.connect() as conn:
        old_events = conn.execute(
            "SELECT avg((occurred_at < now() - interval '730 days')::int) FROM public.raw_events"
        ).fetchone()
        expired = conn.execute(
            "SELECT avg((expires_at < now())::int) FROM public.sessions"
        ).fetchone()
        jobs = conn.execute(
            "SELECT avg((status = 'completed')::int), "
            "avg((status = 'completed' AND updated_at < now() - interval '30 days')::int) "
            "FROM public.jobs"
        ).fetchone()
    assert old_events is not None and 0.28 < old_events[0] < 0.39
    assert expired is not None and 0.3 < expired[0] < 0.75
    assert jobs is not None and jobs[0] > 0.8 and jobs[1] > 0.6


def test_data_compresses_like_real_data_not_like_constants(sample_db: Database) -> None:
    with sample_db.connect() as conn:
        raw = bytearray()
        for name in TABLES:
            with conn.cursor().copy(f"COPY {name} TO STDOUT") as copy:
                for chunk in copy:
                    raw += chunk
    ratio = len(raw) / len(zstandard.ZstdCompressor(level=2).compress(bytes(raw)))
    assert 2.0 < ratio < 6.0, ratio


def test_loading_twice_into_one_database_is_a_clear_error(sample_db: Database) -> None:
    with pytest.raises(DatabaseError, match="empty database") as err:
        load_sample(sample_db.dsn, SCALE, password=sample_db.password)
    assert sample_db.password and sample_db.password not in str(err.value)
