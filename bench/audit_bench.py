"""Audit write benchmark (not a test): milliseconds per audit record appended to the chain
(read the head, store the previous record if missing, compare-and-swap the head, store the
record), on a local directory and on moto S3; and per audited operation (`audited()` around
an empty body: the check before it, a GET and a conditional rewrite of the head, plus its one
record). Also: 4 concurrent writers, and `audit --verify` per record.
Usage: python -m bench.audit_bench [--records 200]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr

from bench.backup_bench import start_moto
from drtool.config import Config, StorageConfig
from drtool.services.audit.trail import audited, write_audit_record
from drtool.services.audit.view import verify_audit
from drtool.services.context import Context
from drtool.storage import Storage, open_storage


def context(storage: Storage) -> Context:
    return Context(Config(storage=StorageConfig()), storage, lambda: datetime.now(UTC))


def one(ctx: Context) -> float:
    started = time.perf_counter()
    write_audit_record(
        ctx,
        "restore",
        items=["backup:20261126T021500.123Z-7f3a"],
        target="app@db:5432/app",
        outcome="succeeded",
        exit_code=0,
    )
    return (time.perf_counter() - started) * 1000


def measure(name: str, storage: Storage, n: int) -> None:
    ctx = context(storage)
    one(ctx)  # the first append creates the head: not representative
    times = sorted(one(ctx) for _ in range(n))
    p95 = times[int(len(times) * 0.95) - 1]
    median = statistics.median(times)
    print(f"{name}: {median:.2f} ms/record median, p95 {p95:.2f} ms, n={n}")

    def operation() -> float:
        started = time.perf_counter()
        with audited(ctx, "restore", items=["backup:x"], target="app@db:5432/app"):
            pass
        return (time.perf_counter() - started) * 1000

    ops = sorted(operation() for _ in range(n))
    print(
        f"{name}: {statistics.median(ops):.2f} ms per audited operation median, "
        f"p95 {ops[int(len(ops) * 0.95) - 1]:.2f} ms, n={n}"
    )

    per_thread = max(n // 4, 1)
    started = time.perf_counter()
    threads = [
        threading.Thread(target=lambda: [one(ctx) for _ in range(per_thread)]) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = (time.perf_counter() - started) * 1000
    print(
        f"{name}: 4 concurrent writers: {wall / (4 * per_thread):.2f} ms/record "
        f"(wall / records, {4 * per_thread} records)"
    )

    started = time.perf_counter()
    result = verify_audit(context(storage))
    wall = (time.perf_counter() - started) * 1000
    assert result.ok, result.problems
    print(
        f"{name}: audit --verify: {wall / result.records:.2f} ms/record "
        f"({result.records} records, {wall:.0f} ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="drtool-audit-bench-") as work:
        measure("file://", open_storage(StorageConfig(url=Path(work).as_uri())), args.records)
    moto, endpoint = start_moto()
    try:
        import boto3

        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        ).create_bucket(Bucket="audit-bench")
        cfg = StorageConfig(
            url="s3://audit-bench/prefix",
            endpoint_url=endpoint,
            region="us-east-1",
            access_key_id=SecretStr("bench"),
            secret_access_key=SecretStr("bench"),
            addressing_style="path",
        )
        measure("moto s3", open_storage(cfg), args.records)
    finally:
        moto.terminate()
        moto.wait()


if __name__ == "__main__":
    main()
