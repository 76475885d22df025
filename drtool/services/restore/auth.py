"""Authenticating a backup before a restore trusts it: the dump object bound to its manifest
by the manifest's seal, the globals loaded and checked whole."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from drtool.catalog.catalog import (
    DUMP_OBJECT,
    GLOBALS_OBJECT,
    PARALLEL_FORMAT,
    POST_DATA_OBJECT,
    PRE_DATA_OBJECT,
    backup_prefix,
)
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
        """The dump's plaintext, authenticated chunk by chunk (from the start, each call).
        In the parallel format, the dump is the ``pre-data`` object."""
        return load(self.storage, self.dump, self.identities, progress=progress)

    @property
    def parallel(self) -> bool:
        return is_parallel(self.manifest)

    def object_chunks(self, name: str, progress: ProgressFn | None = None) -> Iterator[bytes]:
        """Another object's plaintext, authenticated chunk by chunk."""
        entry = self.manifest.object(name).stored()
        return load(self.storage, entry, self.identities, progress=progress)


def is_parallel(manifest: Manifest) -> bool:
    return isinstance(manifest, BackupManifest) and manifest.dump_format == PARALLEL_FORMAT


def resolve_backup(ctx: Context, ref: str) -> Manifest:
    manifest = ctx.catalog.resolve(ref, "backup")
    if ref != "latest" and manifest.id != ref:
        raise IntegrityError(
            f"backup {ref}: its manifest names another item ({manifest.id})", obj="manifest.json"
        )
    if isinstance(manifest, BackupManifest) and manifest.dump_format not in (
        "custom",
        PARALLEL_FORMAT,
    ):
        raise UsageError(
            f"backup {manifest.id}: dump format {manifest.dump_format!r} is not one this "
            "drtool restores",
            hint="restore it with a newer drtool",
        )
    return manifest


def _check_parallel(storage: Storage, manifest: BackupManifest, what: str, hint: str) -> None:
    """The parallel format's layout: both schema objects, every part naming a listed object
    (each object at most once), and every object in storage with its recorded size."""
    names = {o.name for o in manifest.objects}
    problems = [f"no {n} object" for n in (PRE_DATA_OBJECT, POST_DATA_OBJECT) if n not in names]
    seen: set[str] = set()
    for part in manifest.parts:
        if part.object not in names or part.object in seen:
            problems.append(f"part {part.part} of {part.table} names object {part.object!r}")
        seen.add(part.object)
    if problems:
        raise IntegrityError(
            f"{what}: the manifest is inconsistent: {'; '.join(problems[:3])}",
            hint=hint,
            obj="manifest.json",
        )
    for entry in manifest.objects:
        try:
            size = storage.stat(entry.key).size
        except NotFoundInStorage:
            raise IntegrityError(
                f"{what}: object {entry.name} is missing ({entry.key})", hint=hint, obj=entry.name
            ) from None
        if size != entry.size:
            raise IntegrityError(
                f"{what}: object {entry.name} is {size} bytes in storage, the manifest "
                f"records {entry.size}",
                hint=hint,
                obj=entry.name,
            )


def authenticate(ctx: Context, manifest: Manifest, identities: list[Identity]) -> Authenticated:
    """Bind the dump object to this manifest before a byte reaches a target: stored size, then
    the manifest's seal (keyed by the dump's age file key) - a swapped object, an edited
    manifest and a wrong key all fail here (exit 3). The globals are loaded whole (small).

    The parallel format: every object's stored size is checked first, then the seal keyed
    by the ``pre-data`` object (the manifest binds every other object by size and SHA-256,
    each checked as it is read)."""
    what = f"backup {manifest.id}"
    hint = (
        "nothing was restored; restore another backup (`drtool list`), and run "
        "`drtool verify --deep`"
    )
    parallel = is_parallel(manifest)
    sealed_by = PRE_DATA_OBJECT if parallel else DUMP_OBJECT
    dump = manifest.object(sealed_by)
    outside = [o.name for o in manifest.objects if not o.key.startswith(backup_prefix(manifest.id))]
    if outside:
        raise IntegrityError(
            f"{what}: the manifest lists objects outside its folder: {', '.join(outside)}",
            obj="manifest.json",
        )
    if parallel:
        assert isinstance(manifest, BackupManifest)
        _check_parallel(ctx.storage, manifest, what, hint)
    check_seal(ctx.storage, manifest, sealed_by, identities, what=what, hint=hint)
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
