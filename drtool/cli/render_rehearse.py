"""Rendering of drills: the ``rehearse`` result and ``show`` of a drill record, as text (one
line per fact, every failure named) or the JSON document."""

from __future__ import annotations

from typing import Any

from drtool.catalog.records.drills import DrillRecord
from drtool.cli.render import emit, emit_json, to_jsonable, when
from drtool.services.rehearse.run import RehearseResult
from drtool.services.rehearse.validate import format_seconds


def _s(value: float | None) -> str:
    return format_seconds(value) if value is not None else "-"


def _met(value: object) -> str:
    return "met" if value is True else "BREACHED" if value is False else "not measured"


def drill_lines(record: DrillRecord) -> list[str]:
    o = record.objectives
    s = record.scratch
    b = record.backup
    lines = [f"drill {record.id}: {record.verdict.upper()} (at {when(record.created_at)})"]
    snapshot = f" (snapshot {b['snapshot_at']})" if b.get("snapshot_at") else ""
    lines.append(f"  backup:   {record.backup_id or '-'}{snapshot}")
    if s.get("kind"):
        state = "kept" if s.get("kept") else "removed" if s.get("removed") else "NOT removed"
        lines.append(
            f"  scratch:  {s.get('kind')} PostgreSQL {s.get('server_version')}, "
            f"{s.get('target')} ({state})"
        )
    lines.append(
        f"  RTO:      {_s(record.rto_seconds)} (objective {o.get('rto', '-')}, "
        f"{_met(o.get('rto_met'))})"
    )
    lines.append(
        f"  RPO:      {_s(record.rpo_seconds)} (objective {o.get('rpo', '-')}, "
        f"{_met(o.get('rpo_met'))}); worst gap over 30 days "
        f"{_s(record.rpo_worst_gap_seconds)} ({_met(o.get('rpo_worst_gap_met'))})"
    )
    if record.stages:
        stages = ", ".join(f"{k} {v:.1f}s" for k, v in record.stages.items())
        lines.append(f"  stages:   {stages}")
    if record.tables:
        wrong = [t for t in record.tables if not t.ok]
        rows = sum(t.actual or 0 for t in record.tables)
        verdict = "every count equals the manifest" if not wrong else f"{len(wrong)} differ"
        lines.append(f"  tables:   {len(record.tables)} tables, {rows} rows: {verdict}")
    for check in record.checks:
        lines.append(f"  check:    {check.name}: {'ok' if check.ok else 'FAILED'} ({check.detail})")
    if record.failures:
        lines.append("  failed:")
        lines += [f"    - {failure}" for failure in record.failures]
    return lines


def rehearse_result(result: RehearseResult, as_json: bool) -> None:
    if as_json:
        doc: dict[str, Any] = {"ok": result.passed, **to_jsonable(result.record)}
        doc["report"] = result.report_path
        doc["kept"] = to_jsonable(result.kept)
        emit_json(doc)
        return
    lines = drill_lines(result.record)
    if result.report_path:
        lines.append(f"  report:   {result.report_path}")
    kept = result.kept
    if kept is not None:
        lines.append(f"  kept:     psql '{kept.dsn}'")
        if kept.password_file:
            lines.append(
                f"            the password is in {kept.password_file} (0600): "
                f"PGPASSFILE={kept.password_file} psql '{kept.dsn}'"
            )
        lines.append(f"  remove:   {kept.remove_hint}")
    emit("\n".join(lines))


def drill_show(record: DrillRecord, as_json: bool) -> None:
    if as_json:
        emit_json({"ok": True, **to_jsonable(record)})
        return
    emit("\n".join(drill_lines(record)))
