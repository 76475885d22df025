"""Continuous archiving benchmark (not a test): `drtool stream run` under a steady write load.

One run on one sample database measures: the load generator's achieved rate; with the stream
running, the change rate captured and stored, the slot's pending WAL at the end and the RPO
(now - stored_through_at of the state record, sampled every 0.5 s); the server's CPU per 1000
rows without and with the stream (utime+stime of the postmaster and its children, exited ones
through the postmaster's cutime/cstime) and drtool's own CPU; `restore latest --until` replay
rate against a floor (the load's own statements through psql onto the same base backup); and
the capture alternatives on one backlog: the SQL interface drtool uses
(`pg_logical_slot_peek_binary_changes` through a server-side cursor) vs `pg_recvlogical`
(streaming replication protocol) on a copy of the slot, and drtool's whole capture path.

Usage: python -m bench.stream_bench --scale 2 --seconds 60 [--rate 5000] [--flush 10]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import json
import os
import platform
import pstats
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import psycopg
import yaml

from bench.backup_bench import save_results
from bench.sample_db import SUPABASE_ADMIN, supabase_sample
from drtool.crypto.keys import generate_identity, write_identity_file
from drtool.pg.cluster.ephemeral import EphemeralCluster
from drtool.pg.sample.supabase_layer import install_supabase_platform
from drtool.pg.stream.slot import insert_only_publication, peek_changes
from drtool.pg.tools.find import find_tool

ROOT = Path(__file__).resolve().parents[1]
SLOT = "drtool"
PUBLICATIONS = [SLOT, insert_only_publication(SLOT)]
# As on the platform: logical decoding on (tests/fixtures/stream.py LOGICAL).
LOGICAL = {
    "wal_level": "logical",
    "max_replication_slots": "10",
    "max_wal_senders": "10",
    "synchronous_commit": "on",
}
TICK = os.sysconf("SC_CLK_TCK")
PAYLOAD_PAD = "x" * 160
WHY_SQL_INTERFACE = (
    "drtool reads through the SQL interface anyway: the slot must move only once a segment is "
    "durably in storage (pg_replication_slot_advance after the upload), whereas pg_recvlogical "
    "confirms the flush position on its own local file writes, not on our storage, and writes "
    "the binary pgoutput messages back to back without framing (no LSN/xid per message, no "
    "length), so its output cannot be split into transactions or resumed exactly; and psycopg 3 "
    "cannot speak the replication protocol (psycopg issue #71), so a native stream would mean "
    "another driver or a C helper. The SQL interface also needs no replication entry in "
    "pg_hba.conf, which managed services do not always offer."
)


# -- the write load ----------------------------------------------------------------------------


class WorkerState:
    """One load thread's rows: jobs ids it updates (its residue class) and raw_events ids it
    may delete (its share of the loaded rows, then the ones it inserted), oldest first."""

    def __init__(self, deletable: list[int], job_ids: list[int]) -> None:
        self.deletable: collections.deque[int] = collections.deque(deletable)
        self.job_ids = job_ids or [0]
        self.job_at = 0
        self.seq = 0


class Load:
    """pgbench-like transactions over the sample (as the application role ``postgres``): each
    inserts ``inserts`` raw_events, updates ``updates`` jobs and deletes ``deletes`` raw_events
    by primary key. Transactions of different threads touch disjoint rows, so the recorded
    SQL replays to the same result in any commit order."""

    def __init__(self, dsn: str, password: str, threads: int, tx_rows: int) -> None:
        self.dsn = dsn
        self.password = password
        self.threads = threads
        self.inserts = max(1, tx_rows // 2)
        self.updates = max(1, tx_rows // 4)
        self.deletes = max(1, tx_rows - self.inserts - self.updates)
        with self._connect() as conn:
            ev = [int(r[0]) for r in conn.execute("select id from public.raw_events order by id")]
            jobs = [int(r[0]) for r in conn.execute("select id from public.jobs order by id")]
            self.users = [
                str(r[0])
                for r in conn.execute("select distinct user_id from public.raw_events limit 64")
            ]
        self.states = [
            WorkerState(ev[k :: self.threads], jobs[k :: self.threads]) for k in range(threads)
        ]
        self.lock = threading.Lock()

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn, password=self.password, autocommit=True)

    def _transaction(
        self, conn: psycopg.Connection[Any], st: WorkerState, k: int
    ) -> tuple[int, str]:
        """Run one transaction; its row count and its statements as replayable SQL."""
        values = []
        for _ in range(self.inserts):
            st.seq += 1
            user = self.users[(st.seq + k) % len(self.users)]
            values.append(
                f"('{user}', 'gmail', 'message.received', 'bench-{k}-{st.seq}', "
                f'\'{{"bench": true, "n": {st.seq}, "body": "{PAYLOAD_PAD}"}}\', now())'
            )
        cols = "user_id, provider, event_type, external_id, payload, occurred_at"
        jobs = []
        for _ in range(self.updates):
            jobs.append(st.job_ids[st.job_at % len(st.job_ids)])
            st.job_at += 1
        gone = [st.deletable.popleft() for _ in range(min(self.deletes, len(st.deletable)))]
        update = (
            "update public.jobs set attempts = attempts + 1, updated_at = now(), "
            f"last_error = 'bench {k}-{st.seq}' where id in ({', '.join(map(str, jobs))})"
        )
        delete = f"delete from public.raw_events where id in ({', '.join(map(str, gone))})"
        rows = 0
        with conn.transaction():
            cur = conn.execute(
                f"insert into public.raw_events ({cols}) values {', '.join(values)} returning id"
            )
            ids = [int(r[0]) for r in cur.fetchall()]
            rows += len(ids)
            rows += conn.execute(update).rowcount
            if gone:
                rows += conn.execute(delete).rowcount
        st.deletable.extend(ids)
        # The floor replays the same rows: the inserts with the ids they were given.
        recorded = [
            f"insert into public.raw_events (id, {cols}) values "
            + ", ".join(f"({i}, {v[1:]}" for i, v in zip(ids, values, strict=True)),
            update,
            *([delete] if gone else []),
        ]
        return rows, "BEGIN;\n" + ";\n".join(recorded) + ";\nCOMMIT;\n"

    def run(
        self,
        seconds: float | None,
        rate: float | None,
        sql_out: TextIO | None = None,
        max_rows: int | None = None,
    ) -> dict[str, float]:
        """Run the load for ``seconds`` (or until ``max_rows``) at ``rate`` rows/s (None: as
        fast as it goes); achieved rows/s and transactions."""
        stop = threading.Event()
        done = {"rows": 0, "tx": 0}
        errors: list[BaseException] = []
        per_tx = self.inserts + self.updates + self.deletes
        interval = self.threads * per_tx / rate if rate else 0.0
        started = time.monotonic()

        def worker(k: int) -> None:
            st = self.states[k]
            try:
                with self._connect() as conn:
                    n = 0
                    while not stop.is_set():
                        if interval:
                            due = started + n * interval
                            ahead = due - time.monotonic()
                            if ahead > 0:
                                time.sleep(ahead)
                        rows, text = self._transaction(conn, st, k)
                        n += 1
                        with self.lock:
                            done["rows"] += rows
                            done["tx"] += 1
                            if sql_out is not None:
                                sql_out.write(text)
                            if max_rows is not None and done["rows"] >= max_rows:
                                stop.set()
            except BaseException as exc:
                errors.append(exc)
                stop.set()

        workers = [
            threading.Thread(target=worker, args=(k,), daemon=True) for k in range(self.threads)
        ]
        for t in workers:
            t.start()
        try:
            stop.wait(seconds)
        finally:
            stop.set()
            for t in workers:
                t.join()
        wall = time.monotonic() - started
        if errors:
            raise SystemExit(f"load failed: {errors[0]!r}")
        return {
            "seconds": round(wall, 2),
            "rows": done["rows"],
            "transactions": done["tx"],
            "rows_per_s": round(done["rows"] / wall, 1),
        }


# -- CPU ---------------------------------------------------------------------------------------


def _stat(pid: int | str) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # fields from 3 (state) on


def server_cpu_ticks(data_dir: Path) -> int:
    """utime+stime of the postmaster and its live children, plus what its exited children
    used (the postmaster's cutime+cstime: it reaps every backend)."""
    postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(entry.name)
        if fields is None:
            continue
        pid, ppid = int(entry.name), int(fields[1])
        if pid == postmaster:
            total += sum(int(x) for x in fields[11:15])
        elif ppid == postmaster:
            total += int(fields[11]) + int(fields[12])
    return total


def process_cpu_ticks(pid: int) -> int:
    """A process's utime+stime (all its threads) and its reaped children's."""
    fields = _stat(pid)
    return sum(int(x) for x in fields[11:15]) if fields else 0


# -- the stream --------------------------------------------------------------------------------


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return None


def stored_through(state_path: Path) -> datetime | None:
    doc = read_json(state_path)
    value = doc.get("stored_through_at") if doc else None
    return datetime.fromisoformat(value) if value else None


def segments(store: Path) -> list[dict[str, Any]]:
    found = [read_json(p) for p in (store / "streams" / SLOT / "segments").glob("*/manifest.json")]
    return sorted((m for m in found if m), key=lambda m: (m["generation"], m["sequence"]))


def base_backups(store: Path) -> list[str]:
    return sorted(p.parent.name for p in (store / "backups").glob("*/manifest.json"))


def slot_pending_bytes(cluster: EphemeralCluster) -> dict[str, int]:
    with cluster.connect(dbname="omnicrm") as conn:
        row = conn.execute(
            "select pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint,"
            "       pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint"
            "  from pg_replication_slots where slot_name = %s",
            (SLOT,),
        ).fetchone()
    return {"pending_bytes": int(row[0]), "retained_bytes": int(row[1])} if row else {}


class RpoSampler(threading.Thread):
    """now - stored_through_at every 0.5 s, from the state record in the storage directory."""

    def __init__(self, state_path: Path) -> None:
        super().__init__(daemon=True)
        self.state_path = state_path
        self.samples: list[float] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(0.5):
            at = stored_through(self.state_path)
            if at is not None:
                self.samples.append((datetime.now(UTC) - at).total_seconds())


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@contextlib.contextmanager
def stream_process(
    argv: list[str], env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """`drtool stream run` in the background; SIGTERM (its final flush) on the way out."""
    with log.open("wb") as sink:
        proc = subprocess.Popen(argv, env=env, stdout=sink, stderr=sink)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=180)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def stop_stream(proc: subprocess.Popen[bytes]) -> float:
    """SIGTERM and reap; drtool's total CPU seconds (its own and its children's, e.g. pg_dump)."""
    proc.send_signal(signal.SIGTERM)
    killer = threading.Timer(180, proc.kill)
    killer.start()
    try:
        _pid, status, usage = os.wait4(proc.pid, 0)
    finally:
        killer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{argv[:8]} failed ({done.returncode}): {done.stderr[-3000:]}")
    return wall, done.stdout


def profile_top(path: Path, lines: int = 22) -> str:
    out = io.StringIO()
    pstats.Stats(str(path), stream=out).strip_dirs().sort_stats("tottime").print_stats(lines)
    return out.getvalue()


def machine() -> str:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**30
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{platform.node()} {platform.machine()} {model} {os.cpu_count()} cores, {mem} GiB, "
        f"load average at start {load}"
    )


# -- main --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=0.2, help="sample scale (10 ≈ 1 GB)")
    parser.add_argument("--rate", type=float, default=5000, help="target load, rows/s")
    parser.add_argument("--seconds", type=float, default=60, help="each load window")
    parser.add_argument("--flush", type=int, default=10, help="stream.flush_interval, seconds")
    parser.add_argument("--threads", type=int, default=4, help="load generator threads")
    parser.add_argument("--tx-rows", type=int, default=20, help="rows per load transaction")
    parser.add_argument(
        "--backlog", type=int, default=100_000, help="changes for the capture comparison"
    )
    parser.add_argument("--profile", type=Path, help="also profile the capture and the replay here")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="drtool-sbench-"))
    os.chmod(work, 0o755)  # psql and the cluster's account read changes.sql
    password = secrets.token_urlsafe(12)
    results: dict[str, Any] = {
        "machine": machine(),
        "command": "python -m bench.stream_bench " + " ".join(sys.argv[1:]),
        "scale": args.scale,
        "target_rate_rows_per_s": args.rate,
        "window_seconds": args.seconds,
        "flush_interval_s": args.flush,
    }
    try:
        with EphemeralCluster(
            superuser=SUPABASE_ADMIN, password=password, settings=LOGICAL
        ) as cluster:
            run(cluster, args, work, password, results)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(json.dumps(results, indent=2))
    save_results(args.out, f"stream-scale{args.scale:g}", results)


def run(
    cluster: EphemeralCluster,
    args: argparse.Namespace,
    work: Path,
    password: str,
    results: dict[str, Any],
) -> None:
    t = time.perf_counter()
    dsn, info = supabase_sample(cluster, "omnicrm", args.scale)
    with cluster.connect(dbname="omnicrm") as conn:
        row = conn.execute("select pg_database_size('omnicrm')").fetchone()
    results["database_bytes"] = int(row[0]) if row else 0
    print(
        f"sample scale {args.scale}: {results['database_bytes'] / 2**20:.0f} MiB, "
        f"{info.rows} rows, "
        f"loaded in {time.perf_counter() - t:.0f}s",
        flush=True,
    )
    identity = generate_identity()
    key = work / "identity.txt"
    write_identity_file(key, identity)
    store = work / "store"
    doc = {
        "database": {"dsn": dsn},
        "storage": {"url": f"file://{store}"},
        "encryption": {"recipients": [identity.recipient().encode()], "identity_file": str(key)},
        "restore": {"spool_dir": str(work)},
        "stream": {"enabled": True, "flush_interval": f"{args.flush}s"},
    }
    cfg = work / "drtool.yaml"
    cfg.write_text(yaml.safe_dump(doc))
    env = {**os.environ, "PGPASSWORD": password}
    env.pop("DRTOOL_CONFIG", None)
    drtool = [sys.executable, "-m", "drtool", "-q", "--config", str(cfg)]
    state_path = store / "streams" / SLOT / "state.json"
    load = Load(dsn, password, args.threads, args.tx_rows)
    ticks_per_k = 1000 / TICK  # CPU seconds per 1000 rows = ticks / TICK / rows * 1000

    # 1. Without the stream (no slot at all): load rate and server CPU.
    print(
        f"window 1: load without the stream, {args.seconds:g}s at {args.rate:g} rows/s", flush=True
    )
    before = server_cpu_ticks(cluster.data_dir)
    plain = load.run(args.seconds, args.rate)
    plain_ticks = server_cpu_ticks(cluster.data_dir) - before
    plain["server_cpu_s"] = round(plain_ticks / TICK, 2)
    plain["server_cpu_s_per_1000_rows"] = round(plain_ticks * ticks_per_k / plain["rows"], 4)
    results["without_stream"] = plain
    print(f"  {plain}", flush=True)

    # 2. With the stream: its base backup first (not in the window), then the same load.
    sql_path = work / "changes.sql"
    with stream_process([*drtool, "stream", "run"], env, work / "stream.log") as proc:
        t = time.perf_counter()
        while not base_backups(store) or stored_through(state_path) is None:
            if proc.poll() is not None:
                raise SystemExit((work / "stream.log").read_text()[-3000:])
            time.sleep(0.5)
        results["stream_start_and_base_backup_s"] = round(time.perf_counter() - t, 1)
        base_id = base_backups(store)[0]
        time.sleep(1)
        print(f"window 2: load with the stream (base backup {base_id})", flush=True)
        sampler = RpoSampler(state_path)
        sampler.start()
        window_start = datetime.now(UTC)
        before = server_cpu_ticks(cluster.data_dir)
        drtool_before = process_cpu_ticks(proc.pid)
        with sql_path.open("w") as sql_out:
            streamed = load.run(args.seconds, args.rate, sql_out)
        streamed_ticks = server_cpu_ticks(cluster.data_dir) - before
        drtool_ticks = process_cpu_ticks(proc.pid) - drtool_before
        load_end = datetime.now(UTC)
        sampler.halt.set()
        sampler.join()
        at_end = slot_pending_bytes(cluster)
        streamed["server_cpu_s"] = round(streamed_ticks / TICK, 2)
        streamed["server_cpu_s_per_1000_rows"] = round(
            streamed_ticks * ticks_per_k / streamed["rows"], 4
        )
        streamed["drtool_cpu_s"] = round(drtool_ticks / TICK, 2)
        streamed["drtool_cpu_s_per_1000_rows"] = round(
            drtool_ticks * ticks_per_k / streamed["rows"], 4
        )
        print(f"  {streamed}", flush=True)
        # Catch up: everything committed before the load's end stored.
        t = time.perf_counter()
        while (at := stored_through(state_path)) is None or at < load_end:
            if time.perf_counter() - t > 10 * args.flush + 300:
                raise SystemExit("the stream did not catch up")
            time.sleep(0.2)
        catch_up = time.perf_counter() - t
        drtool_total = stop_stream(proc)
    window_segments = [
        s for s in segments(store) if datetime.fromisoformat(s["created_at"]) >= window_start
    ]
    changes = sum(int(s["changes"]) for s in window_segments)
    busy = sum(
        (
            datetime.fromisoformat(s["finished_at"]) - datetime.fromisoformat(s["created_at"])
        ).total_seconds()
        for s in window_segments
        if s["changes"]
    )
    rpo = sampler.samples
    results["with_stream"] = {
        **streamed,
        "segments": len(window_segments),
        "changes_stored": changes,
        "stored_rows_per_s_over_window": round(changes / args.seconds, 1),
        "segment_capacity_changes_per_s": round(changes / busy, 1) if busy else None,
        "segment_busy_s": round(busy, 1),
        "slot_at_load_end": at_end,
        "caught_up_after_load_end_s": round(catch_up, 1),
        "rpo_samples": len(rpo),
        "rpo_p50_s": round(statistics.median(rpo), 1) if rpo else None,
        "rpo_p99_s": round(percentile(rpo, 0.99), 1) if rpo else None,
        "rpo_max_s": round(max(rpo), 1) if rpo else None,
        "rpo_target_p99_s": args.flush + 10,
        "drtool_cpu_total_s": round(drtool_total, 1),
        "stream_exit": proc.returncode,
    }
    results["server_cpu_overhead_pct"] = round(
        100 * (streamed["server_cpu_s_per_1000_rows"] / plain["server_cpu_s_per_1000_rows"] - 1), 1
    )
    print(f"  {results['with_stream']}", flush=True)

    # 3. Replay vs the floor: the same transactions as SQL through psql on the same base backup.
    until = load_end.isoformat()
    install_supabase_platform(cluster.create_database("pitr"), password)
    wall, out = timed(
        [
            *drtool,
            "restore",
            "latest",
            "--to",
            cluster.dsn("pitr", user="postgres"),
            "--until",
            until,
            "--json",
        ],
        env,
    )
    pit = json.loads(out)["point_in_time"]
    install_supabase_platform(cluster.create_database("floor"), password)
    restore_wall, _ = timed(
        [*drtool, "restore", base_id, "--to", cluster.dsn("floor", user="postgres")], env
    )
    psql = str(find_tool("psql").path)
    floor_wall, _ = timed(
        [
            psql,
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            cluster.dsn("floor", user="postgres"),
            "-f",
            str(sql_path),
        ],
        env,
    )
    with cluster.connect(dbname="pitr") as a, cluster.connect(dbname="floor") as b:
        check = (
            "select (select count(*) from public.raw_events),"
            " (select sum(attempts) from public.jobs)"
        )
        same = a.execute(check).fetchone() == b.execute(check).fetchone()
    replay_rate = pit["changes_applied"] / pit["seconds"] if pit["seconds"] else 0.0
    floor_rate = streamed["rows"] / floor_wall
    results["replay"] = {
        "restore_until_wall_s": round(wall, 1),
        "replay_s": pit["seconds"],
        "transactions_applied": pit["transactions_applied"],
        "changes_applied": pit["changes_applied"],
        "replay_changes_per_s": round(replay_rate, 1),
        "floor_restore_base_s": round(restore_wall, 1),
        "floor_psql_s": round(floor_wall, 2),
        "floor_transactions": streamed["transactions"],
        "floor_rows_per_s": round(floor_rate, 1),
        "replay_to_floor_ratio": round(replay_rate / floor_rate, 3),
        "same_result_as_floor": same,
    }
    print(f"  replay {results['replay']}", flush=True)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
        install_supabase_platform(cluster.create_database("pitr_prof"), password)
        prof = args.profile / "replay.prof"
        timed(
            [
                sys.executable,
                "-m",
                "cProfile",
                "-o",
                str(prof),
                "-m",
                "drtool",
                "-q",
                "--config",
                str(cfg),
                "restore",
                "latest",
                "--to",
                cluster.dsn("pitr_prof", user="postgres"),
                "--until",
                until,
            ],
            env,
        )
        results["replay_profile"] = profile_top(prof)
        print(results["replay_profile"], flush=True)
    for name in ("pitr", "floor", "pitr_prof"):
        with contextlib.suppress(Exception):
            cluster.drop_database(name)

    # 4. Capture alternatives on one backlog (the stream is stopped; the slot holds it).
    print(f"capture alternatives: a backlog of {args.backlog} changes", flush=True)
    backlog = load.run(None, None, max_rows=args.backlog)
    with cluster.connect(dbname="omnicrm") as conn:
        upto = str(conn.execute("select pg_current_wal_flush_lsn()::text").fetchone()[0])  # type: ignore[index]
        for n in (1, 2):
            conn.execute(
                "select pg_copy_logical_replication_slot(%s, %s)", (SLOT, f"bench_recv{n}")
            )
    alternatives: dict[str, list[float]] = {"sql": [], "recvlogical": []}
    messages = 0
    recvlogical = str(cluster.bin_dir / "pg_recvlogical")
    for n in (1, 2):
        with psycopg.connect(dsn, password=password, autocommit=True) as conn:
            started = time.perf_counter()
            count = size = 0
            with peek_changes(conn, SLOT, PUBLICATIONS, upto, 2_000_000_000) as rows:
                for _lsn, _xid, data in rows:
                    count += 1
                    size += len(data)
            alternatives["sql"].append(time.perf_counter() - started)
            messages = count
        wall, _ = timed(
            [
                recvlogical,
                "-d",
                dsn,
                "--slot",
                f"bench_recv{n}",
                "--start",
                "--endpos",
                upto,
                "--no-loop",
                "-F",
                "0",
                "-o",
                "proto_version=1",
                "-o",
                f"publication_names={','.join(PUBLICATIONS)}",
                "-f",
                "/dev/null",
            ],
            env,
        )
        alternatives["recvlogical"].append(wall)
    once = [*drtool, "stream", "run", "--once", "--json"]
    if args.profile:
        prof = args.profile / "capture.prof"
        once = [
            sys.executable,
            "-m",
            "cProfile",
            "-o",
            str(prof),
            "-m",
            "drtool",
            "-q",
            "--config",
            str(cfg),
            "stream",
            "run",
            "--once",
            "--json",
        ]
    once_wall, out = timed(once, env)
    once_doc = json.loads(out[out.index("{") :])
    if args.profile:
        results["capture_profile"] = profile_top(args.profile / "capture.prof")
        print(results["capture_profile"], flush=True)
    changes_n = backlog["rows"]
    sql_s, recv_s = min(alternatives["sql"]), min(alternatives["recvlogical"])
    results["capture"] = {
        "backlog_changes": changes_n,
        "backlog_pgoutput_messages": messages,
        "backlog_pgoutput_bytes": size,
        "sql_interface_cursor_s": round(sql_s, 2),
        "sql_interface_changes_per_s": round(changes_n / sql_s, 1),
        "pg_recvlogical_s": round(recv_s, 2),
        "pg_recvlogical_changes_per_s": round(changes_n / recv_s, 1),
        "drtool_stream_run_once_s": round(once_wall, 2),
        "drtool_stream_run_once_changes": once_doc.get("changes"),
        "drtool_stream_run_once_changes_per_s": round(
            int(once_doc.get("changes") or 0) / once_wall, 1
        ),
        "drtool_once_profiled": bool(args.profile),
        "why_sql_interface": WHY_SQL_INTERFACE,
    }
    print(f"  {results['capture']}", flush=True)


if __name__ == "__main__":
    main()
