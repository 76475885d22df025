"""Rendering of verify results: one line per item and one per problem with the full address of
the stored object it concerns (what an operator looks for in the bucket), then what to do; or
the JSON document (each problem's ``key``: the storage key under the prefix)."""

from __future__ import annotations

from drtool.cli.render import emit, emit_json, human_size, to_jsonable
from drtool.services.verify.run import VerifyResult


def verify_result(result: VerifyResult, as_json: bool) -> None:
    if as_json:
        emit_json(to_jsonable(result))
        return
    lines: list[str] = []
    hints: list[str] = []
    for item in result.items:
        how = "deep" if item.deep else "stored bytes"
        size = human_size(item.bytes_read) + " read"
        if item.deep:
            size += f", {human_size(item.plain_bytes)} plain"
        verdict = "ok" if item.ok else "FAILED"
        lines.append(f"{item.kind} {item.id}: {verdict} ({how}; {size} in {item.seconds:.1f}s)")
        for problem in item.problems:
            where = problem.object
            if problem.chunk is not None:
                where += f" chunk {problem.chunk}"
            lines.append(f"  {where}: {problem.problem}")
            if problem.key:
                lines.append(f"    stored as {result.location(problem.key)}")
            if problem.hint and problem.hint not in hints:
                hints.append(problem.hint)
    failed = sum(1 for item in result.items if not item.ok)
    if len(result.items) > 1:
        lines.append(f"{len(result.items) - failed} of {len(result.items)} items verified ok")
    lines += [f"hint: {hint}" for hint in hints]
    if not failed and not any(item.deep for item in result.items):
        lines.append("the stored bytes match the manifest; `verify --deep` also decrypts them")
    emit("\n".join(lines))
