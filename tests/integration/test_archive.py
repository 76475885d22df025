"""Archival end to end through the CLI on a copy of the OmniCRM sample with the three SPEC
policies: dry runs count exactly and change nothing; a run deletes exactly the matching rows
and stores them; restore brings the table back to its original checksum; purges are recorded;
awkward types, composite keys and identity columns round-trip exactly."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from drtool.config import StorageConfig
from tests.fixtures.cli import Setup, make_setup
from tests.fixtures.pg import TEST_PASSWORD

POLICIES: list[dict[str, Any]] = [
    {
        "name": "old-raw-events",
        "table": "public.raw_events",
        "time_column": "occurred_at",
        "older_than": "730d",
        "action": "archive",
    },
    {
        "name": "finished-jobs",
        "table": "public.jobs",
        "time_column": "updated_at",
        "older_than": "30d",
        "where": {"status": ["completed"]},
        "action": "archive",
    },
    {
        "name": "expired-sessions",
        "table": "public.sessions",
        "time_column": "expires_at",
        "older_than": "0d",
        "action": "purge",
    },
]
CONDITIONS = {
    "old-raw-events": ("public.raw_events", "occurred_at < %s"),
    "finished-jobs": ("public.jobs", "updated_at < %s and status = 'completed'"),
    "expired-sessions": ("public.sessions", "expires_at < %s"),
}


def sample_copy(pg_cluster: Any) -> Iterator[str]:
    """A fresh database cloned from the session's sample (tests must not modify the sample)."""
    name = f"arch_{uuid.uuid4().hex[:10]}"
    with pg_cluster.connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE sample')
    try:
        yield name
    finally:
        pg_cluster.drop_database(name)


@pytest.fixture
def archive_db(pg_cluster: Any, sample_db: Any) -> Iterator[str]:
    yield from sample_copy(pg_cluster)


def connect(pg_cluster: Any, dbname: str) -> psycopg.Connection[Any]:
    conn: psycopg.Connection[Any] = pg_cluster.connect(dbname)
    return conn


def scalar(pg_cluster: Any, dbname: str, query: str, params: Any = None) -> Any:
    with connect(pg_cluster, dbname) as conn:
        row = conn.execute(query, params).fetchone()
        return row[0] if row else None


def checksum(
    pg_cluster: Any, dbname: str, table: str, where: str = "true", params: Any = None
) -> Any:
    """Order-independent content checksum of the rows of ``table`` matching ``where``."""
    query = (
        f"select count(*), coalesce(md5(string_agg(md5(t::text), '' order by md5(t::text))), '')"
        f" from {table} t where {where}"
    )
    with connect(pg_cluster, dbname) as conn:
        row = conn.execute(query, params).fetchone()
        assert row is not None
        return (row[0], row[1])


def archive_setup(
    directory: Path, pg_cluster: Any, dbname: str, storage: StorageConfig, **archival: Any
) -> Setup:
    setup = make_setup(directory, pg_cluster.dsn(dbname), TEST_PASSWORD, storage)
    # Restore targets get their password from PGPASSWORD, never from a DSN in argv.
    setup.env["PGPASSWORD"] = TEST_PASSWORD
    setup.doc["archival"] = {"policies": POLICIES, **archival}
    setup.write()
    return setup


@pytest.fixture
def setup(
    tmp_path: Path, pg_cluster: Any, archive_db: str, file_storage_config: StorageConfig
) -> Setup:
    return archive_setup(tmp_path / "cfg", pg_cluster, archive_db, file_storage_config)


def sql_count(pg_cluster: Any, dbname: str, policy: str, cutoff: str) -> int:
    table, cond = CONDITIONS[policy]
    return int(scalar(pg_cluster, dbname, f"select count(*) from {table} where {cond}", (cutoff,)))


def all_checksums(pg_cluster: Any, dbname: str) -> dict[str, Any]:
    return {name: checksum(pg_cluster, dbname, table) for name, (table, _c) in CONDITIONS.items()}


def test_dry_run_counts_equal_sql_counts_and_change_nothing(
    setup: Setup, pg_cluster: Any, archive_db: str
) -> None:
    before = all_checksums(pg_cluster, archive_db)
    doc = setup.run("archive", "run", "--dry-run", "--batch-size", "100", "--json").json
    assert doc["ok"] is True and doc["dry_run"] is True
    by_name = {p["name"]: p for p in doc["policies"]}
    assert set(by_name) == set(CONDITIONS)
    for name, p in by_name.items():
        assert p["matched"] == sql_count(pg_cluster, archive_db, name, p["cutoff"]) > 0
        assert p["batches"] == -(-p["matched"] // 100)
        assert (p["archived"], p["deleted"], p["bytes"], p["dry_run"]) == (0, 0, 0, True)
    assert all_checksums(pg_cluster, archive_db) == before
    assert setup.run("archive", "list", "--json").json["items"] == []
    storage = Path(setup.doc["storage"]["url"].removeprefix("file://"))
    assert not (storage / "archive").exists()


def test_run_deletes_exactly_the_matching_rows_and_restore_brings_them_back(
    setup: Setup, pg_cluster: Any, archive_db: str
) -> None:
    original = all_checksums(pg_cluster, archive_db)
    run = setup.run("archive", "run", "--batch-size", "97", "--json").json
    by_name = {p["name"]: p for p in run["policies"]}
    kept: dict[str, Any] = {}
    for name, p in by_name.items():
        table = CONDITIONS[name][0]
        assert p["deleted"] == p["matched"] > 0, p
        # Nothing matching is left; every other row is untouched (same checksum as before).
        assert sql_count(pg_cluster, archive_db, name, p["cutoff"]) == 0
        kept[name] = checksum(pg_cluster, archive_db, table)
        assert kept[name][0] == original[name][0] - p["matched"]
        if p["action"] == "archive":
            assert p["archived"] == p["matched"] and p["bytes"] > 0
            assert p["batches"] == -(-p["matched"] // 97)
        else:
            assert p["archived"] == 0 and p["record_id"]
    # The non-matching rows are exactly the original's non-matching rows.
    cutoff = by_name["old-raw-events"]["cutoff"]
    with connect(pg_cluster, "sample") as conn:
        row = conn.execute(
            "select count(*) from public.raw_events where not (occurred_at < %s)", (cutoff,)
        ).fetchone()
    assert row is not None and kept["old-raw-events"][0] == row[0]
    assert kept["old-raw-events"] == checksum(
        pg_cluster, "sample", "public.raw_events", "not (occurred_at < %s)", (cutoff,)
    )

    listed = setup.run("archive", "list", "--json").json["items"]
    batches = [i for i in listed if i["kind"] == "archive"]
    assert {i["status"] for i in batches} == {"archived"}
    assert (
        sum(i["rows"] for i in batches if i["policy"] == "old-raw-events")
        == by_name["old-raw-events"]["archived"]
    )
    purges = [i for i in listed if i["kind"] == "purge"]
    assert [(p["policy"], p["rows"]) for p in purges] == [
        ("expired-sessions", by_name["expired-sessions"]["deleted"])
    ]
    for item in batches:
        assert item["key"].startswith(f"archive/{item['policy']}/")
    assert {i["id"] for i in setup.run("list", "--kind", "archive", "--json").json["items"]} == {
        i["id"] for i in listed
    }
    human = setup.run("archive", "list", "--policy", "finished-jobs").stdout
    assert "finished-jobs" in human and "old-raw-events" not in human
    shown = setup.run("show", batches[0]["id"], "--json").json
    assert (shown["id"], shown["kind"], shown["policy"]) == (
        batches[0]["id"],
        "archive",
        batches[0]["policy"],
    )

    for name in ("old-raw-events", "finished-jobs"):
        dsn = pg_cluster.dsn(archive_db)
        doc = setup.run("archive", "restore", "--policy", name, "--to", dsn, "--json").json
        assert doc["inserted"] == by_name[name]["archived"] == doc["rows"]
        assert checksum(pg_cluster, archive_db, CONDITIONS[name][0]) == original[name]
    # Insert-missing: a second restore inserts nothing.
    again = setup.run(
        "archive",
        "restore",
        "--policy",
        "old-raw-events",
        "--to",
        pg_cluster.dsn(archive_db),
        "--json",
    ).json
    assert again["inserted"] == 0 and again["rows"] > 0


def test_restore_time_window_inserts_only_rows_in_range(
    setup: Setup, pg_cluster: Any, archive_db: str
) -> None:
    run = setup.run("archive", "run", "--policy", "old-raw-events", "--vacuum", "--json").json
    p = run["policies"][0]
    assert p["archived"] > 0 and p["vacuumed"] is True
    since, until = "2024-01-01", "2024-03-01T00:00:00Z"
    cutoff = p["cutoff"]
    expect = int(
        scalar(
            pg_cluster,
            "sample",
            "select count(*) from public.raw_events where occurred_at < %s"
            " and occurred_at >= '2024-01-01Z' and occurred_at < '2024-03-01Z'",
            (cutoff,),
        )
    )
    dsn = pg_cluster.dsn(archive_db)
    doc = setup.run(
        "archive",
        "restore",
        "--policy",
        "old-raw-events",
        "--since",
        since,
        "--until",
        until,
        "--to",
        dsn,
        "--json",
    ).json
    assert doc["inserted"] == expect
    assert doc["since"].startswith("2024-01-01T00:00:00")


def test_awkward_types_composite_keys_and_identity_columns_round_trip_exactly(
    tmp_path: Path, pg_cluster: Any, empty_db: Any, file_storage_config: StorageConfig
) -> None:
    with connect(pg_cluster, empty_db.name) as conn:
        conn.execute(
            """
            create schema "Odd Schema";
            create type mood as enum ('ok', 'done');
            create table "Odd Schema"."Ev""ents" (
              tenant int, seq int generated always as identity,
              at timestamp, state mood, body text, blob bytea, tags text[], doc jsonb,
              ratio double precision, span interval, amount numeric,
              doubled int generated always as (tenant * 2) stored,
              primary key (tenant, seq));
            insert into "Odd Schema"."Ev""ents"
                   (tenant, at, state, body, blob, tags, doc, ratio, span, amount)
            select g % 3, timestamp '2020-01-01' + g * interval '1 day',
                   case when g % 2 = 0 then 'done'::mood else 'ok'::mood end,
                   case when g % 5 = 0 then null else E'tab\\there\\nnew line \\\\ back' || g end,
                   decode(md5(g::text), 'hex'), array['a,b', null, 'q"uote'],
                   jsonb_build_object('k', g, 's', E'x\\ny'), 1.0 / 3 + g, g * interval '1 minute',
                   12345678901234567890.123456789 + g
            from generate_series(1, 60) g;
            """
        )
    table = '"Odd Schema"."Ev""ents"'
    before = checksum(pg_cluster, empty_db.name, table)
    setup = make_setup(tmp_path / "cfg", empty_db.dsn, TEST_PASSWORD, file_storage_config)
    setup.env["PGPASSWORD"] = TEST_PASSWORD
    setup.doc["archival"] = {
        "policies": [
            {
                "name": "odd",
                "table": 'Odd Schema.Ev"ents',
                "time_column": "at",
                "older_than": "1d",
                "where": {"state": ["done"], "tenant": [0, 1]},
            }
        ]
    }
    setup.write()
    matching = "state = 'done' and tenant in (0, 1)"
    n = int(scalar(pg_cluster, empty_db.name, f"select count(*) from {table} where {matching}"))
    doc = setup.run("archive", "run", "--batch-size", "7", "--json").json
    assert doc["policies"][0]["deleted"] == doc["policies"][0]["archived"] == n > 0
    assert scalar(pg_cluster, empty_db.name, f"select count(*) from {table} where {matching}") == 0
    setup.run("archive", "restore", "--policy", "odd", "--to", empty_db.dsn)
    assert checksum(pg_cluster, empty_db.name, table) == before
    # The identity sequence continues past the restored values.
    with connect(pg_cluster, empty_db.name) as conn:
        conn.execute(f"insert into {table} (tenant, at) values (9, now())")


def test_archive_restore_needs_the_identity_and_detects_tampering(
    setup: Setup, pg_cluster: Any, archive_db: str, tmp_path: Path
) -> None:
    setup.run("archive", "run", "--policy", "finished-jobs", "--batch-size", "500")
    dsn = pg_cluster.dsn(archive_db)
    no_key = setup.clone(tmp_path / "nokey")
    del no_key.doc["encryption"]["identity_file"]
    no_key.write()
    out = no_key.run("archive", "restore", "--policy", "finished-jobs", "--to", dsn, expect=2)
    assert "encryption.identity_file" in out.stderr
    storage = Path(setup.doc["storage"]["url"].removeprefix("file://"))
    obj = sorted(storage.glob("archive/finished-jobs/*/*/*/rows.copy.zst.age"))[0]
    data = bytearray(obj.read_bytes())
    data[-100] ^= 0x01
    obj.write_bytes(bytes(data))
    before = checksum(pg_cluster, archive_db, "public.jobs")
    out = setup.run("archive", "restore", "--policy", "finished-jobs", "--to", dsn, expect=3)
    assert "rows" in out.stderr
    assert checksum(pg_cluster, archive_db, "public.jobs") == before


def test_policy_problems_exit_2_naming_the_policy_key_and_change_nothing(
    setup: Setup, pg_cluster: Any, archive_db: str
) -> None:
    before = all_checksums(pg_cluster, archive_db)
    out = setup.run("archive", "run", "--policy", "nope", expect=2)
    assert "nope" in out.stderr and "old-raw-events" in out.stderr
    setup.doc["archival"]["policies"] = [
        *POLICIES,
        {"name": "bad", "table": "public.jobs", "time_column": "finished", "older_than": "1d"},
    ]
    setup.write()
    out = setup.run("archive", "run", expect=2)
    assert "archival.policies[3] (bad).time_column" in out.stderr
    with connect(pg_cluster, archive_db) as conn:
        conn.execute("create table public.nopk (at timestamptz)")
    setup.doc["archival"]["policies"] = [
        {"name": "nopk", "table": "nopk", "time_column": "at", "older_than": "1d"}
    ]
    setup.write()
    out = setup.run("archive", "run", "--json", expect=2)
    assert out.json["ok"] is False and "no primary key" in out.json["error"]["message"]
    assert all_checksums(pg_cluster, archive_db) == before


def test_cutoff_is_fixed_once_per_run(setup: Setup) -> None:
    doc = setup.run("archive", "run", "--dry-run", "--json").json
    cutoffs = {p["name"]: datetime.fromisoformat(p["cutoff"]) for p in doc["policies"]}
    assert (cutoffs["expired-sessions"] - cutoffs["finished-jobs"]).days == 30


def test_archive_round_trip_on_s3(
    tmp_path: Path, pg_cluster: Any, archive_db: str, s3_storage_config: StorageConfig
) -> None:
    setup = archive_setup(tmp_path / "cfg", pg_cluster, archive_db, s3_storage_config)
    original = checksum(pg_cluster, archive_db, "public.jobs")
    run = setup.run("archive", "run", "--policy", "finished-jobs", "--batch-size", "150")
    assert "rows archived" in run.stdout
    listed = setup.run("archive", "list", "--json").json["items"]
    assert listed and {i["status"] for i in listed} == {"archived"}
    assert checksum(pg_cluster, archive_db, "public.jobs")[0] == original[0] - sum(
        i["rows"] for i in listed
    )
    dsn = pg_cluster.dsn(archive_db)
    setup.run("archive", "restore", "--policy", "finished-jobs", "--to", dsn)
    assert checksum(pg_cluster, archive_db, "public.jobs") == original


def test_max_rows_max_duration_and_sleep_bound_a_run(
    setup: Setup, pg_cluster: Any, archive_db: str
) -> None:
    base = ("archive", "run", "--policy", "finished-jobs", "--json")
    p = setup.run(*base, "--max-rows", "30", "--batch-size", "20", "--sleep", "0.1s").json
    run = p["policies"][0]
    assert (run["deleted"], run["batches"], run["stopped"]) == (30, 2, "max_rows")
    p = setup.run(*base, "--max-duration", "0s").json
    run = p["policies"][0]
    assert (run["deleted"], run["batches"], run["stopped"]) == (0, 0, "max_duration")
    assert run["matched"] == sql_count(pg_cluster, archive_db, "finished-jobs", run["cutoff"]) > 0
