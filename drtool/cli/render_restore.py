"""Rendering of restore results: the plan (``--dry-run``) or what was restored; or the JSON
document (``id``, ``target``, ``seconds``, ``tables`` and the plan)."""

from __future__ import annotations

from drtool.cli.render import emit, emit_json, human_size, to_jsonable
from drtool.services.restore.plan import RestorePlan
from drtool.services.restore.run import RestoreResult

SHOWN = 10


def _listed(names: list[str]) -> str:
    if not names:
        return "none"
    more = len(names) - SHOWN
    return ", ".join(names[:SHOWN]) + (f" and {more} more" if more > 0 else "")


def _mode(plan: RestorePlan) -> str:
    if plan.mode == "file":
        return "decrypt and verify to a file (0600), then check it with pg_restore --list"
    if plan.mode == "stream":
        return "stream into pg_restore, one transaction (an integrity failure commits nothing)"
    if plan.mode == "script":
        return (
            "stream pg_restore's script through drtool's filter into psql, one transaction "
            "(committed only when everything was read and authenticated)"
        )
    if plan.truncate:
        return "spool (verified first), then TRUNCATE and reload in one transaction (psql)"
    return f"spool (verified first), then pg_restore -j {plan.jobs}"


def plan_text(result: RestoreResult) -> str:
    plan = result.plan
    rows = sum(plan.tables.values())
    lines = [
        f"restore plan for backup {plan.backup_id}{' (dry run: nothing changed)' * result.dry_run}",
        f"  target:      {plan.target}"
        + (f" (PostgreSQL {plan.target_major})" if plan.target_major else ""),
        f"  backup:      PostgreSQL {plan.server_major or '?'}; "
        f"{human_size(plan.stored_size)} stored, {human_size(plan.plain_size)} dump",
        f"  tables:      {len(plan.tables)} ({rows} rows in the manifest)",
        f"  mode:        {_mode(plan)}",
    ]
    if plan.mode != "file":
        state = "empty" if not plan.target_tables else f"{len(plan.target_tables)} user tables"
        lines.append(f"  target now:  {state}")
        if plan.replaced:
            lines.append(f"  replaces:    {_listed(plan.replaced)}")
        if plan.left_alone and plan.target_tables:
            lines.append(f"  left alone:  {plan.left_alone} tables not in the backup")
        if plan.truncate:
            lines.append(f"  truncates:   {_listed(plan.truncate)}")
        lines.append(f"  roles:       create {_listed(plan.roles_to_create)}")
        if plan.roles_present:
            lines.append(f"               present: {_listed(plan.roles_present)}")
        lines.append(f"  extensions:  create {_listed(plan.extensions_to_create)}")
        if plan.platform:
            lines.append(f"  platform:    restoring into a {plan.platform} project")
        if plan.staged:
            lines.append(f"  loads into:  {_listed(plan.staged)} (the platform's tables)")
        for why, entries in plan.skipped.items():
            lines.append(f"  left out:    {len(entries)} entries: {why} ({_listed(entries)})")
        if plan.role_map:
            mapped = [f"{a} -> {b}" for a, b in plan.role_map.items()]
            lines.append(f"  role map:    {_listed(mapped)}")
    lines += [f"  warning:     {w}" for w in plan.warnings]
    return "\n".join(lines)


def restore_result(result: RestoreResult, as_json: bool) -> None:
    if as_json:
        emit_json({"ok": True, **to_jsonable(result)})
        return
    if result.dry_run:
        emit(plan_text(result) + _pit_text(result))
        return
    rows = sum(n for n in result.tables.values() if n > 0)
    if result.plan.mode == "file":
        emit(
            f"wrote the verified dump of backup {result.id} to {result.target} "
            f"({human_size(result.plan.plain_size)}, mode 0600) in {result.seconds:.1f}s\n"
            f"restore it with: pg_restore --dbname=DSN {result.target}"
        )
        return
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in result.stages.items())
    lines = [
        f"restored backup {result.id} into {result.target}: {len(result.tables)} tables, "
        f"{rows} rows (exact counts match the manifest) in {result.seconds:.1f}s",
        f"  stages: {stages}",
    ]
    if result.roles_created:
        lines.append(f"  roles created: {', '.join(result.roles_created)}")
    lines += [f"  warning: {w}" for w in result.plan.warnings]
    if result.record_id:
        lines.append(f"  record: restores/{result.id}/{result.record_id}.json")
    emit("\n".join(lines) + _pit_text(result))


def _pit_text(result: RestoreResult) -> str:
    """``--until``: what was replayed on the base backup."""
    pit = result.point_in_time
    if pit is None:
        return ""
    if result.dry_run:
        lines = [
            f"then replay the change stream up to {pit['until']}: {pit['segments']} segment(s) "
            f"of chain {pit['chain']}; every change committed before {pit['stored_through']} "
            "is stored"
        ]
    else:
        lines = [
            f"replayed the change stream up to {pit['until']}: {pit['transactions_applied']} "
            f"transactions ({pit['changes_applied']} changes) from {pit['segments']} "
            f"segment(s) in {pit['seconds']}s; the database is as committed at "
            f"{pit['recovered_to'] or pit['until']} (last transaction applied); "
            f"{pit['sequences_set']} sequences set; row counts match"
        ]
    warnings = pit.get("warnings")
    if isinstance(warnings, list):
        lines += [f"  warning: {w}" for w in warnings]
    return "\n" + "\n".join(lines)
