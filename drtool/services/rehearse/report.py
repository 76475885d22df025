"""The drill report (``rehearse --report PATH``: Markdown, or HTML for ``*.html``) a compliance
reviewer can file: what was restored from where, timings, objectives against what was achieved,
row counts, checks, the RTO trend of the last drills, the verdict, follow-up actions and
sign-off lines."""

from __future__ import annotations

from pathlib import Path

from drtool.catalog.manifest import Manifest
from drtool.catalog.records.drills import DrillRecord
from drtool.services.html.page import check_out_path, write_page
from drtool.services.rehearse.report_html import render_html_report
from drtool.services.rehearse.validate import KIND_SQL, format_seconds

TREND_DRILLS = 6
HTML_SUFFIXES = (".html", ".htm")
STAGE_TEXT = {
    "scratch": "start the scratch database",
    "prepare": "authenticate the backup, check the target",
    "fetch_decrypt": "fetch and decrypt (overlaps the restore)",
    "restore": "pg_restore (rest of the streaming restore)",
    "validate": "row counts, checks, roles/schemas/extensions",
}


def check_report_path(path: Path) -> None:
    """Refuse a report path that cannot be written before the drill starts (exit 2)."""
    check_out_path(path, "--report")


def _md(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _yes(value: object) -> str:
    return "yes" if value is True else "**NO**" if value is False else "-"


def _seconds(value: float | None) -> str:
    return format_seconds(value) if value is not None else "-"


def follow_ups(record: DrillRecord) -> list[str]:
    """What to do about each failure, in the order they were found."""
    out: list[str] = []
    objectives = record.objectives
    backup = record.backup_id or "the backup"
    if record.integrity_error:
        out.append(
            f"Backup {backup} failed its integrity check: {record.integrity_error}. Nothing "
            f"was restored from it. Run `drtool verify {backup} --deep`, rehearse the previous "
            "backup (`drtool list`, `drtool rehearse ID`), and investigate who could write to "
            "the storage; treat it as a security incident until explained."
        )
    if record.error:
        out.append(
            f"The drill did not complete: {record.error}. Fix the cause and run "
            "`drtool rehearse` again; see runbooks/dr-drill.md."
        )
    for row in record.tables:
        if not row.ok:
            out.append(
                f"Table {row.table} restored {row.actual} rows where the manifest recorded "
                f"{row.expected}: keep the scratch (`--keep`) and report it as a defect."
            )
    for check in record.checks:
        if check.ok:
            continue
        if check.kind == KIND_SQL:
            out.append(
                f"Check '{check.name}' failed ({check.detail}): find out whether production "
                "has the same problem; if the check itself is wrong, fix rehearsal.checks."
            )
        elif check.kind == "bundle":
            out.append(
                f"The configuration & secrets bundle failed its check ({check.detail}): "
                "a restore would not bring back the application's keys; use the previous "
                "backup's bundle (`drtool bundle show`) and investigate the storage."
            )
        else:
            out.append(
                f"{check.name.capitalize()} failed ({check.detail}): a restore would need "
                "manual steps; add them to the restore runbook or fix the backup's globals."
            )
    if objectives.get("rto_met") is False and record.rto_seconds is not None:
        slow = max(record.stages.items(), key=lambda kv: kv[1], default=("-", 0.0))
        out.append(
            f"RTO {format_seconds(record.rto_seconds)} exceeds the objective "
            f"{objectives.get('rto')}: the slowest stage was {slow[0]} "
            f"({format_seconds(slow[1])}). Restore with `--jobs N` (parallel pg_restore), "
            "use a faster restore host or storage closer to it, exclude regenerable table "
            "data (backup.exclude_table_data), or review the objective with the business."
        )
    if objectives.get("rpo_met") is False and record.rpo_seconds is not None:
        out.append(
            f"RPO {format_seconds(record.rpo_seconds)} exceeds the objective "
            f"{objectives.get('rpo')}: the restored backup was too old. Check that the "
            "backup schedule runs (`drtool schedule list`, `drtool status`) and rehearse "
            "`latest`."
        )
    if objectives.get("rpo_worst_gap_met") is False and record.rpo_worst_gap_seconds:
        gap = record.rpo_worst_gap or {}
        out.append(
            f"The worst gap between backups over 30 days was "
            f"{format_seconds(record.rpo_worst_gap_seconds)} (from {gap.get('start')} to "
            f"{gap.get('end')}), more than the objective {objectives.get('rpo')}: find the "
            "failed or missed backup runs in that window (`drtool status`, notifications) "
            "and fix the schedule or its alerting."
        )
    return out


def render_report(
    record: DrillRecord, manifest: Manifest, storage: str, trend: list[DrillRecord]
) -> str:
    verdict = "PASS" if record.passed else "FAIL"
    b = record.backup
    s = record.scratch
    o = record.objectives
    label = f" (label {_md(manifest.label)})" if manifest.label else ""
    finished = record.finished_at.isoformat(timespec="seconds") if record.finished_at else "-"
    lines = [
        f"# DR drill report {record.id}",
        "",
        f"**Verdict: {verdict}**"
        + (f" ({len(record.failures)} finding(s))" if record.failures else ""),
        "",
        "| | |",
        "| --- | --- |",
        f"| drill | `{record.id}` (record `drills/{record.id}.json`) |",
        f"| started | {record.created_at.isoformat(timespec='seconds')} |",
        f"| finished | {finished} |",
        f"| host | {_md(record.host)} |",
        f"| drtool | {_md(record.tool_version)} |",
        "",
        "## What was restored, from where",
        "",
        "| | |",
        "| --- | --- |",
        f"| backup | `{manifest.id}`{label} |",
        f"| snapshot (recovery point) | {b.get('snapshot_at')} |",
        f"| source database | {_md(b.get('database'))} ({_md(b.get('source'))}), PostgreSQL "
        f"{_md(b.get('server_version'))}, pg_dump {_md(b.get('pg_dump_version'))} |",
        f"| stored in | {_md(storage)} |",
        f"| size | {b.get('size')} bytes stored, {b.get('dump_plain_size')} bytes of dump |",
        f"| contents | {b.get('tables')} tables, {b.get('rows')} rows |",
        "| integrity | "
        + (
            f"**FAILED**: {_md(record.integrity_error)}"
            if record.integrity_error
            else "manifest seal, every age chunk, sizes and SHA-256 checked while restoring"
            if record.rto_seconds is not None
            else "-"
        )
        + " |",
        f"| restored into | {_scratch_text(s)} |",
        "",
        "## Timings",
        "",
        "| stage | what | seconds |",
        "| --- | --- | ---: |",
    ]
    for stage, seconds in record.stages.items():
        lines.append(f"| {stage} | {STAGE_TEXT.get(stage, '')} | {seconds:.2f} |")
    lines += [
        f"| **RTO** | start to validated | **{_seconds(record.rto_seconds)}** |",
        "",
        "## Objectives",
        "",
        "| objective | target | achieved | met |",
        "| --- | --- | --- | --- |",
        f"| RTO (start of the drill to validated) | {o.get('rto')} | "
        f"{_seconds(record.rto_seconds)} | {_yes(o.get('rto_met'))} |",
        f"| RPO (age of the restored snapshot at drill time) | {o.get('rpo')} | "
        f"{_seconds(record.rpo_seconds)} | {_yes(o.get('rpo_met'))} |",
        f"| RPO worst gap between complete backups (30 days, up to the drill) | {o.get('rpo')} "
        f"| {_seconds(record.rpo_worst_gap_seconds)} | {_yes(o.get('rpo_worst_gap_met'))} |",
        "",
    ]
    lines += _tables_section(record) + _checks_section(record) + _trend_section(trend)
    actions = follow_ups(record)
    lines += ["## Findings and follow-up actions", ""]
    if actions:
        lines += [f"{i}. {_md(action)}" for i, action in enumerate(actions, 1)]
    else:
        lines.append("None: every check passed and both objectives were met.")
    lines += [
        "",
        "## Sign-off",
        "",
        "| role | name | date | signature |",
        "| --- | --- | --- | --- |",
        "| operator (ran the drill) | | | |",
        "| reviewer | | | |",
        "",
    ]
    return "\n".join(lines)


def _scratch_text(s: dict[str, object]) -> str:
    if not s.get("kind"):
        return "- (the scratch database could not be started)"
    what = "an ephemeral PostgreSQL cluster" if s.get("kind") == "ephemeral" else "a server"
    after = "kept for inspection" if s.get("kept") else "removed afterwards"
    if not s.get("kept") and not s.get("removed"):
        after = "**could not be removed** (see the drill's log)"
    return (
        f"{what}, PostgreSQL {_md(s.get('server_version'))}, database "
        f"`{_md(s.get('target'))}`, {after}"
    )


def _tables_section(record: DrillRecord) -> list[str]:
    if not record.tables:
        return ["## Row counts", "", "Not validated: the restore did not complete.", ""]
    wrong = [t for t in record.tables if not t.ok]
    head = (
        f"{len(record.tables)} tables; every count equals the manifest's (exact counts taken "
        "in the backup's snapshot)."
        if not wrong
        else f"**{len(wrong)} of {len(record.tables)} tables differ from the manifest.**"
    )
    lines = ["## Row counts", "", head, "", "| table | expected | restored | ok |"]
    lines.append("| --- | ---: | ---: | --- |")
    for t in wrong + [t for t in record.tables if t.ok]:
        lines.append(f"| {_md(t.table)} | {t.expected} | {t.actual} | {_yes(t.ok)} |")
    return [*lines, ""]


def _checks_section(record: DrillRecord) -> list[str]:
    lines = ["## Checks", ""]
    if not record.checks:
        return [*lines, "Not run: the restore did not complete.", ""]
    lines += ["| check | kind | ok | detail |", "| --- | --- | --- | --- |"]
    for c in record.checks:
        lines.append(f"| {_md(c.name)} | {c.kind} | {_yes(c.ok)} | {_md(c.detail)} |")
    return [*lines, ""]


def _trend_section(trend: list[DrillRecord]) -> list[str]:
    lines = [f"## RTO trend (last {len(trend)} drills)", ""]
    lines += ["| drill | date | backup | verdict | RTO |", "| --- | --- | --- | --- | ---: |"]
    for d in sorted(trend, key=lambda r: r.id):
        lines.append(
            f"| `{d.id}` | {d.created_at.date().isoformat()} | `{d.backup_id or '-'}` | "
            f"{d.verdict} | {_seconds(d.rto_seconds)} |"
        )
    return [*lines, ""]


def write_report(
    path: Path, record: DrillRecord, manifest: Manifest, storage: str, trend: list[DrillRecord]
) -> Path:
    """Write the report atomically (a temp file renamed into place), mode 0644: HTML when the
    path ends in ``.html`` (or ``.htm``), else Markdown."""
    if path.suffix.lower() in HTML_SUFFIXES:
        text = render_html_report(record, manifest, storage, trend, STAGE_TEXT, follow_ups(record))
    else:
        text = render_report(record, manifest, storage, trend)
    return write_page(
        path,
        text,
        "the drill report",
        hint=f"the drill itself is recorded (drills/{record.id}.json); check --report",
    )
