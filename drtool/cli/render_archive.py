"""Rendering of ``archive run|list|restore`` results: per-policy summaries, the batch list,
restore counts; or their JSON documents."""

from __future__ import annotations

from drtool.cli.render import emit, emit_json, human_size, to_jsonable, when
from drtool.services.archive.restore import ArchiveRestoreResult
from drtool.services.archive.run import ArchiveRunResult, PolicyRun
from drtool.services.archive.view import ArchiveListResult


def _policy_line(p: PolicyRun) -> str:
    head = f"{p.name} ({p.action} {p.table}, rows before {when(p.cutoff)})"
    if p.dry_run:
        return f"{head}: {p.matched} rows match; would make {p.batches} batch(es)" + (
            f"; {p.pending_journal} journal entr(ies) to reconcile first"
            if p.pending_journal
            else ""
        )
    if p.action == "purge":
        body = f"{p.deleted} rows purged in {p.batches} batch(es), record {p.record_id}"
    else:
        body = (
            f"{p.archived} rows archived ({human_size(p.bytes)} stored) and {p.deleted} deleted "
            f"in {p.batches} batch(es)"
        )
    notes = [
        f"{p.matched} matched",
        f"{p.seconds:.1f}s",
        f"longest txn {p.max_transaction_seconds:.3f}s",
    ]
    if p.void_batches:
        notes.append(f"{p.void_batches} batch(es) void: rows changed meanwhile, kept for later")
    if p.reconciled.entries:
        r = p.reconciled
        notes.append(
            f"reconciled {r.entries} interrupted batch(es): {r.deleted} rows deleted, "
            f"{r.voided} voided, {r.dropped} dropped"
        )
    if p.stopped:
        notes.append(f"stopped by --{p.stopped.replace('_', '-')}")
    if p.vacuumed:
        notes.append("vacuumed")
    return f"{head}: {body} ({'; '.join(notes)})"


def archive_run_result(result: ArchiveRunResult, as_json: bool) -> None:
    if as_json:
        emit_json({"ok": True, **to_jsonable(result)})
        return
    lines = [_policy_line(p) for p in result.policies]
    if result.dry_run:
        lines.append("dry run: nothing was stored or deleted")
    emit("\n".join(lines))


def archive_list_result(result: ArchiveListResult, as_json: bool) -> None:
    if as_json:
        emit_json({"ok": True, **to_jsonable(result)})
        return
    if not result.items:
        emit("no archived batches")
        return
    lines = []
    for i in result.items:
        if i.kind == "purge":
            note = "  (interrupted: at least)" if i.interrupted else ""
            lines.append(
                f"{i.id}  {i.policy:<20} purge     {i.rows:>8} rows deleted  {i.table}{note}"
            )
            continue
        pk = f"pk {','.join(i.pk_first or [])}..{','.join(i.pk_last or [])}"
        span = f"{(i.time_min or '-')[:19]} .. {(i.time_max or '-')[:19]}"
        lines.append(
            f"{i.id}  {i.policy:<20} {i.status:<9} {i.rows:>8} rows  {human_size(i.bytes):>10}  "
            f"{pk}  {span}"
        )
    emit("\n".join(lines))


def archive_restore_result(result: ArchiveRestoreResult, as_json: bool) -> None:
    if as_json:
        emit_json({"ok": True, **to_jsonable(result)})
        return
    lines = [
        f"restored policy {result.policy} into {result.target}: {result.inserted} rows inserted "
        f"of {result.rows} archived in {len(result.batches)} batch(es) "
        f"(rows already present or out of range left alone) in {result.seconds:.1f}s"
    ]
    if result.void_skipped:
        lines.append(
            f"  skipped {result.void_skipped} void batch(es) (stale copies, never restored)"
        )
    emit("\n".join(lines))
