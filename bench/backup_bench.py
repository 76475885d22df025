"""Backup benchmark (not a test): drtool backup vs pg_dump floors on the sample database.

Prints wall-time ratios against `pg_dump -Fc -Z0 > /dev/null` measured in the same run, stored
sizes, and drtool's peak RSS. With `--jobs 2,4`: also `drtool backup --jobs J` (the parallel
format) against `pg_dump -Fd -j J -Z0` into a directory. Usage:
python -m bench.backup_bench --scale 10 [--s3] [--levels 1,2,3] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench.sample_db import SUPABASE_ADMIN, supabase_sample
from drtool.crypto.keys import generate_identity, write_identity_file
from drtool.pg.cluster.ephemeral import EphemeralCluster
from drtool.pg.tools.find import find_tool

ROOT = Path(__file__).resolve().parents[1]


def run_timed(
    argv: list[str],
    env: dict[str, str],
    stdout: Any = subprocess.DEVNULL,
    cwd: Path | None = None,
) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one child (wait4 gives that child's own rusage)."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=stdout, stderr=subprocess.PIPE, cwd=cwd)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:4]} failed ({proc.returncode}): {err[-2000:]}")
    # CPU of the client side (the process and the children it waited for, e.g. pg_dump);
    # the server backend's CPU is not included.
    print(f"    client cpu {usage.ru_utime + usage.ru_stime:.1f}s", flush=True)
    return wall, usage.ru_maxrss


def shell_timed(command: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(["bash", "-o", "pipefail", "-c", command], env=env, check=True)
    return time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    binary = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen(
        [str(binary), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, url
        except OSError:
            time.sleep(0.05)
    raise SystemExit("moto_server did not start")


def drtool_config(work: Path, dsn: str, storage: dict[str, Any], level: int) -> Path:
    identity = generate_identity()
    key = work / f"id-{secrets.token_hex(3)}.txt"
    write_identity_file(key, identity)
    doc = {
        "database": {"dsn": dsn},
        "storage": storage,
        "encryption": {"recipients": [identity.recipient().encode()]},
        "compression": {"level": level},
    }
    path = work / f"drtool-{secrets.token_hex(3)}.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def drtool_backup(drtool: list[str], env: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run `drtool --json backup`; its manifest and dump object entry, announced on stdout."""
    out = subprocess.run(
        [*drtool, "--json", "backup"], env=env, capture_output=True, text=True, check=True
    )
    manifest = json.loads(out.stdout)
    dump = next(o for o in manifest["objects"] if o["name"] == "dump")
    print(
        f"backup {manifest['id']}: {dump['plain_size'] / 2**20:.0f} MiB plain, "
        f"{dump['size'] / 2**20:.0f} MiB stored",
        flush=True,
    )
    return manifest, dump


def save_results(out_dir: Path, name: str, doc: dict[str, Any]) -> Path:
    """Write a benchmark's figures to ``out_dir/<name>.json`` (bench/results is gitignored)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{name}.json"
    target.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {target}", flush=True)
    return target


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=10.0, help="sample scale (10 is about 1 GB)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--s3", action="store_true", help="also back up to moto S3 (memory hungry)")
    parser.add_argument("--levels", default="2", help="zstd levels to measure, e.g. 1,2,3")
    parser.add_argument("--jobs", default="", help="parallel jobs to measure, e.g. 2,4")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument(
        "--skip-slow", action="store_true", help="skip pg_dump -Fc and gpg (large scales)"
    )
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    jobs = [int(x) for x in args.jobs.split(",") if x]
    work = Path(tempfile.mkdtemp(prefix="drtool-bench-"))
    password = secrets.token_urlsafe(12)
    results: dict[str, Any] = {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') // 2**30} GiB",
        "scale": args.scale,
    }
    with EphemeralCluster(superuser=SUPABASE_ADMIN, password=password) as cluster:
        t = time.perf_counter()
        dsn, info = supabase_sample(cluster, "omnicrm", args.scale)
        results["load_seconds"] = round(time.perf_counter() - t, 1)
        with cluster.connect(dbname="omnicrm") as conn:
            row = conn.execute("select pg_database_size('omnicrm')").fetchone()
            results["database_bytes"] = int(row[0]) if row else 0
        print(
            f"sample scale {args.scale}: {results['database_bytes'] / 2**20:.0f} MiB, "
            f"{info.rows} rows, loaded in {results['load_seconds']}s",
            flush=True,
        )
        pg_dump = str(find_tool("pg_dump").path)
        env = {**os.environ, "PGPASSWORD": password}
        env.pop("DRTOOL_CONFIG", None)
        plain_env = {k: v for k, v in env.items() if not k.startswith("DRTOOL_")}
        passfile = work / "gpg-pass"
        passfile.write_text(secrets.token_urlsafe(24))
        moto = None
        runs: dict[str, list[float]] = {}
        sizes: dict[str, int] = {}
        rss: dict[str, list[int]] = {}

        def record(
            name: str, wall: float, size: int | None = None, peak: int | None = None
        ) -> None:
            runs.setdefault(name, []).append(wall)
            if size is not None:
                sizes[name] = size
            if peak is not None:
                rss.setdefault(name, []).append(peak)
            print(
                f"  {name:<34} {wall:7.2f}s"
                + (f"  {size / 2**20:8.1f} MiB" if size else "")
                + (f"  rss {peak / 1024:.0f} MiB" if peak else ""),
                flush=True,
            )

        if args.s3:
            moto, endpoint = start_moto()
        try:
            for rep in range(args.repeat):
                print(f"round {rep + 1}/{args.repeat}", flush=True)
                with open(os.devnull, "wb") as devnull:
                    wall, _ = run_timed([pg_dump, "-Fc", "-Z0", "-d", dsn], plain_env, devnull)
                record("floor: pg_dump -Fc -Z0 > /dev/null", wall)
                if not args.skip_slow:
                    out = work / "pgdump.fc"
                    with out.open("wb") as sink:
                        wall, _ = run_timed([pg_dump, "-Fc", "-d", dsn], plain_env, sink)
                    record("pg_dump -Fc (default gzip)", wall, out.stat().st_size)
                    out.unlink()
                    gpg = work / "pgdump.fc.gpg"
                    wall = shell_timed(
                        f"{pg_dump} -Fc -d '{dsn}' | gpg --batch --yes --symmetric "
                        f"--pinentry-mode loopback --passphrase-file {passfile} -o {gpg}",
                        plain_env,
                    )
                    record("pg_dump -Fc | gpg --symmetric", wall, gpg.stat().st_size)
                    gpg.unlink()
                for level in levels:
                    store = work / f"store-{rep}-{level}"
                    cfg = drtool_config(work, dsn, {"url": f"file://{store}"}, level)
                    wall, peak = run_timed(
                        [sys.executable, "-m", "drtool", "-q", "--config", str(cfg), "backup"], env
                    )
                    record(f"drtool backup file:// zstd-{level}", wall, dir_size(store), peak)
                    shutil.rmtree(store)
                for j in jobs:
                    directory = work / f"fd-{j}"
                    wall, _ = run_timed(
                        [pg_dump, "-Fd", f"-j{j}", "-Z0", "-f", str(directory), "-d", dsn],
                        plain_env,
                    )
                    record(f"floor-{j}: pg_dump -Fd -j {j} -Z0", wall, dir_size(directory))
                    shutil.rmtree(directory)
                    store = work / f"store-{rep}-j{j}"
                    cfg = drtool_config(work, dsn, {"url": f"file://{store}"}, levels[0])
                    argv = [sys.executable, "-m", "drtool", "-q", "--config", str(cfg)]
                    wall, peak = run_timed([*argv, "backup", "--jobs", str(j)], env)
                    record(
                        f"drtool backup --jobs {j} zstd-{levels[0]}", wall, dir_size(store), peak
                    )
                    shutil.rmtree(store)
                if moto is not None:
                    import boto3

                    bucket = f"bench-{secrets.token_hex(4)}"
                    client = boto3.client(
                        "s3",
                        endpoint_url=endpoint,
                        region_name="us-east-1",
                        aws_access_key_id="bench",
                        aws_secret_access_key="bench",
                    )
                    client.create_bucket(Bucket=bucket)
                    cfg = drtool_config(
                        work,
                        dsn,
                        {
                            "url": f"s3://{bucket}/bench",
                            "endpoint_url": endpoint,
                            "region": "us-east-1",
                        },
                        levels[0],
                    )
                    s3env = {**env, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
                    wall, peak = run_timed(
                        [sys.executable, "-m", "drtool", "-q", "--config", str(cfg), "backup"],
                        s3env,
                    )
                    total = sum(
                        o["Size"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])
                    )
                    record(f"drtool backup moto s3 zstd-{levels[0]}", wall, total, peak)
                    for o in client.list_objects_v2(Bucket=bucket).get("Contents", []):
                        client.delete_object(Bucket=bucket, Key=o["Key"])
        finally:
            if moto is not None:
                moto.terminate()
                moto.wait()
    shutil.rmtree(work, ignore_errors=True)
    floor = statistics.median(runs["floor: pg_dump -Fc -Z0 > /dev/null"])
    default_runs = runs.get("pg_dump -Fc (default gzip)")
    default = statistics.median(default_runs) if default_runs else None
    table = []
    print("\nresults (median wall of each; ratio to the floor measured in this run)")
    for name, walls in runs.items():
        med = statistics.median(walls)
        row = {
            "name": name,
            "wall_s": round(med, 2),
            "ratio_to_floor": round(med / floor, 3),
            "stored_bytes": sizes.get(name),
            "peak_rss_mib": round(max(rss[name]) / 1024) if name in rss else None,
        }
        if sizes.get(name) and sizes.get("pg_dump -Fc (default gzip)"):
            row["size_vs_pg_dump_fc"] = round(sizes[name] / sizes["pg_dump -Fc (default gzip)"], 3)
        if default:
            row["speedup_vs_pg_dump_fc"] = round(default / med, 2)
        for j in jobs:
            fd = runs.get(f"floor-{j}: pg_dump -Fd -j {j} -Z0")
            if name.startswith(f"drtool backup --jobs {j} ") and fd:
                row["ratio_to_fd_floor"] = round(med / statistics.median(fd), 3)
                print(f"  (--jobs {j}: x{row['ratio_to_fd_floor']:.2f} of pg_dump -Fd -j {j} -Z0)")
        table.append(row)
        print(
            f"  {name:<34} {med:7.2f}s  x{med / floor:5.2f} floor  "
            + (
                f"size x{row.get('size_vs_pg_dump_fc', 0):.3f} of pg_dump -Fc  "
                if sizes.get(name)
                else ""
            )
            + (f"rss {row['peak_rss_mib']} MiB" if row["peak_rss_mib"] else "")
        )
    results["rows"] = table
    print()
    save_results(args.out, f"backup-scale{args.scale:g}", results)


if __name__ == "__main__":
    main()
