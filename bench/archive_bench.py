"""Archive benchmark (not a test): `drtool archive run` on raw_events vs floors measured in the
same run on identical copies of the data: a plain batched DELETE of the same rows (keyset:
each batch after the last key, as drtool does; and the naive restart-from-the-top form), and a
plain COPY out of them. Reports rows/s, ratios, the longest delete transaction and peak RSS
(for a run of 10% of the rows and for the rest, to show memory does not grow with rows).

The sample (--scale 10 is about 1 GB) gets raw_events topped up so that about --old-rows rows
are older than two years. Usage: python -m bench.archive_bench --scale 10 --old-rows 1000000

A/B: --tree PATH (repeatable) runs `drtool archive run` from each source tree (put first on
PYTHONPATH) on its own fresh copy, --repeat rounds, the trees alternating within each round;
each round also re-measures the keyset DELETE floor, and medians are reported.
Usage: python -m bench.archive_bench --scale 1 --old-rows 1000000 --repeat 3
    --tree /path/before --tree /path/after
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import yaml

from bench.backup_bench import dir_size, run_timed, save_results
from bench.sample_db import SUPABASE_ADMIN, supabase_sample
from drtool.crypto.keys import generate_identity, write_identity_file
from drtool.pg.cluster.ephemeral import EphemeralCluster

ROOT = Path(__file__).resolve().parents[1]
OLD = "occurred_at < %s"
DEFAULT_BATCH = 5000


def top_up(conn: psycopg.Connection[Any], old_rows: int, cutoff: datetime) -> int:
    """Copy existing raw_events as new rows 2.1-3 years old until ~old_rows are older than the
    cutoff (same payload sizes as the sample's)."""
    row = conn.execute(
        f"select count(*), max(id) from raw_events where {OLD}", (cutoff,)
    ).fetchone()
    assert row is not None
    have, top = int(row[0]), int(row[1] or 0)
    total = int((conn.execute("select count(*) from raw_events").fetchone() or [0])[0])
    while have < old_rows:
        add = min(old_rows - have, total)
        conn.execute(
            "insert into raw_events (id, user_id, provider, event_type, external_id, payload,"
            " occurred_at, ingested_at)"
            " select %s + row_number() over (order by id), user_id, provider, event_type,"
            " external_id, payload, now() - interval '766 days' - random() * interval '329 days',"
            " ingested_at from raw_events order by id limit %s",
            (top, add),
        )
        have += add
        top += add
    conn.execute("select setval('raw_events_id_seq', (select max(id) from raw_events))")
    conn.execute("vacuum (analyze) raw_events")
    return have


def server_cpu(pid: int) -> float:
    """CPU seconds of the postmaster and its reaped children (every backend that exited)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def client_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def postmaster_pid(dsn: str, password: str) -> int:
    with psycopg.connect(dsn, password=password) as conn:
        row = conn.execute("select pg_backend_pid()").fetchone()
        assert row is not None
        return int(Path(f"/proc/{row[0]}/stat").read_text().rsplit(")", 1)[1].split()[1])


def settled_server_cpu(pid: int) -> float:
    time.sleep(0.5)  # let the postmaster reap the backends that just exited
    return server_cpu(pid)


def copy_floor(dsn: str, password: str, cutoff: datetime) -> tuple[float, int]:
    started = time.perf_counter()
    rows = 0
    with (
        psycopg.connect(dsn, password=password) as conn,
        conn.cursor() as cur,
        cur.copy(
            psycopg.sql.SQL(
                "COPY (SELECT * FROM raw_events WHERE occurred_at < {} ORDER BY id) TO STDOUT"
            ).format(psycopg.sql.Literal(cutoff))
        ) as copy,
    ):
        for data in copy:
            rows += bytes(data).count(b"\n")
    return time.perf_counter() - started, rows


def delete_floor(
    dsn: str, password: str, cutoff: datetime, keyset: bool
) -> tuple[float, int, float]:
    """Plain batched DELETE, one autocommit transaction per batch. The naive form (what a cron
    job usually does) restarts each batch at the first matching key, rescanning the rows it
    keeps; the keyset form continues after the last deleted key, as drtool does."""
    started = time.perf_counter()
    rows = 0
    last = 0
    longest = 0.0
    after = "and id > %s" if keyset else "and %s = %s"
    with psycopg.connect(dsn, password=password, autocommit=True) as conn:
        while True:
            t = time.perf_counter()
            row = conn.execute(
                "with d as (delete from raw_events where id in (select id from raw_events"
                f" where {OLD} {after} order by id limit {DEFAULT_BATCH}) returning id)"
                " select count(*), max(id) from d",
                (cutoff, last) if keyset else (cutoff, 0, 0),
            ).fetchone()
            longest = max(longest, time.perf_counter() - t)
            if row is None or not row[0]:
                break
            rows += int(row[0])
            last = int(row[1])
    return time.perf_counter() - started, rows, longest


def archive_runs(
    work: Path,
    dsn: str,
    identity: Any,
    level: int,
    old: int,
    env: dict[str, str],
    cwd: Path | None = None,
    postmaster: int | None = None,
) -> dict[str, Any]:
    """`drtool archive run` on 10% of the old rows, then on the rest (RSS of both); with the
    postmaster's pid, the server CPU they cost too."""
    server0 = settled_server_cpu(postmaster) if postmaster else 0.0
    client0 = client_cpu()
    store = work / f"store-{level}"
    cfg = work / f"drtool-{level}.yaml"
    doc = {
        "database": {"dsn": dsn},
        "storage": {"url": f"file://{store}"},
        "encryption": {"recipients": [identity.recipient().encode()]},
        "compression": {"level": level},
        "archival": {
            "policies": [
                {
                    "name": "old-raw-events",
                    "table": "public.raw_events",
                    "time_column": "occurred_at",
                    "older_than": "730d",
                }
            ]
        },
    }
    cfg.write_text(yaml.safe_dump(doc), encoding="utf-8")
    out = work / "out.json"
    base = [sys.executable, "-m", "drtool", "-q", "--json", "--config", str(cfg), "archive"]
    runs = []
    for label, extra in (("10% of the rows", ["--max-rows", str(old // 10)]), ("the rest", [])):
        with out.open("wb") as sink:
            wall, peak = run_timed([*base, "run", *extra], env, sink, cwd=cwd)
        p = json.loads(out.read_text())["policies"][0]
        runs.append(
            {
                "label": label,
                "rows": p["deleted"],
                "seconds": round(wall, 2),
                "rows_s": round(p["deleted"] / wall),
                "batches": p["batches"],
                "bytes": p["bytes"],
                "longest_txn_s": p["max_transaction_seconds"],
                "peak_rss_mib": round(peak / 1024),
            }
        )
        print(
            f"  drtool archive run zstd-{level} ({label}) {p['deleted']} rows {wall:7.2f}s "
            f"{p['deleted'] / wall:9.0f} rows/s  longest txn "
            f"{p['max_transaction_seconds']:.3f}s  rss {peak / 1024:.0f} MiB",
            flush=True,
        )
    server = settled_server_cpu(postmaster) - server0 if postmaster else None
    client = client_cpu() - client0
    rows = sum(r["rows"] for r in runs)
    wall = sum(r["seconds"] for r in runs)
    stored = dir_size(store)
    shutil.rmtree(store, ignore_errors=True)
    return {
        "rows": rows,
        "seconds": round(wall, 2),
        "rows_s": round(rows / wall),
        "stored_bytes": stored,
        "longest_txn_s": max(r["longest_txn_s"] for r in runs),
        "client_cpu_s": round(client, 2),
        "server_cpu_s": round(server, 2) if server is not None else None,
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=10.0, help="sample scale (10 ~ 1 GB)")
    parser.add_argument("--old-rows", type=int, default=1_000_000)
    parser.add_argument(
        "--levels",
        type=lambda text: [int(x) for x in text.split(",")],
        default=[2],
        help="zstd levels to run archive with, each on a fresh copy (default 2, the config's)",
    )
    parser.add_argument("--tree", type=Path, action="append", help="source tree (repeatable)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds (medians reported)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="drtool-abench-"))
    password = secrets.token_urlsafe(12)
    results: dict[str, Any] = {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') // 2**30} GiB",
        "scale": args.scale,
        "batch_size": DEFAULT_BATCH,
    }
    with EphemeralCluster(superuser=SUPABASE_ADMIN, password=password) as cluster:
        t = time.perf_counter()
        dsn, _ = supabase_sample(cluster, "omnicrm", args.scale)
        cutoff = datetime.now(UTC) - timedelta(days=730)
        with psycopg.connect(dsn, password=password, autocommit=True) as conn:
            old = top_up(conn, args.old_rows, cutoff)
            size = int((conn.execute("select pg_database_size('omnicrm')").fetchone() or [0])[0])
        results.update(load_seconds=round(time.perf_counter() - t, 1), database_bytes=size)
        print(
            f"sample: {size / 2**20:.0f} MiB, {old} raw_events rows older than two years",
            flush=True,
        )
        wall, rows = copy_floor(dsn, password, cutoff)
        results["copy_floor"] = {
            "rows": rows,
            "seconds": round(wall, 2),
            "rows_s": round(rows / wall),
        }
        print(
            f"  floor COPY out            {rows} rows {wall:7.2f}s  {rows / wall:9.0f} rows/s",
            flush=True,
        )

        postmaster = postmaster_pid(dsn, password)

        def measure_floor(name: str, keyset: bool) -> dict[str, Any]:
            with cluster.connect() as conn:
                conn.execute(f'create database "{name}" template "omnicrm"')
            server0 = settled_server_cpu(postmaster)
            wall, rows, longest = delete_floor(cluster.dsn(name), password, cutoff, keyset)
            server = settled_server_cpu(postmaster) - server0
            cluster.drop_database(name)
            print(
                f"  floor batched DELETE ({'keyset' if keyset else 'naive'}) {rows} rows "
                f"{wall:7.2f}s  {rows / wall:9.0f} rows/s  longest txn {longest:.3f}s  "
                f"server cpu {server:.2f}s",
                flush=True,
            )
            return {
                "rows": rows,
                "seconds": round(wall, 2),
                "rows_s": round(rows / wall),
                "longest_txn_s": round(longest, 3),
                "server_cpu_s": round(server, 2),
            }

        results["delete_floor_naive"] = measure_floor("delete_floor_naive", False)
        identity = generate_identity()
        write_identity_file(work / "id.txt", identity)
        base_env = {**os.environ, "PGPASSWORD": password}
        base_env.pop("DRTOOL_CONFIG", None)
        trees: list[Path | None] = list(args.tree) if args.tree else [None]
        floors: list[dict[str, Any]] = []
        runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for round_no in range(args.repeat):
            floors.append(measure_floor("delete_floor", True))
            for level in args.levels:
                for tree in trees:
                    env, cwd = dict(base_env), None
                    if tree is not None:
                        # cwd outside every tree: `python -m` puts it before PYTHONPATH.
                        env["PYTHONPATH"], cwd = str(tree.resolve()), work
                    label = str(tree) if tree is not None else "this tree"
                    name = f"archive_l{level}"
                    with cluster.connect() as conn:
                        conn.execute(f'create database "{name}" template "omnicrm"')
                    print(f"  round {round_no + 1}, {label}:", flush=True)
                    archive = archive_runs(
                        work, cluster.dsn(name), identity, level, old, env, cwd, postmaster
                    )
                    print(
                        f"    {archive['rows_s']} rows/s; cpu: client {archive['client_cpu_s']}s"
                        f", server {archive['server_cpu_s']}s",
                        flush=True,
                    )
                    cluster.drop_database(name)
                    runs.setdefault((label, level), []).append(archive)
        floor_rows_s = statistics.median(f["rows_s"] for f in floors)
        results["delete_floor"] = {**floors[-1], "rows_s": round(floor_rows_s)}
        results["delete_floor_rounds"] = floors
        for (label, level), archives in runs.items():
            rows_s = statistics.median(a["rows_s"] for a in archives)
            archive = {
                "tree": label,
                "rows_s_median": round(rows_s),
                "vs_delete_floor": round(rows_s / floor_rows_s, 3),
                "vs_copy_floor": round(rows_s / results["copy_floor"]["rows_s"], 3),
                "vs_naive_delete_floor": round(rows_s / results["delete_floor_naive"]["rows_s"], 3),
                "longest_txn_s": max(a["longest_txn_s"] for a in archives),
                "rounds": archives,
            }
            key = f"archive_run_zstd{level}" + (f" {label}" if args.tree else "")
            results[key] = archive
            print(
                f"archive run zstd-{level} ({label}): median {archive['rows_s_median']} rows/s = "
                f"x{archive['vs_delete_floor']} of the keyset DELETE floor (median "
                f"{floor_rows_s:.0f} rows/s; target >= 0.5), "
                f"x{archive['vs_naive_delete_floor']} of the naive one, "
                f"x{archive['vs_copy_floor']} of the COPY floor; longest transaction "
                f"{archive['longest_txn_s']}s (target <= 2 s); peak RSS "
                + " / ".join(
                    f"{r['peak_rss_mib']} MiB ({r['label']})" for r in archives[-1]["runs"]
                )
            )
    shutil.rmtree(work, ignore_errors=True)
    save_results(args.out, f"archive-scale{args.scale:g}", results)


if __name__ == "__main__":
    main()
