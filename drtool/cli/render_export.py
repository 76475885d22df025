"""Rendering of export-user, export-users and restore-user results, or their JSON documents."""

from __future__ import annotations

from drtool.cli.render import emit, emit_json, human_size, to_jsonable
from drtool.services.userdata.export import ExportResult
from drtool.services.userdata.export_users import ExportUsersResult
from drtool.services.userdata.restore_user import RestoreUserResult


def export_result(result: ExportResult, as_json: bool) -> None:
    if as_json:
        doc = {
            "ok": True,
            "id": result.id,
            "user_id": result.user_id,
            "tables": result.tables,
            "warnings": result.warnings,
            "not_exported": [n.as_dict() for n in result.not_exported],
            "platform": result.platform,
            "seconds": result.seconds,
        }
        if result.out is not None:
            doc.update(out=str(result.out), redacted_columns=result.redacted)
        if result.manifest is not None:
            doc.update(manifest=to_jsonable(result.manifest))
        emit_json(doc)
        return
    rows = sum(result.tables.values())
    lines = [f"export of user {result.user_id}: {rows} rows from {len(result.tables)} tables"]
    lines += [f"  {name:<40} {n:>10}" for name, n in result.tables.items()]
    lines += [f"  warning: {w}" for w in result.warnings]
    lines += [f"  not exported: {n.table} {n.reason}" for n in result.not_exported if n.excluded]
    if result.out is not None:
        lines.append(f"wrote {result.out}")
        if result.redacted:
            lines.append(f"  left out: {', '.join(result.redacted)}")
    elif result.manifest is not None:
        lines.append(f"stored {human_size(result.manifest.size)} in {result.seconds:.1f}s")
    lines.append(result.id)
    emit("\n".join(lines))


def export_users_result(result: ExportUsersResult, as_json: bool) -> None:
    if as_json:
        emit_json({"ok": result.ok, **to_jsonable(result)})
        return
    rate = result.exported / result.seconds if result.seconds else 0.0
    lines = [
        f"export-users ({result.selection}): {result.exported} user(s) exported, "
        f"{result.rows} rows, {human_size(result.bytes_stored)} stored in {result.seconds:.1f}s "
        f"({rate:.1f} users/s)"
    ]
    lines += [f"  warning: {w}" for w in result.warnings]
    if result.failed:
        lines.append(f"  {len(result.failed)} user(s) FAILED:")
        lines += [f"    - {f.user_id}: {f.error}" for f in result.failed]
    emit("\n".join(lines))


def restore_user_result(result: RestoreUserResult, as_json: bool) -> None:
    if as_json:
        emit_json({"ok": True, **to_jsonable(result)})
        return
    head = "dry run, nothing changed: would" if result.dry_run else "done:"
    lines = [
        f"restore-user {result.user_id} from {result.source} {result.source_id} into "
        f"{result.target} ({result.mode})",
        f"{'TABLE':<40} {'SOURCE':>8} {'INSERT':>8} {'UPDATE':>8} {'REATTACH':>8} "
        f"{'DELETE':>8} {'SAME':>8} {'OTHER':>6}",
    ]
    for t in result.tables:
        lines.append(
            f"{t.table:<40} {t.source:>8} {t.inserted:>8} {t.updated:>8} {t.reattached:>8} "
            f"{t.deleted:>8} {t.unchanged:>8} {t.conflicts:>6}"
        )
    lines.append(
        f"{head} insert {result.total('inserted')}, update {result.total('updated')}, "
        f"re-attach {result.total('reattached')}, delete {result.total('deleted')} row(s) "
        f"in {result.seconds:.1f}s"
    )
    if result.total("reattached"):
        lines.append(
            "REATTACH: rows detached from the user (user column NULL, ON DELETE SET NULL) "
            "given back to the user"
        )
    if result.total("conflicts"):
        lines.append("OTHER: rows whose primary key belongs to another user's row; left alone")
    lines += [f"warning: {w}" for w in result.warnings]
    emit("\n".join(lines))
