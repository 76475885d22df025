"""``demo``: the main job end to end on the embedded default, with no set-up at all: backup,
list, verify --deep, a DR drill (rehearse) on a second throwaway cluster, and status; then
point-in-time recovery: the change stream, a day's writes, an accidental DELETE, and
``restore --until`` a second before it, with the rows back."""

from __future__ import annotations

import secrets
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path

import yaml

from drtool.catalog.records.drills import DrillRecord
from drtool.config import Config
from drtool.log import get_logger
from drtool.pg.cluster.ephemeral import EphemeralCluster
from drtool.pg.conn import parse_target
from drtool.pg.sample.accident import count_contacts, day_of_work, delete_by_mistake
from drtool.pg.sample.load import load_sample
from drtool.pg.sample.supabase_layer import APP_ROLE, SUPABASE_ADMIN, install_supabase_platform
from drtool.pg.scratch import dsn_with_password
from drtool.services.backup import run_backup
from drtool.services.catalog_view import list_items
from drtool.services.context import Context, build_context
from drtool.services.jobs.status import StatusResult, check_status
from drtool.services.keys import generate_key
from drtool.services.rehearse.run import RehearseRequest, rehearse
from drtool.services.rehearse.validate import format_seconds
from drtool.services.restore.request import RestoreRequest
from drtool.services.stream.replay import run_restore_until
from drtool.services.stream.run import run_stream
from drtool.services.verify.run import verify

log = get_logger("demo")
DEMO_DB = "omnicrm"
# Logical decoding for the change stream; commits flushed at once, so the stream sees them.
LOGICAL = {
    "wal_level": "logical",
    "max_wal_senders": "4",
    "max_replication_slots": "4",
    "synchronous_commit": "on",
}


@dataclass(frozen=True)
class DemoStep:
    command: str
    summary: str
    ok: bool = True


@dataclass(frozen=True)
class DemoResult:
    server_version: str
    sample_tables: int
    sample_rows: int
    database_bytes: int
    storage: str
    backup_id: str
    steps: list[DemoStep] = field(default_factory=list)
    kept_dir: str | None = None
    drill_id: str | None = None
    rto_seconds: float | None = None
    rpo_seconds: float | None = None
    rto_objective: str | None = None
    rpo_objective: str | None = None
    # Point-in-time recovery: contacts before the accidental DELETE, deleted, recovered.
    recovery: dict[str, int] = field(default_factory=dict)


def _write_config(work: Path, dsn: str, recipient: str, identity: Path) -> Path:
    doc = {
        "database": {"dsn": dsn},
        "storage": {"url": f"file://{work / 'storage'}"},
        "encryption": {"recipients": [recipient], "identity_file": str(identity)},
        "objectives": {"rpo": "24h", "rto": "1h"},
        "rehearsal": {
            "checks": [{"name": "users present", "sql": "select count(*) > 0 from auth.users"}]
        },
    }
    path = work / "drtool.yaml"
    path.write_text(
        "# written by `drtool demo`; the throwaway cluster's password is never written down\n"
        + yaml.safe_dump(doc, sort_keys=False),
        encoding="utf-8",
    )
    return path


def _verify_rehearse_status(
    ctx: Context, backup_id: str, work: Path, steps: list[DemoStep]
) -> DrillRecord:
    checked = verify(ctx, backup_id, deep=True)
    item = checked.items[0]
    steps.append(
        DemoStep(
            f"drtool verify {backup_id} --deep",
            f"{'ok' if checked.ok else 'FAILED'}: every chunk authenticated, checksums and the "
            f"manifest seal checked, pg_restore read the table of contents "
            f"({item.plain_bytes} B plaintext in {item.seconds:.1f}s)",
            checked.ok,
        )
    )
    report = work / "drill-report.md"
    drill = rehearse(ctx, RehearseRequest(ref=backup_id, report=report)).record
    rto = format_seconds(drill.rto_seconds) if drill.rto_seconds is not None else "-"
    rpo = format_seconds(drill.rpo_seconds) if drill.rpo_seconds is not None else "-"
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in drill.stages.items())
    rows = sum(t.actual or 0 for t in drill.tables)
    steps.append(
        DemoStep(
            f"drtool rehearse {backup_id} --report drill-report.md",
            f"drill {drill.id}: {drill.verdict.upper()}: restored into a throwaway PostgreSQL "
            f"{drill.server_version}, {len(drill.tables)} tables / {rows} rows equal to the "
            f"manifest, {len(drill.checks)} checks; RTO {rto} (objective "
            f"{drill.objectives.get('rto')}: {stages}), RPO {rpo} (objective "
            f"{drill.objectives.get('rpo')})",
            drill.passed,
        )
    )
    status = check_status(ctx)
    steps.append(
        DemoStep(
            "drtool status",
            "ok: " + "; ".join(_status_facts(status))
            if status.ok
            else "BREACHED: " + "; ".join(status.breaches),
            status.ok,
        )
    )
    return drill


def _point_in_time(
    ctx: Context, cluster: EphemeralCluster, password: str, steps: list[DemoStep]
) -> dict[str, int]:
    """The change stream, the app's work, an accident, and the recovery to before it."""
    stop = threading.Event()
    first = run_stream(ctx, stop, once=True)
    steps.append(
        DemoStep(
            "drtool stream run   (in the cron container: beside the scheduler)",
            f"replication slot {first.slot} (pgoutput) and a base backup "
            f"{', '.join(first.base_backups)}; every committed change is stored from now on",
        )
    )
    source = ctx.database()
    rows = day_of_work(source)
    accident = delete_by_mistake(source)
    steps.append(
        DemoStep(
            "the application: a day of CRM work, then by mistake "
            "DELETE FROM contacts WHERE lifecycle_stage = 'customer'",
            f"{rows} rows written; {accident.deleted} contacts deleted "
            f"({accident.contacts_before} -> {accident.contacts_after})",
        )
    )
    stored = run_stream(ctx, stop, once=True)
    steps.append(
        DemoStep(
            "drtool stream run   (every stream.flush_interval)",
            f"{stored.segments} segment(s), {stored.changes} changes stored, encrypted, sealed",
        )
    )
    recovered = "omnicrm_recovered"
    install_supabase_platform(cluster.create_database(recovered), password)
    target = parse_target(cluster.dsn(recovered, user=APP_ROLE), password)
    until = accident.before.astimezone(UTC).replace(microsecond=0)
    req = RestoreRequest(ref="latest", to_dsn=dsn_with_password(target), until=until)
    result = run_restore_until(ctx, req)
    pit = result.point_in_time or {}
    back = count_contacts(target)
    steps.append(
        DemoStep(
            f"drtool restore latest --to .../{recovered} --until {until.isoformat()}",
            f"backup {result.id} + {pit.get('transactions_applied')} transactions replayed: "
            f"{back} contacts, the {accident.deleted} deleted ones back "
            f"(production now has {accident.contacts_after})",
            back == accident.contacts_before,
        )
    )
    return {
        "contacts_before": accident.contacts_before,
        "deleted": accident.deleted,
        "contacts_recovered": back,
        "transactions_replayed": int(str(pit.get("transactions_applied") or 0)),
    }


def _status_facts(status: StatusResult) -> list[str]:
    facts = []
    if status.rpo_exposure_seconds is not None:
        facts.append(f"RPO exposure {format_seconds(status.rpo_exposure_seconds)}")
    if status.last_verify is not None:
        facts.append(f"last verify {'ok' if status.last_verify.ok else 'failed'}")
    if status.last_drill is not None:
        facts.append(f"last drill {status.last_drill.verdict}")
    return facts


def run_demo(*, keep: bool = False, scale: float = 0.2, progress_shown: bool = True) -> DemoResult:
    work = Path(tempfile.mkdtemp(prefix="drtool-demo-"))
    work.chmod(0o700)
    password = secrets.token_urlsafe(18)
    # Shaped like a Supabase project: the platform's superuser owns its schemas, and drtool
    # connects as the non-superuser `postgres`, as it does on the real platform.
    cluster = EphemeralCluster(superuser=SUPABASE_ADMIN, password=password, settings=LOGICAL)
    try:
        cluster.start()
        log.info("started a throwaway PostgreSQL %s on port %d", cluster.major, cluster.port)
        install_supabase_platform(cluster.create_database(DEMO_DB), password)
        dsn = cluster.dsn(DEMO_DB, user=APP_ROLE)
        info = load_sample(dsn, scale=scale, password=password, platform="supabase")
        log.info(
            "loaded the sample OmniCRM database (scale %s) on the Supabase platform layer, "
            "as the non-superuser %s",
            scale,
            APP_ROLE,
        )
        identity = work / "drtool-identity.txt"
        key = generate_key(identity)
        config_path = _write_config(work, dsn, key.recipient, identity)
        doc = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        doc["database"]["password"] = password
        config = Config.model_validate({**doc, "base_dir": work})
        ctx = build_context(config)
        steps: list[DemoStep] = []
        result = run_backup(ctx, label="demo")
        m = result.manifest
        dump = m.object("dump")
        steps.append(
            DemoStep(
                "drtool backup --label demo",
                f"backup {m.id}: {len(m.tables)} tables, {sum(m.tables.values())} rows counted in "
                f"the snapshot, {dump.plain_size} B dump -> {m.size} B zstd+age in "
                f"{m.timings.get('total', 0):.1f}s",
            )
        )
        listing = list_items(ctx)
        steps.append(
            DemoStep(
                "drtool list",
                f"{len(listing.items)} complete item(s); newest {listing.items[0].id}",
            )
        )
        drill = _verify_rehearse_status(ctx, m.id, work, steps)
        recovery = _point_in_time(ctx, cluster, password, steps)
        return DemoResult(
            server_version=m.server_version or "",
            sample_tables=len(info.table_rows),
            sample_rows=info.rows,
            database_bytes=info.database_bytes,
            storage=ctx.storage.description,
            backup_id=m.id,
            steps=steps,
            kept_dir=str(work) if keep else None,
            drill_id=drill.id,
            rto_seconds=drill.rto_seconds,
            rpo_seconds=drill.rpo_seconds,
            rto_objective=drill.objectives.get("rto"),
            rpo_objective=drill.objectives.get("rpo"),
            recovery=recovery,
        )
    finally:
        cluster.stop()
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
