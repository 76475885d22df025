"""Restore and verify benchmark (not a test): drtool restore vs pg_restore of the same plain
dump from a local file, at --jobs 1 and 2; verify --deep throughput vs reading the stored
object; and, against moto, one streamed GetObject vs parallel ranged GETs.

With `--jobs 2`: a parallel backup (`backup --jobs J`) restored with `restore --jobs J`
against `pg_restore -j J` of a local `pg_dump -Fd -Z0` directory (`--parallel-only`: just that).

Usage: python -m bench.restore_bench --scale 10 [--s3] [--jobs 2 [--parallel-only]]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench.backup_bench import drtool_backup, save_results, start_moto
from bench.sample_db import SUPABASE_ADMIN, supabase_sample
from drtool.config import StorageConfig
from drtool.crypto.keys import generate_identity, write_identity_file
from drtool.pg.cluster.ephemeral import EphemeralCluster
from drtool.pg.sample.supabase_layer import install_supabase_platform
from drtool.pg.tools.find import find_tool
from drtool.storage import open_storage

ROOT = Path(__file__).resolve().parents[1]


FRESH_PROJECT = "drtool restore into a fresh Supabase project"


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{argv[:6]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--s3", action="store_true", help="compare GET strategies on moto")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--jobs", default="", help="parallel-format jobs to measure, e.g. 2,4")
    parser.add_argument("--parallel-only", action="store_true", help="only the --jobs figures")
    args = parser.parse_args()
    jobs_list = [int(x) for x in args.jobs.split(",") if x]
    work = Path(tempfile.mkdtemp(prefix="drtool-rbench-"))
    password = secrets.token_urlsafe(12)
    rows: dict[str, list[float]] = {}
    facts: dict[str, Any] = {"scale": args.scale}

    def record(name: str, wall: float, note: str = "") -> None:
        rows.setdefault(name, []).append(wall)
        print(f"  {name:<44} {wall:7.2f}s {note}", flush=True)

    with EphemeralCluster(superuser=SUPABASE_ADMIN, password=password) as cluster:
        dsn, _ = supabase_sample(cluster, "omnicrm", args.scale)
        identity = generate_identity()
        key = work / "identity.txt"
        write_identity_file(key, identity)
        store = work / "store"
        doc = {
            "database": {"dsn": dsn},
            "storage": {"url": f"file://{store}"},
            "encryption": {
                "recipients": [identity.recipient().encode()],
                "identity_file": str(key),
            },
            "restore": {"spool_dir": str(work)},
        }
        cfg = work / "drtool.yaml"
        cfg.write_text(yaml.safe_dump(doc))
        env = {**os.environ, "PGPASSWORD": password}
        env.pop("DRTOOL_CONFIG", None)
        drtool = [sys.executable, "-m", "drtool", "-q", "--config", str(cfg)]
        manifest, dump = drtool_backup(drtool, env)
        facts["plain_bytes"] = dump["plain_size"]
        facts["stored_bytes"] = dump["size"]
        plain = work / "plain.pgdump"
        subprocess.run(
            [*drtool, "restore", manifest["id"], "--to-file", str(plain)], env=env, check=True
        )
        pg_restore = str(find_tool("pg_restore").path)
        stored_path = store / dump["key"]
        pg_dump = str(find_tool("pg_dump").path)
        parallel: dict[int, str] = {}
        for j in jobs_list:
            out = subprocess.run(
                [*drtool, "--json", "backup", "--jobs", str(j)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            parallel[j] = json.loads(out.stdout)["id"]
            directory = work / f"fd-{j}"
            subprocess.run(
                [pg_dump, "-Fd", f"-j{j}", "-Z0", "-f", str(directory), "-d", dsn],
                env=env,
                check=True,
            )
        for rep in range(args.repeat):
            for j in jobs_list:
                name = f"r{rep}p{j}"
                target = cluster.create_database(f"floorfd_{name}")
                argv = [pg_restore, "-j", str(j), "-d", target, str(work / f"fd-{j}")]
                record(f"floor-{j}: pg_restore -j {j} of a -Fd directory", timed(argv, env))
                cluster.drop_database(f"floorfd_{name}")
                target = cluster.create_database(f"par_{name}")
                argv = [*drtool, "restore", parallel[j], "--to", target, "--jobs", str(j)]
                record(f"drtool restore --jobs {j} (parallel format)", timed(argv, env))
                cluster.drop_database(f"par_{name}")
        for rep in range(0 if args.parallel_only else args.repeat):
            print(f"round {rep + 1}/{args.repeat}", flush=True)
            for jobs in (1, 2):
                name = f"r{rep}j{jobs}"
                target = cluster.create_database(f"floor_{name}")
                record(
                    f"floor: pg_restore -j {jobs} of the plain file",
                    timed([pg_restore, "-j", str(jobs), "-d", target, str(plain)], env),
                )
                cluster.drop_database(f"floor_{name}")
                if jobs == 1:
                    # drtool --jobs 1 restores in one transaction: the like-for-like floor.
                    target = cluster.create_database(f"floor1tx_{name}")
                    argv = [pg_restore, "--single-transaction", "-d", target, str(plain)]
                    record("floor: pg_restore --single-transaction", timed(argv, env))
                    cluster.drop_database(f"floor1tx_{name}")
                target = cluster.create_database(f"drtool_{name}")
                record(
                    f"drtool restore --jobs {jobs}",
                    timed(
                        [*drtool, "restore", manifest["id"], "--to", target, "--jobs", str(jobs)],
                        env,
                    ),
                )
                cluster.drop_database(f"drtool_{name}")
            # The disaster case: a new project of the platform, restored into as its
            # non-superuser postgres (fresh-project mode: filtered script through psql).
            project = f"project_r{rep}"
            install_supabase_platform(cluster.create_database(project), password)
            record(
                FRESH_PROJECT,
                timed(
                    [
                        *drtool,
                        "restore",
                        manifest["id"],
                        "--to",
                        cluster.dsn(project, user="postgres"),
                    ],
                    env,
                ),
            )
            cluster.drop_database(project)
            record(
                "floor: read the stored object (cat > /dev/null)",
                timed(["bash", "-c", f"cat {stored_path} > /dev/null"], env),
            )
            wall = timed([*drtool, "verify", manifest["id"], "--deep"], env)
            record(
                "drtool verify --deep",
                wall,
                f"{dump['plain_size'] / 1e6 / wall:.0f} MB/s plaintext",
            )
            wall = timed([*drtool, "verify", manifest["id"]], env)
            record("drtool verify (no key)", wall, f"{dump['size'] / 1e6 / wall:.0f} MB/s stored")
        if args.s3:
            moto, endpoint = start_moto()
            try:
                creds = {"access_key_id": "bench", "secret_access_key": "bench"}
                base = StorageConfig.model_validate(
                    {
                        "url": "s3://bench-get/x",
                        "endpoint_url": endpoint,
                        "region": "us-east-1",
                        **creds,
                    }
                )
                s3 = open_storage(base)
                import boto3

                boto3.client(
                    "s3",
                    endpoint_url=endpoint,
                    region_name="us-east-1",
                    aws_access_key_id="bench",
                    aws_secret_access_key="bench",
                ).create_bucket(Bucket="bench-get")
                with stored_path.open("rb") as fh:
                    s3.put("obj", iter(lambda: fh.read(1 << 20), b""))
                for conc, part in ((1, 16), (4, 16), (4, 64), (8, 8)):
                    cfg_s3 = base.model_copy(
                        update={"download_concurrency": conc, "download_part_size": part * 2**20}
                    )
                    storage = open_storage(cfg_s3)
                    started = time.perf_counter()
                    n = sum(len(c) for c in storage.get("obj"))
                    wall = time.perf_counter() - started
                    record(
                        f"moto GET concurrency {conc}, {part} MiB ranges",
                        wall,
                        f"{n / 1e6 / wall:.0f} MB/s",
                    )
            finally:
                moto.terminate()
                moto.wait()
    shutil.rmtree(work, ignore_errors=True)
    print("\nresults (median of rounds)")
    summary = {}
    for name, walls in rows.items():
        walls.sort()
        med = walls[len(walls) // 2]
        summary[name] = round(med, 2)
        print(f"  {name:<44} {med:7.2f}s")
    for j in jobs_list:
        ratio = (
            summary[f"drtool restore --jobs {j} (parallel format)"]
            / summary[f"floor-{j}: pg_restore -j {j} of a -Fd directory"]
        )
        print(f"  parallel restore --jobs {j}: x{ratio:.2f} pg_restore -j {j} of a directory")
        summary[f"ratio_parallel_jobs_{j}"] = round(ratio, 3)
    if args.parallel_only:
        save_results(
            args.out, f"restore-parallel-scale{args.scale:g}", {**facts, "results": summary}
        )
        return
    for jobs in (1, 2):
        ratio = (
            summary[f"drtool restore --jobs {jobs}"]
            / summary[f"floor: pg_restore -j {jobs} of the plain file"]
        )
        print(f"  restore --jobs {jobs}: x{ratio:.2f} the floor")
        summary[f"ratio_jobs_{jobs}"] = round(ratio, 3)
    fresh = summary[FRESH_PROJECT] / summary["floor: pg_restore --single-transaction"]
    print(f"  restore into a fresh project: x{fresh:.2f} the single-transaction floor")
    summary["ratio_fresh_project"] = round(fresh, 3)
    summary["verify_deep_plain_MBps"] = round(
        facts["plain_bytes"] / 1e6 / summary["drtool verify --deep"]
    )
    print(f"  verify --deep: {summary['verify_deep_plain_MBps']} MB/s of plaintext")
    save_results(args.out, f"restore-scale{args.scale:g}", {**facts, "results": summary})


if __name__ == "__main__":
    main()
