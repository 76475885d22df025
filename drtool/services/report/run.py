"""``report --out PATH [--since DURATION]``: gather the view, render report.html.j2, write the
file atomically. Reads manifests and records only: no key is needed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from drtool.errors import EXIT_OK, UsageError
from drtool.services.context import Context
from drtool.services.html.page import check_out_path, render_page, write_page
from drtool.services.jobs.health import format_age, format_elapsed
from drtool.services.report.view import ReportView, gather_report

DEFAULT_SINCE = timedelta(days=90)


@dataclass(frozen=True)
class ReportResult:
    path: str
    ok: bool  # the verdict `status` gives
    generated_at: datetime
    since: str
    breaches: list[str]
    backups: int
    drills: int
    verifications: int
    replicas: int
    bytes: int

    @property
    def exit_code(self) -> int:
        # The report was written: that is the command's success, whatever the verdict says.
        return EXIT_OK

    def item_id(self) -> str | None:
        return None

    def summary(self) -> str | None:
        verdict = "ok" if self.ok else f"breached ({len(self.breaches)})"
        return f"report {self.path}: verdict {verdict}"


def render_report(view: ReportView) -> str:
    return render_page(
        "report.html.j2", view=view, format_age=format_age, format_elapsed=format_elapsed
    )


def write_report(ctx: Context, out: Path, since: timedelta = DEFAULT_SINCE) -> ReportResult:
    if since.total_seconds() <= 0:
        raise UsageError("--since must be longer than 0s (e.g. 30d, 90d)")
    check_out_path(out, "--out")
    view = gather_report(ctx, since)
    text = render_report(view)
    write_page(out, text, "the report", hint="check --out")
    return ReportResult(
        path=str(out),
        ok=view.ok,
        generated_at=view.generated_at,
        since=view.since,
        breaches=view.status.breaches,
        backups=len(view.backups),
        drills=len(view.drills),
        verifications=view.verifications_total,
        replicas=len(view.replicas),
        bytes=len(text.encode("utf-8")),
    )
