"""Replication benchmark (not a test): `drtool replicate` vs the plainest copy of the same
bytes, measured in the same run.

A database with incompressible rows is backed up once by drtool (about --mb MiB stored), then
replicated file -> file (floors: `cp -r`, `cp -r && sync`), file -> S3, S3 -> S3 on one
moto endpoint (server-side; floors: boto3 `copy`, `copy_object`), and S3 -> file (floors:
boto3 `download_file`, one `get_object` streamed to a file). Prints
throughput ratios (floor seconds / drtool seconds: 1.0 is as fast as the floor) and drtool's
peak RSS. Usage: python -m bench.replicate_bench --mb 1024 [--jobs 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
import yaml

from bench.backup_bench import run_timed, save_results, start_moto
from drtool.crypto.keys import generate_identity, parse_identity_file, write_identity_file
from drtool.pg.cluster.ephemeral import EphemeralCluster

ROOT = Path(__file__).resolve().parents[1]
DRTOOL = [sys.executable, "-m", "drtool"]
ROW_BYTES = 1024
CREDENTIALS = {"access_key_id": "bench", "secret_access_key": "bench"}


def random_table(cluster: EphemeralCluster, mb: int) -> str:
    """A database whose one table holds ~``mb`` MiB of random bytes (they neither compress
    nor dedupe, so the stored backup is about as large)."""
    dsn = cluster.create_database("replbench")
    rows = mb * 1024 * 1024 // ROW_BYTES
    hexes = ROW_BYTES // 16
    with cluster.connect(dbname="replbench") as conn:
        conn.execute("create table blobs (id int primary key, body bytea)")
        for start in range(0, rows, 100_000):
            conn.execute(
                "insert into blobs select g, decode((select string_agg(md5(random()::text"
                f" || s), '') from generate_series(1, {hexes}) s where g > 0), 'hex')"
                f" from generate_series({start + 1}, {min(start + 100_000, rows)}) g"
            )
    return dsn


def s3_location(endpoint: str, bucket: str) -> dict[str, Any]:
    return {
        "url": f"s3://{bucket}/prefix",
        "endpoint_url": endpoint,
        "region": "us-east-1",
        "addressing_style": "path",
        **CREDENTIALS,
    }


def write_config(
    work: Path, dsn: str, primary: dict[str, Any], replicas: list[dict[str, Any]]
) -> Path:
    key = work / "identity.txt"
    if not key.exists():
        write_identity_file(key, generate_identity())
    recipient = parse_identity_file(key)[0].recipient().encode()
    doc = {
        "database": {"dsn": dsn},
        "storage": {**primary, "replicas": replicas},
        "encryption": {"recipients": [recipient]},
        "compression": {"level": 1},
    }
    path = work / f"drtool-{secrets.token_hex(3)}.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def drtool(config: Path, *args: str, env: dict[str, str]) -> tuple[float, int]:
    return run_timed([*DRTOOL, "--config", str(config), *args], env)


def timed(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=1024, help="MiB of (incompressible) backups")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="drtool-replbench-"))
    password = secrets.token_urlsafe(12)
    results: dict[str, Any] = {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') // 2**30} GiB",
        "mb": args.mb,
        "jobs": args.jobs,
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRTOOL_", "AWS_"))}
    env["PGPASSWORD"] = password
    env["PYTHONPATH"] = str(ROOT)
    moto, endpoint = start_moto()
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )
    for bucket in ("primary", "replica", "floor"):
        client.create_bucket(Bucket=bucket)
    figures: dict[str, dict[str, Any]] = {}
    stored = 0

    def report(name: str, seconds: float, floors: dict[str, float], rss_kib: int) -> None:
        row: dict[str, Any] = {"seconds": round(seconds, 2), "peak_rss_mib": rss_kib // 1024}
        print(
            f"  {name:<24} {seconds:7.2f}s {stored / 2**20 / seconds:7.1f} MiB/s"
            f"  peak rss {rss_kib / 1024:4.0f} MiB",
            flush=True,
        )
        row["floors"] = {}
        for floor_name, floor in floors.items():
            ratio = floor / seconds
            row["floors"][floor_name] = {"seconds": round(floor, 2), "ratio": round(ratio, 2)}
            print(f"      floor {floor_name:<30} {floor:7.2f}s  ratio {ratio:5.2f}x", flush=True)
        figures[name] = row

    def shell(command: str) -> float:
        return timed(lambda: subprocess.run(["sh", "-c", command], check=True))

    try:
        with EphemeralCluster(password=password) as cluster:
            t = time.perf_counter()
            dsn = random_table(cluster, args.mb)
            print(f"loaded {args.mb} MiB of random rows in {time.perf_counter() - t:.0f}s")
            primary_dir = work / "primary"
            file_primary = {"url": primary_dir.as_uri()}
            cfg = write_config(work, dsn, file_primary, [])
            wall, _ = drtool(cfg, "backup", env=env)
            stored = sum(p.stat().st_size for p in (primary_dir / "backups").rglob("*"))
            results["stored_bytes"] = stored
            print(f"backup: {stored / 2**20:.0f} MiB stored in {wall:.0f}s", flush=True)

        jobs = ["--jobs", str(args.jobs)]
        # file -> file. Floors: `cp -r` of the same tree, and `cp -r && sync` (drtool fsyncs
        # every object: a replica is durable before its manifest is written). All read a warm
        # page cache, as a nightly run right after the backup would.
        subprocess.run(["sync"], check=True)
        cp = shell(f"cp -r {primary_dir} {work / 'cp1'}")
        subprocess.run(["sync"], check=True)
        cp_sync = shell(f"cp -r {primary_dir} {work / 'cp2'} && sync")
        cfg = write_config(work, dsn, file_primary, [{"name": "f", "url": (work / "r1").as_uri()}])
        wall, rss = drtool(cfg, "replicate", *jobs, env=env)
        report("file -> file", wall, {"cp -r": cp, "cp -r && sync": cp_sync}, rss)

        # file -> S3 (streamed): also fills the S3 primary for the next paths.
        cfg = write_config(
            work, dsn, file_primary, [{"name": "s", **s3_location(endpoint, "primary")}]
        )
        wall, rss = drtool(cfg, "replicate", *jobs, env=env)
        report("file -> S3 (streamed)", wall, {}, rss)
        keys = [
            o["Key"]
            for page in client.get_paginator("list_objects_v2").paginate(Bucket="primary")
            for o in page.get("Contents", [])
        ]

        # S3 -> S3 on one endpoint: server-side. Floors: boto3's managed copy (multipart
        # UploadPartCopy in 8 MiB parts) and one CopyObject per object.
        managed = timed(
            lambda: [client.copy({"Bucket": "primary", "Key": k}, "floor", k) for k in keys]
        )
        plain = timed(
            lambda: [
                client.copy_object(
                    Bucket="floor", Key=k, CopySource={"Bucket": "primary", "Key": k}
                )
                for k in keys
            ]
        )
        s3_primary = s3_location(endpoint, "primary")
        cfg = write_config(
            work, dsn, s3_primary, [{"name": "s", **s3_location(endpoint, "replica")}]
        )
        wall, rss = drtool(cfg, "replicate", *jobs, env=env)
        floors = {"boto3 copy (managed)": managed, "boto3 copy_object": plain}
        report("S3 -> S3 (server-side)", wall, floors, rss)

        # S3 -> file: streamed. Floors: boto3 download_file (ranged GETs on 10 threads), and
        # one GET per object streamed into a file.
        down = work / "down"

        def download(managed: bool) -> None:
            for k in keys:
                target = down / ("managed" if managed else "get") / k
                target.parent.mkdir(parents=True, exist_ok=True)
                if managed:
                    client.download_file("primary", k, str(target))
                    continue
                with target.open("wb") as sink:
                    body = client.get_object(Bucket="primary", Key=k)["Body"]
                    shutil.copyfileobj(body, sink, 1024 * 1024)

        managed = timed(lambda: download(True))
        plain = timed(lambda: download(False))
        cfg = write_config(work, dsn, s3_primary, [{"name": "f", "url": (work / "r2").as_uri()}])
        wall, rss = drtool(cfg, "replicate", *jobs, env=env)
        floors = {"boto3 download_file": managed, "boto3 get_object -> file": plain}
        report("S3 -> file (streamed)", wall, floors, rss)
        results["paths"] = figures
        save_results(args.out, "replicate", results)
    finally:
        moto.terminate()
        moto.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
