"""The HTML drill report (``rehearse --report PATH.html``): what the Markdown report says
(report.py), in the report's template style (drill.html.j2), with the stage timings and the
RTO trend drawn as inline SVG charts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from drtool.catalog.manifest import Manifest
from drtool.catalog.records.drills import DrillRecord
from drtool.services.html.charts import Bar, Chart, bar_chart
from drtool.services.html.page import render_page
from drtool.services.rehearse.validate import format_seconds


@dataclass(frozen=True)
class DrillView:
    record: DrillRecord
    manifest: Manifest
    storage: str
    scratch_text: str
    stage_text: dict[str, str]
    stages_chart: Chart | None
    trend: list[DrillRecord]  # oldest first
    trend_chart: Chart | None
    actions: list[str]


def _seconds(value: float | None) -> str:
    return format_seconds(value) if value is not None else "-"


def scratch_text(s: dict[str, Any]) -> str:
    if not s.get("kind"):
        return "- (the scratch database could not be started)"
    what = "an ephemeral PostgreSQL cluster" if s.get("kind") == "ephemeral" else "a server"
    after = "kept for inspection" if s.get("kept") else "removed afterwards"
    if not s.get("kept") and not s.get("removed"):
        after = "could not be removed (see the drill's log)"
    return f"{what}, PostgreSQL {s.get('server_version')}, database {s.get('target')}, {after}"


def _stages_chart(record: DrillRecord) -> Chart | None:
    if not record.stages:
        return None
    bars = [
        Bar(stage, stage, seconds, False, f"{stage}: {seconds:.2f}s")
        for stage, seconds in record.stages.items()
    ]
    return bar_chart("stages", "Seconds per stage", "stage", bars, None, "", _seconds)


def trend_chart(trend: Sequence[DrillRecord], record: DrillRecord) -> Chart | None:
    timed = [d for d in trend if d.rto_seconds is not None]
    if not timed:
        return None
    rto = record.objectives.get("rto_seconds")
    objective = float(rto) if isinstance(rto, int | float) else None
    bars = [
        Bar(
            key=d.id,
            label=d.created_at.strftime("%m-%d %H:%M"),
            value=d.rto_seconds or 0.0,
            bad=not d.passed or (objective is not None and (d.rto_seconds or 0.0) > objective),
            title=f"drill {d.id}: {d.verdict}, RTO {_seconds(d.rto_seconds)}",
        )
        for d in timed
    ]
    label = f"RTO {record.objectives.get('rto')}" if objective is not None else ""
    return bar_chart("rto", "RTO per drill", "drill", bars, objective, label, _seconds)


def render_html_report(
    record: DrillRecord,
    manifest: Manifest,
    storage: str,
    trend: list[DrillRecord],
    stage_text: dict[str, str],
    actions: list[str],
) -> str:
    ordered = sorted(trend, key=lambda r: r.id)
    view = DrillView(
        record=record,
        manifest=manifest,
        storage=storage,
        scratch_text=scratch_text(record.scratch),
        stage_text=stage_text,
        stages_chart=_stages_chart(record),
        trend=ordered,
        trend_chart=trend_chart(ordered, record),
        actions=actions,
    )
    return render_page("drill.html.j2", view=view, seconds=_seconds)
