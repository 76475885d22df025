"""Per-user export benchmark (not a test) on the sample database.

1. `drtool export-user HEAVY` vs the floor measured in the same run: psql running
   `COPY (SELECT ... WHERE user_id = ...) TO STDOUT` of every user-scoped table to /dev/null.
2. `drtool export-users --all`: users per second and peak RSS, at two database sizes (the full
   scale and a tenth of it) to show that memory does not grow with the number of users.

Usage: python -m bench.export_bench --scale 10
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.backup_bench import drtool_config, run_timed, save_results
from bench.sample_db import SUPABASE_ADMIN, supabase_sample
from drtool.pg.cluster.ephemeral import EphemeralCluster
from drtool.pg.sample.load import TABLES
from drtool.pg.tools.find import find_tool

ROOT = Path(__file__).resolve().parents[1]
DRTOOL = [sys.executable, "-m", "drtool"]


def floor_script(user_id: str) -> str:
    lines = []
    for table in TABLES:
        column = "id" if table == "auth.users" else "user_id"
        lines.append(f"\\copy (select * from {table} where {column} = '{user_id}') to '/dev/null'")
    return "\n".join(lines) + "\n"


def best_of(n: int, fn: Any) -> tuple[float, int]:
    runs = [fn() for _ in range(n)]
    return min(r[0] for r in runs), max(r[1] for r in runs)


def export_users(config: Path, env: dict[str, str]) -> dict[str, Any]:
    wall, rss = run_timed([*DRTOOL, "--config", str(config), "-q", "export-users", "--all"], env)
    return {"seconds": round(wall, 2), "peak_rss_mib": round(rss / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=10.0, help="sample scale (10 is about 1 GB)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="drtool-export-bench-"))
    password = secrets.token_urlsafe(12)
    results: dict[str, Any] = {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores",
        "scale": args.scale,
    }
    env = {**os.environ, "PGPASSWORD": password, "DRTOOL_DATABASE__PASSWORD": password}
    psql = find_tool("psql").path
    with EphemeralCluster(superuser=SUPABASE_ADMIN, password=password) as cluster:
        sizes = {"full": args.scale, "tenth": args.scale / 10}
        infos = {}
        for name, scale in sizes.items():
            t = time.perf_counter()
            infos[name] = supabase_sample(cluster, name, scale)
            print(f"loaded {name} (scale {scale}) in {time.perf_counter() - t:.0f}s", flush=True)
        dsn, info = infos["full"]
        heavy = info.heavy_user_id
        script = work / "floor.sql"
        script.write_text(floor_script(heavy), encoding="utf-8")
        storage = {"url": (work / "storage").as_uri()}
        config = drtool_config(work, dsn, storage, 2)
        floor, _ = best_of(
            args.repeat,
            lambda: run_timed(
                [str(psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-f", str(script)], env
            ),
        )
        one, one_rss = best_of(
            args.repeat,
            lambda: run_timed([*DRTOOL, "--config", str(config), "-q", "export-user", heavy], env),
        )
        out = subprocess.run(
            [*DRTOOL, "--config", str(config), "--json", "export-user", heavy],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        doc = json.loads(out.stdout)
        rows = sum(doc["tables"].values())
        # The export's own time (snapshot to manifest), without the interpreter's start-up.
        own = doc["seconds"]
        results["heavy_user"] = {
            "rows": rows,
            "plain_bytes": doc["manifest"]["objects"][0]["plain_size"],
            "floor_seconds": round(floor, 3),
            "export_seconds": round(one, 3),
            "ratio": round(one / floor, 2),
            "export_in_process_seconds": own,
            "ratio_in_process": round(own / floor, 2),
            "peak_rss_mib": round(one_rss / 1024, 1),
        }
        print(
            f"heavy user {rows} rows: floor {floor:.2f}s, export-user {one:.2f}s "
            f"({one / floor:.2f}x; in process {own:.2f}s, {own / floor:.2f}x)",
            flush=True,
        )
        for name in ("tenth", "full"):
            dsn, info = infos[name]
            config = drtool_config(work, dsn, {"url": (work / f"s-{name}").as_uri()}, 2)
            run = export_users(config, env)
            run["users"] = info.users
            run["users_per_second"] = round(info.users / run["seconds"], 1)
            results[f"export_users_{name}"] = run
            print(
                f"export-users --all, {info.users} users: {run['seconds']}s "
                f"({run['users_per_second']} users/s), peak RSS {run['peak_rss_mib']} MiB",
                flush=True,
            )
    print(json.dumps(results, indent=2))
    save_results(args.out, f"export-scale{args.scale:g}", results)


if __name__ == "__main__":
    main()
