"""Bundle benchmark (not a test): the configuration & secrets bundle's cost on a backup, with
a 1 MB file and 10 variables (the issue's budget: under 1 s), and on `status` (drift check).

Backups with and without the bundle run alternately in the same run against the same sample
database. Usage: python -m bench.bundle_bench [--scale 0.05] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench.backup_bench import ROOT, save_results
from bench.sample_db import SUPABASE_ADMIN, supabase_sample
from drtool.crypto.keys import generate_identity, write_identity_file
from drtool.pg.cluster.ephemeral import EphemeralCluster

VARIABLES = 10
FILE_BYTES = 1_000_000


def config(work: Path, dsn: str, bundle: dict[str, Any] | None) -> Path:
    identity = generate_identity()
    key = work / f"id-{secrets.token_hex(3)}.txt"
    write_identity_file(key, identity)
    doc: dict[str, Any] = {
        "database": {"dsn": dsn},
        "storage": {"url": f"file://{work / ('store-' + secrets.token_hex(3))}"},
        "encryption": {"recipients": [identity.recipient().encode()]},
    }
    if bundle is not None:
        doc["bundle"] = bundle
    path = work / f"drtool-{secrets.token_hex(3)}.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def timed(argv: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,)) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode not in ok:
        raise SystemExit(f"{argv[-2:]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return wall, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=0.05, help="sample scale (10 is ~1 GB)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="drtool-bundle-bench-"))
    password = secrets.token_urlsafe(12)
    app_file = work / "app.env"
    app_file.write_bytes(os.urandom(FILE_BYTES))
    names = [f"BENCH_SECRET_{i}" for i in range(VARIABLES)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRTOOL_")}
    env.update({name: secrets.token_urlsafe(32) for name in names})
    env["PGPASSWORD"] = password
    results: dict[str, Any] = {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores",
        "scale": args.scale,
        "bundle": f"1 file of {FILE_BYTES} bytes, {VARIABLES} variables",
    }
    walls: dict[str, list[float]] = {}
    stage: list[float] = []
    with EphemeralCluster(superuser=SUPABASE_ADMIN, password=password) as cluster:
        dsn, _info = supabase_sample(cluster, "omnicrm", args.scale)
        plain = config(work, dsn, None)
        bundled = config(work, dsn, {"files": [str(app_file)], "env": names})
        drtool = [sys.executable, "-m", "drtool", "-q", "--json", "--config"]
        for rep in range(args.repeat):
            for name, cfg in (("backup", plain), ("backup + bundle", bundled)):
                wall, out = timed([*drtool, str(cfg), "backup"], env)
                walls.setdefault(name, []).append(wall)
                if cfg == bundled:
                    stage.append(json.loads(out)["timings"]["bundle"])
                print(f"  round {rep + 1} {name:<18} {wall:6.2f}s", flush=True)
            for name, cfg in (("status", plain), ("status + drift", bundled)):
                wall, _ = timed([*drtool, str(cfg), "status"], env, ok=(0, 4))
                walls.setdefault(name, []).append(wall)
    shutil.rmtree(work, ignore_errors=True)
    med = {name: statistics.median(w) for name, w in walls.items()}
    rows = {
        **{name: round(value, 3) for name, value in med.items()},
        "bundle cost (backup wall difference)": round(med["backup + bundle"] - med["backup"], 3),
        "bundle stage (manifest timings.bundle)": round(statistics.median(stage), 3),
        "drift check cost (status wall difference)": round(
            med["status + drift"] - med["status"], 3
        ),
    }
    print("\nresults (median of each, seconds)")
    for name, value in rows.items():
        print(f"  {name:<44} {value:7.3f}")
    results["rows"] = rows
    save_results(args.out, "bundle", results)


if __name__ == "__main__":
    main()
