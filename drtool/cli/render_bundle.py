"""Rendering of the bundle commands: names, sizes, fingerprints (never a value), and where a
restore wrote the files."""

from __future__ import annotations

import shlex

from drtool.catalog.manifest import BundleInfo
from drtool.cli.render import emit, emit_json, human_size, to_jsonable, when
from drtool.services.bundle.run import BundleRestoreResult, BundleShowResult

FINGERPRINT_CHARS = 16


def bundle_text(backup_id: str, info: BundleInfo) -> str:
    params = info.fingerprint
    lines = [
        f"bundle of backup {backup_id}",
        f"  captured:     {when(info.captured_at)}",
        f"  object:       {info.object} ({info.format}, age to {', '.join(info.recipients)})",
        f"  fingerprints: {params.get('algorithm')} n={params.get('n')} r={params.get('r')} "
        f"p={params.get('p')}, salted per bundle",
    ]
    for entry in info.entries:
        where = f"  from {entry.path}" if entry.path else ""
        lines.append(
            f"  {entry.kind:<4} {entry.name:<32} {human_size(entry.size):>10}  "
            f"{entry.fingerprint[:FINGERPRINT_CHARS]}...{where}"
        )
    return "\n".join(lines)


def bundle_show_result(result: BundleShowResult, as_json: bool) -> None:
    if as_json:
        emit_json({"ok": True, "backup_id": result.backup_id, **to_jsonable(result.bundle)})
        return
    emit(bundle_text(result.backup_id, result.bundle))


def bundle_restore_result(result: BundleRestoreResult, as_json: bool) -> None:
    if as_json:
        emit_json({"ok": True, **to_jsonable(result)})
        return
    files = ", ".join(result.files) or "none"
    emit(
        f"restored the bundle of backup {result.backup_id} into {result.out} (0700) in "
        f"{result.seconds:.1f}s\n"
        f"  files (0600): {files}\n"
        f"  env (0600):   {len(result.env)} variables: {', '.join(result.env) or 'none'}\n"
        f"  load them with: set -a; . {shlex.quote(result.out + '/env')}; set +a"
    )
