"""DR drill benchmark (not a test): `drtool rehearse` of the sample backup against the floor,
what an operator does by hand with the plain dump already on local disk: createdb on a running
cluster + `pg_restore` of the plain dump from a local file + `count(*)` of every table.
Target: the drill's RTO <= 1.3x the floor. Also measured, for a like-for-like view: the same
floor with `pg_restore --single-transaction` (how the drill restores).

Both sides use the same PostgreSQL settings (the ephemeral cluster's, plus the drill's
maintenance_work_mem). The drill also starts its own cluster, fetches and decrypts the
backup, checks it, and runs the configured check: all inside its RTO.

Usage: python -m bench.rehearse_bench [--scale 10] [--repeat 2]
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

import psycopg
import yaml
from psycopg import sql

from bench.backup_bench import drtool_backup, save_results
from bench.sample_db import SUPABASE_ADMIN, supabase_sample
from drtool.crypto.keys import generate_identity, write_identity_file
from drtool.pg.cluster.ephemeral import EphemeralCluster
from drtool.pg.sample.load import TABLES
from drtool.pg.tools.find import find_tool
from drtool.services.rehearse.scratch import DRILL_SETTINGS

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 1.3


def floor_run(
    cluster: EphemeralCluster, name: str, plain: Path, env: dict[str, str], single: bool = False
) -> float:
    """createdb + pg_restore of the local plain dump + count(*) of every table."""
    pg_restore = str(find_tool("pg_restore").path)
    started = time.perf_counter()
    dsn = cluster.create_database(name)
    one = ["--single-transaction"] if single else []
    done = subprocess.run(
        [pg_restore, "--exit-on-error", *one, "-d", dsn, str(plain)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"pg_restore failed ({done.returncode}): {done.stderr[-2000:]}")
    with psycopg.connect(dsn, password=cluster.password) as conn:
        for table in TABLES:
            schema, _, rel = table.partition(".")
            conn.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(schema, rel)))
    wall = time.perf_counter() - started
    cluster.drop_database(name)
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="drtool-drillbench-"))
    password = secrets.token_urlsafe(12)
    floors: list[float] = []
    single_floors: list[float] = []
    rtos: list[float] = []
    walls: list[float] = []
    stages: list[dict[str, float]] = []
    facts: dict[str, Any] = {"scale": args.scale, "cpus": os.cpu_count()}
    try:
        with EphemeralCluster(
            superuser=SUPABASE_ADMIN, password=password, settings=DRILL_SETTINGS
        ) as cluster:
            dsn, info = supabase_sample(cluster, "omnicrm", args.scale)
            facts["database_bytes"] = info.database_bytes
            identity = generate_identity()
            key = work / "identity.txt"
            write_identity_file(key, identity)
            doc = {
                "database": {"dsn": dsn},
                "storage": {"url": f"file://{work / 'store'}"},
                "encryption": {
                    "recipients": [identity.recipient().encode()],
                    "identity_file": str(key),
                },
                "objectives": {"rpo": "24h", "rto": "1h"},
                "rehearsal": {
                    "checks": [
                        {"name": "users present", "sql": "select count(*) > 0 from auth.users"}
                    ]
                },
            }
            cfg = work / "drtool.yaml"
            cfg.write_text(yaml.safe_dump(doc))
            env = {**os.environ, "PGPASSWORD": password}
            env.pop("DRTOOL_CONFIG", None)
            drtool = [sys.executable, "-m", "drtool", "-q", "--config", str(cfg)]
            manifest, dump = drtool_backup(drtool, env)
            facts.update(plain_bytes=dump["plain_size"], stored_bytes=dump["size"])
            plain = work / "plain.pgdump"
            subprocess.run(
                [*drtool, "restore", manifest["id"], "--to-file", str(plain)], env=env, check=True
            )
            for rep in range(args.repeat):
                floor = floor_run(cluster, f"floor_{rep}", plain, env)
                floors.append(floor)
                single = floor_run(cluster, f"floor1_{rep}", plain, env, single=True)
                single_floors.append(single)
                print(
                    f"  round {rep + 1}: floor {floor:7.2f}s "
                    f"(with --single-transaction {single:.2f}s)",
                    flush=True,
                )
                started = time.perf_counter()
                done = subprocess.run(
                    [*drtool, "--json", "rehearse", manifest["id"]],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=False,
                )
                wall = time.perf_counter() - started
                if done.returncode != 0:
                    raise SystemExit(f"rehearse failed ({done.returncode}): {done.stderr[-2000:]}")
                drill = json.loads(done.stdout)
                rtos.append(drill["rto_seconds"])
                walls.append(wall)
                stages.append(drill["stages"])
                parts = ", ".join(f"{k} {v:.1f}s" for k, v in drill["stages"].items())
                print(
                    f"  round {rep + 1}: rehearse RTO {drill['rto_seconds']:7.2f}s "
                    f"(wall {wall:.2f}s: {parts})",
                    flush=True,
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    floor, single, rto, wall = (
        sorted(v)[len(v) // 2] for v in (floors, single_floors, rtos, walls)
    )
    ratio = rto / floor
    summary = {
        "floor_seconds": round(floor, 2),
        "floor_single_transaction_seconds": round(single, 2),
        "ratio_rto_to_single_transaction_floor": round(rto / single, 3),
        "rehearse_rto_seconds": round(rto, 2),
        "rehearse_wall_seconds": round(wall, 2),
        "ratio_rto_to_floor": round(ratio, 3),
        "ratio_wall_to_floor": round(wall / floor, 3),
        "target_ratio": TARGET_RATIO,
        "stages": stages[rtos.index(rto)],
    }
    verdict = "meets" if ratio <= TARGET_RATIO else "MISSES"
    print(
        f"\nmedian of {args.repeat}: floor {floor:.2f}s, rehearse RTO {rto:.2f}s "
        f"(wall {wall:.2f}s): x{ratio:.2f} the floor, {verdict} the x{TARGET_RATIO} target; "
        f"x{rto / single:.2f} the --single-transaction floor ({single:.2f}s)"
    )
    save_results(args.out, f"rehearse-scale{args.scale:g}", {**facts, "results": summary})


if __name__ == "__main__":
    main()
