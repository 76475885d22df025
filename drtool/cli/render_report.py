"""Rendering of the report command's result: where the file went and its verdict; or JSON."""

from __future__ import annotations

from drtool.cli.render import emit, emit_json, human_size, to_jsonable, when
from drtool.services.report.run import ReportResult


def report_result(result: ReportResult, as_json: bool) -> None:
    if as_json:
        doc = to_jsonable(result)
        doc["verdict"] = "ok" if result.ok else "breached"
        emit_json({**doc, "ok": True})
        return
    verdict = "ok" if result.ok else f"BREACHED ({len(result.breaches)} breach(es))"
    emit(
        f"report: {result.path} ({human_size(result.bytes)}), last {result.since} to "
        f"{when(result.generated_at)}: {result.backups} backup(s), {result.drills} drill(s), "
        f"{result.verifications} verification(s); verdict {verdict}"
    )
