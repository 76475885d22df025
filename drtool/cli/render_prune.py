"""Rendering of prune results: what went (or would go) and why, what stayed and why, and the
leftovers cleaned; or the JSON document."""

from __future__ import annotations

from drtool.cli.render import emit, emit_json, to_jsonable
from drtool.services.retention.prune import PruneResult


def prune_lines(result: PruneResult) -> list[str]:
    verb = "would remove" if result.dry_run else "removed"
    lines = [f"prune{' (dry run: nothing deleted)' if result.dry_run else ''}:"]
    lines.append(f"  {verb} {len(result.removed)} item(s):")
    lines += [f"    - {e.kind} {e.id}: {e.reason}" for e in result.removed]
    lines.append(f"  kept {len(result.kept)} item(s):")
    lines += [f"    - {e.kind} {e.id}: {e.reason}" for e in result.kept]
    lines.append(f"  leftovers {verb}: {result.abandoned_removed}")
    lines += [f"    - {a.what}: {a.reason}" for a in result.abandoned]
    for replica in result.replicas:
        if not replica.ok:
            lines.append(
                f"replica {replica.name}: FAILED, nothing more pruned there: {replica.error}"
            )
            continue
        lines.append(f"replica {replica.name}:")
        lines.append(f"  {verb} {len(replica.removed)} item(s):")
        lines += [f"    - {e.kind} {e.id}: {e.reason}" for e in replica.removed]
        lines.append(f"  kept {len(replica.kept)} item(s):")
        lines += [f"    - {e.kind} {e.id}: {e.reason}" for e in replica.kept]
        lines.append(f"  leftovers {verb}: {replica.abandoned_removed}")
        lines += [f"    - {a.what}: {a.reason}" for a in replica.abandoned]
    return lines


def prune_result(result: PruneResult, as_json: bool) -> None:
    if as_json:
        emit_json(to_jsonable(result))
    else:
        emit("\n".join(prune_lines(result)))
