"""Rendering of ``replicate`` results: per replica what was copied, verified and failed; or
the JSON document (SPEC "Results": ``replicas`` [name, copied, verified, failed, bytes,
seconds])."""

from __future__ import annotations

from drtool.cli.render import emit, emit_json, human_size, to_jsonable
from drtool.services.replicate.run import ReplicaResult, ReplicateResult


def _replica_lines(r: ReplicaResult) -> list[str]:
    if r.error is not None:
        return [f"replica {r.name} ({r.url}): FAILED: {r.error}"]
    how = "server-side copy" if r.server_side else "streamed"
    lines = [
        f"replica {r.name} ({r.url}): {len(r.copied)} item(s) copied, {r.verified} verified "
        f"there, {human_size(r.bytes)} {how} in {r.seconds:.1f}s"
    ]
    lines += [f"  - FAILED {f.kind} {f.id}: {f.error}" for f in r.failed]
    if r.not_copied:
        lines.append(f"  {len(r.not_copied)} item(s) not copied: its retention would remove them")
    return lines


def replicate_result(result: ReplicateResult, as_json: bool) -> None:
    if as_json:
        doc = to_jsonable(result)
        for replica, out in zip(result.replicas, doc["replicas"], strict=True):
            out["ok"] = replica.exit_code == 0
        emit_json({"ok": result.exit_code == 0, "exit_code": result.exit_code, **doc})
        return
    emit("\n".join(line for r in result.replicas for line in _replica_lines(r)))
