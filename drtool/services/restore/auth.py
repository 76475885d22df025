"""Authenticating a backup before a restore trusts it: the dump object bound to its manifest
by the manifest's seal, the globals loaded and checked whole."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from drtool.catalog.catalog import DUMP_OBJECT, GLOBALS_OBJECT, backup_prefix
from drtool.catalog.manifest import BackupManifest, Manifest
from drtool.catalog.seal import check_seal
from drtool.crypto.keys import Identity
from drtool.errors import IntegrityError, NotFoundInStorage, UsageError
from drtool.pg.restore.pg_restore import restore_tool
from drtool.pg.tools.find import Tool
from drtool.pipeline.stages import ProgressFn
from drtool.pipeline.store import StoredObject, load
from drtool.services.context import Context
from drtool.storage.base import Storage


@dataclass(frozen=True)
class Authenticated:
    """A backup whose manifest is bound to its dump object, and its decrypted globals; with the
    storage and identities its dump is read through (``chunks``)."""

    manifest: Manifest
    dump: StoredObject
    globals_sql: str | None
    storage: Storage
    identities: list[Identity]

    def chunks(self, progress: ProgressFn | None = None) -> Iterator[bytes]:
        """The dump's plaintext, authenticated chunk by chunk (from the start, each call)."""
        return load(self.storage, self.dump, self.identities, progress=progress)


def resolve_backup(ctx: Context, ref: str) -> Manifest:
    manifest = ctx.catalog.resolve(ref, "backup")
    if ref != "latest" and manifest.id != ref:
        raise IntegrityError(
            f"backup {ref}: its manifest names another item ({manifest.id})", obj="manifest.json"
        )
    if isinstance(manifest, BackupManifest) and manifest.dump_format != "custom":
        raise UsageError(f"backup {manifest.id}: not a custom-format dump")
    return manifest


def authenticate(ctx: Context, manifest: Manifest, identities: list[Identity]) -> Authenticated:
    """Bind the dump object to this manifest before a byte reaches a target: stored size, then
    the manifest's seal (keyed by the dump's age file key) - a swapped object, an edited
    manifest and a wrong key all fail here (exit 3). The globals are loaded whole (small)."""
    what = f"backup {manifest.id}"
    dump = manifest.object(DUMP_OBJECT)
    outside = [o.name for o in manifest.objects if not o.key.startswith(backup_prefix(manifest.id))]
    if outside:
        raise IntegrityError(
            f"{what}: the manifest lists objects outside its folder: {', '.join(outside)}",
            obj="manifest.json",
        )
    check_seal(
        ctx.storage,
        manifest,
        DUMP_OBJECT,
        identities,
        what=what,
        hint="nothing was restored; restore another backup (`drtool list`), and run "
        "`drtool verify --deep`",
    )
    globals_sql = None
    names = {o.name for o in manifest.objects}
    if GLOBALS_OBJECT in names:
        entry = manifest.object(GLOBALS_OBJECT).stored()
        try:
            data = b"".join(load(ctx.storage, entry, identities))
        except NotFoundInStorage:
            raise IntegrityError(f"{what}: object globals is missing", obj="globals") from None
        globals_sql = data.decode("utf-8", "replace")
    return Authenticated(manifest, dump.stored(), globals_sql, ctx.storage, identities)


def backup_major(manifest: Manifest) -> int | None:
    return manifest.server_major if isinstance(manifest, BackupManifest) else None


def dump_tool(manifest: Manifest) -> Tool:
    """pg_restore at least as new as the pg_dump that wrote the archive."""
    match = re.match(r"(\d+)", manifest.pg_dump_version or "")
    return restore_tool(int(match.group(1)) if match else None)
