"""The only stdout writer: results as human text or one JSON document; errors on stderr."""

from __future__ import annotations

import dataclasses
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from drtool.errors import DrtoolError
from drtool.log import redact
from drtool.units import human_size as human_size  # re-exported: the renderers use it

if TYPE_CHECKING:
    # Imported where used: the manifest models (cryptography, storage) and the drill
    # validation (psycopg) are not needed to render `status` or an error.
    from drtool.catalog.manifest import Manifest


def to_jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    return value


def _clear_progress() -> None:
    # A progress line on a terminal has no newline; wipe it before the result is printed.
    if sys.stderr.isatty():
        sys.stderr.write("\r\x1b[2K")
        sys.stderr.flush()


def emit_json(doc: dict[str, Any]) -> None:
    _clear_progress()
    sys.stdout.write(redact(json.dumps(doc, indent=2, default=str)) + "\n")
    sys.stdout.flush()


def emit(text: str) -> None:
    _clear_progress()
    sys.stdout.write(redact(text) + ("\n" if not text.endswith("\n") else ""))
    sys.stdout.flush()


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"


def manifest_text(m: Manifest) -> str:
    from drtool.catalog.manifest import BackupManifest, ExportManifest

    backup = m if isinstance(m, BackupManifest) else None
    export = m if isinstance(m, ExportManifest) else None
    taken = backup or export  # the kinds read from a database snapshot
    lines = [
        f"{m.kind} {m.id}",
        f"  status:      {m.status}",
        f"  label:       {m.label or '-'}",
        f"  created:     {when(m.created_at)}",
    ]
    if export is not None:
        lines.append(f"  user:        {export.user_id} ({export.users_table})")
    if m.snapshot_at:
        lines.append(f"  snapshot:    {when(m.snapshot_at)}")
    lines.append(f"  finished:    {when(m.finished_at)}")
    if m.database:
        source = taken.source if taken else None
        lines.append(f"  database:    {m.database} ({source or ''})")
    if m.server_version:
        lines.append(f"  server:      PostgreSQL {m.server_version}; pg_dump {m.pg_dump_version}")
    lines.append(f"  size:        {human_size(m.size)} stored")
    if m.compression:
        lines.append(
            f"  compression: {m.compression.get('algorithm')} level {m.compression.get('level')}"
        )
    if m.encryption:
        recips = ", ".join(m.encryption.get("recipients", []))
        lines.append(f"  encryption:  {m.encryption.get('format')} to {recips}")
    if backup is not None and backup.globals is not None:
        lines.append(f"  globals:     {backup.globals.get('status')}")
    if backup is not None and backup.bundle is not None:
        kinds = [e.kind for e in backup.bundle.entries]
        lines.append(
            f"  bundle:      {kinds.count('file')} files, {kinds.count('env')} variables "
            f"(`drtool bundle show {m.id}`)"
        )
    if taken is not None and "platform" in taken.model_fields_set:
        details = backup.platform_details if backup else None
        lines += platform_text(taken.platform, details)
    lines.append("  objects:")
    for o in m.objects:
        lines.append(
            f"    {o.name:<8} {human_size(o.size):>10} stored, {human_size(o.plain_size):>10} plain"
            f"  sha256 {o.sha256[:16]}..."
        )
        lines.append(f"             key {o.key}")
    if m.tables:
        lines.append(f"  tables ({len(m.tables)}, exact rows in the snapshot):")
        excluded = backup.excluded_table_data if backup else {}
        for name, rows in sorted(m.tables.items()):
            note = "  (data excluded)" if name in excluded else ""
            lines.append(f"    {name:<40} {rows:>12}{note}")
    lines += [f"  warning:     {w}" for w in (taken.warnings if taken else [])]
    if m.timings:
        stages = ", ".join(f"{k} {v:.1f}s" for k, v in m.timings.items())
        lines.append(f"  timings:     {stages}")
    return "\n".join(lines)


def render_traceback(text: str, json_logs: bool) -> None:
    """A traceback (with -v) on stderr, redacted; one JSON log line in --log-format json."""
    clean = redact(text)
    if json_logs:
        doc = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "level": "debug",
            "message": "traceback",
            "traceback": clean,
        }
        sys.stderr.write(json.dumps(doc) + "\n")
    else:
        sys.stderr.write(clean)
    sys.stderr.flush()


def render_error(err: DrtoolError, as_json: bool, json_logs: bool = False) -> None:
    if as_json:
        doc: dict[str, Any] = {
            "ok": False,
            "exit_code": err.exit_code,
            "error": {"message": err.message},
        }
        if err.hint:
            doc["error"]["hint"] = err.hint
        emit_json(doc)
    message = redact(err.message)
    if json_logs:
        line: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "level": "error",
            "message": message,
            "exit_code": err.exit_code,
        }
        if err.hint:
            line["hint"] = redact(err.hint)
        sys.stderr.write(json.dumps(line) + "\n")
    else:
        sys.stderr.write(f"drtool: error: {message}\n")
        if err.hint:
            sys.stderr.write(f"hint: {redact(err.hint)}\n")
    sys.stderr.flush()


def key_result(result: Any, as_json: bool) -> None:
    if as_json:
        emit_json({"ok": True, **to_jsonable(result)})
        return
    if result.identity_file:
        sys.stderr.write(f"identity: {result.identity_file} (keep it secret; mode 0600)\n")
    emit(result.recipient)


def init_result(result: Any, as_json: bool) -> None:
    if as_json:
        emit_json({"ok": True, **to_jsonable(result)})
        return
    emit(
        f"wrote {result.config_file}\n"
        f"wrote {result.identity_file} (mode 0600; its public recipient is {result.recipient})\n"
        "\nnext steps:\n"
        f"  1. edit {result.config_file}: database.dsn and storage.url\n"
        "  2. move the identity file off the backup host (keep a copy in a safe): the backup\n"
        "     host needs only the recipient; restore and verify --deep need the identity\n"
        f"  3. drtool --config {result.config_file} backup\n"
        f"  4. drtool --config {result.config_file} list"
    )


def backup_result(result: Any, as_json: bool) -> None:
    from drtool.catalog.manifest import BackupManifest

    m: Manifest = result.manifest
    if as_json:
        emit_json({"ok": True, **to_jsonable(m)})
        return
    rows = sum(m.tables.values())
    plain = sum(o.plain_size for o in m.objects)
    warnings = m.warnings if isinstance(m, BackupManifest) else []
    parts = m.parts if isinstance(m, BackupManifest) and m.dump_format == "parallel" else None
    shape = f" (parallel format, {len(parts)} data objects)" if parts is not None else ""
    lines = [
        f"backup complete{shape}: {len(m.tables)} tables, {rows} rows, "
        f"{human_size(plain)} dump -> {human_size(m.size)} stored "
        f"in {m.timings.get('total', 0):.1f}s"
    ]
    lines += [f"warning: {w}" for w in warnings]
    lines.append(m.id)  # the new id is the last line
    emit("\n".join(lines))


def platform_text(platform: Any, details: Any) -> list[str]:
    """A backup's hosting platform and the platform facts a restore compares."""
    if not platform:
        return ["  platform:    - (self-managed PostgreSQL)"]
    details = details if isinstance(details, dict) else {}
    versions = details.get("schema_versions") or {}
    line = f"  platform:    {platform}"
    if versions:
        shown = ", ".join(f"{k} {v if v is not None else 'unknown'}" for k, v in versions.items())
        line += f" (schema versions: {shown})"
    lines = [line]
    for name, columns in (details.get("data_tables") or {}).items():
        lines.append(f"    {name:<38} {len(columns)} columns")
    return lines


def list_result(result: Any, as_json: bool) -> None:
    if as_json:
        emit_json({"ok": True, **to_jsonable(result)})
        return
    if not result.items:
        emit("no complete items")
        return
    lines = [f"{'ID':<28} {'KIND':<7} {'CREATED':<21} {'SIZE':>10}  {'VERIFIED':<27} LABEL"]
    for item in result.items:
        if item.kind == "drill":
            lines.append(
                f"{item.id:<28} {item.kind:<7} {when(item.created_at):<21} {'-':>10}  "
                f"{'-':<27} {drill_summary(item)}"
            )
            continue
        verified = "-"
        if item.last_verified_at is not None:
            verified = f"{when(item.last_verified_at)} {'ok' if item.last_verify_ok else 'FAILED'}"
        lines.append(
            f"{item.id:<28} {item.kind:<7} {when(item.created_at):<21} "
            f"{human_size(item.size):>10}  {verified:<27} {item.label or ''}"
        )
    emit("\n".join(lines))


def verification_text(record: Any, manifest: Manifest | None = None) -> str:
    """The last verification of an item: when, how deep, the outcome and what was wrong (with
    the object's storage key from the manifest)."""
    if record is None:
        return "  verified:    never (run `drtool verify ID`)"
    how = "deep" if record.deep else "stored bytes"
    outcome = "ok" if record.ok else f"FAILED, {len(record.problems)} problem(s)"
    lines = [f"  verified:    {when(record.at)} {outcome} ({how})"]
    keys = {o.name: o.key for o in manifest.objects} if manifest is not None else {}
    for problem in record.problems:
        chunk = f" chunk {problem.chunk}" if problem.chunk is not None else ""
        key = f" ({keys[problem.object]})" if problem.object in keys else ""
        lines.append(f"    {problem.object}{key}{chunk}: {problem.problem}")
    return "\n".join(lines)


def drill_summary(item: Any) -> str:
    """A drill in a listing: verdict, RTO and RPO, the backup it rehearsed."""
    from drtool.services.rehearse.validate import format_seconds

    rto = format_seconds(item.rto_seconds) if item.rto_seconds is not None else "-"
    rpo = format_seconds(item.rpo_seconds) if item.rpo_seconds is not None else "-"
    return f"{(item.verdict or '?').upper()} RTO {rto} RPO {rpo} (backup {item.backup_id or '-'})"


def show_result(result: Any, as_json: bool) -> None:
    if hasattr(result, "drill"):
        from drtool.cli.render_rehearse import drill_show

        drill_show(result.drill, as_json)
        return
    if as_json:
        emit_json(
            {
                "ok": True,
                **to_jsonable(result.manifest),
                "last_verification": to_jsonable(result.last_verification),
            }
        )
        return
    verified = verification_text(result.last_verification, result.manifest)
    emit(manifest_text(result.manifest) + "\n" + verified)


def demo_result(result: Any, as_json: bool) -> None:
    if as_json:
        emit_json({"ok": True, **to_jsonable(result)})
        return
    lines = [
        "",
        "drtool demo",
        f"  database: sample OmniCRM, {result.sample_rows} rows in {result.sample_tables} tables "
        f"({human_size(result.database_bytes)}) on a throwaway PostgreSQL {result.server_version}",
        "            shaped like a Supabase project: supabase_admin owns the platform's schemas, "
        "drtool connects as the non-superuser postgres",
        f"  storage:  {result.storage}",
        "",
    ]
    lines += [f"  $ {step.command}\n    {step.summary}" for step in result.steps]
    if result.rto_seconds is not None:
        lines += [
            "",
            f"  measured RTO {result.rto_seconds:.1f}s (objective {result.rto_objective}), "
            f"RPO {result.rpo_seconds:.1f}s (objective {result.rpo_objective})",
        ]
    if result.kept_dir:
        lines += [
            "",
            f"kept {result.kept_dir}: try  drtool --config {result.kept_dir}/drtool.yaml list",
        ]
    emit("\n".join(lines))
