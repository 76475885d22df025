"""Rendering of the audit trail (newest first) and of its chain verification."""

from __future__ import annotations

from drtool.catalog.records.audit import AuditRecord
from drtool.cli.render import emit, emit_json, to_jsonable
from drtool.services.audit.view import AuditListResult, AuditVerifyResult


def record_line(r: AuditRecord) -> str:
    code = "" if r.exit_code is None else f" (exit {r.exit_code})"
    who = f"{r.actor.os_user}@{r.actor.host}"
    if r.actor.db_user:
        who += f" db:{r.actor.db_user}"
    target = f" -> {r.target}" if r.target else ""
    items = ", ".join(r.items) or "-"
    head = f"{r.at:%Y-%m-%d %H:%M:%S}Z  #{r.seq} {r.command}: {r.outcome}{code}"
    return f"{head}  {items}{target}  by {who}"


def audit_list_result(result: AuditListResult, as_json: bool) -> None:
    if as_json:
        records = [r.model_dump(mode="json") for r in result.records]
        emit_json({"ok": True, "records": records})
        return
    if not result.records:
        emit("no audit records")
        return
    emit("\n".join(record_line(r) for r in result.records))


def audit_verify_result(result: AuditVerifyResult, as_json: bool) -> None:
    if as_json:
        emit_json({**to_jsonable(result), "exit_code": result.exit_code})
        return
    if result.ok:
        emit(f"audit chain ok: {result.records} record(s), newest {result.newest_id or '-'}")
        return
    lines = [f"audit chain BROKEN ({len(result.problems)} problem(s), {result.records} record(s)):"]
    lines += [f"  - {p}" for p in result.problems]
    emit("\n".join(lines))
