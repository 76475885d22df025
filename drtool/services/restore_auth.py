"""Authenticating a backup before a restore trusts it: the dump object bound to its manifest
by the manifest's seal, the globals loaded and checked whole."""

from __future__ import annotations

import re
from dataclasses import dataclass

from drtool.catalog.catalog import backup_prefix
from drtool.catalog.manifest import Manifest
from drtool.crypto.age import open_seal_key
from drtool.crypto.keys import Identity
from drtool.errors import IntegrityError, NotFoundInStorage, UsageError
from drtool.pg.restore import restore_tool
from drtool.pg.tools import Tool
from drtool.pipeline.store import StoredObject, load
from drtool.services.context import Context
from drtool.storage.base import close_quietly

DUMP_OBJECT = "dump"
GLOBALS_OBJECT = "globals"


@dataclass(frozen=True)
class Authenticated:
    """A backup whose manifest is bound to its dump object, and its decrypted globals."""

    manifest: Manifest
    dump: StoredObject
    globals_sql: str | None


def resolve_backup(ctx: Context, ref: str) -> Manifest:
    manifest = ctx.catalog.resolve(ref, "backup")
    if ref != "latest" and manifest.id != ref:
        raise IntegrityError(
            f"backup {ref}: its manifest names another item ({manifest.id})", obj="manifest.json"
        )
    if (manifest.model_extra or {}).get("dump_format", "custom") != "custom":
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
    try:
        size = ctx.storage.stat(dump.key).size
    except NotFoundInStorage:
        raise IntegrityError(f"{what}: object dump is missing ({dump.key})", obj="dump") from None
    if size != dump.size:
        raise IntegrityError(
            f"{what}: object dump is {size} bytes in storage, the manifest records {dump.size}",
            hint="the object is truncated or replaced; restore another backup (`drtool list`)",
            obj="dump",
        )
    head = ctx.storage.get(dump.key)
    try:
        key = open_seal_key(head, identities, obj=DUMP_OBJECT)
    finally:
        close_quietly(head)
    if manifest.seal_object != DUMP_OBJECT or not manifest.seal_valid(key):
        raise IntegrityError(
            f"{what}: the manifest's seal does not match the dump object: the manifest was "
            "edited, or the dump was replaced (e.g. swapped in from another backup)",
            hint="nothing was restored; restore another backup, and run `drtool verify --deep`",
            obj="manifest.json",
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
    return Authenticated(manifest, dump.stored(), globals_sql)


def backup_major(manifest: Manifest) -> int | None:
    value = (manifest.model_extra or {}).get("server_major")
    return int(value) if isinstance(value, int) else None


def dump_tool(manifest: Manifest) -> Tool:
    """pg_restore at least as new as the pg_dump that wrote the archive."""
    match = re.match(r"(\d+)", manifest.pg_dump_version or "")
    return restore_tool(int(match.group(1)) if match else None)
