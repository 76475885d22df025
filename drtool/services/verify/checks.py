"""The checks ``verify`` runs on one item: the manifest's layout, each object's stored bytes
(no key), or with ``--deep`` each encrypted object decrypted and checked (a plain one, such as
RECOVERY.md, by its stored bytes), the dump's table of contents and the manifest seal. Each
check returns problems; none stops at the first."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import cast

from drtool.catalog.catalog import (
    DUMP_OBJECT,
    MANIFEST_NAME,
    PARALLEL_FORMAT,
    POST_DATA_OBJECT,
    PRE_DATA_OBJECT,
    backup_prefix,
    object_key,
    path_id,
)
from drtool.catalog.manifest import BackupManifest, Manifest, ObjectEntry
from drtool.catalog.records.verifications import Problem
from drtool.crypto.age import open_seal_key
from drtool.crypto.keys import Identity
from drtool.errors import IntegrityError, NotFoundInStorage
from drtool.pg.restore.pg_restore import TocReader, restore_tool
from drtool.pg.tools.find import Tool
from drtool.pipeline.stages import Digest, ProgressFn, hash_tap
from drtool.pipeline.store import check_digest, load
from drtool.services.context import ProgressFactory
from drtool.storage.base import Storage, close_quietly

SEAL_MISMATCH = "manifest does not match its seal: edited, or sealed for another dump object"
TAMPERED_HINT = "do not trust this item: it was changed after it was written; use another backup"
CHANGED_HINT = (
    "the stored bytes changed since the backup; use another backup or a replica "
    "(`--from NAME`; `verify --deep` names the damaged chunk)"
)
MISSING_HINT = "the object was deleted or lost; use another backup or a replica (`--from NAME`)"
DAMAGED_HINT = "the stored object is damaged; use another backup or a replica (`--from NAME`)"


@dataclass(frozen=True)
class KeyedProblem(Problem):
    """A problem with the storage key of the object it concerns (under the storage prefix, as in
    the manifest's ``objects[].key``): what an operator looks for in the bucket. ``None`` when
    no key is known (a manifest asked for by an id that has none)."""

    key: str | None = None

    def record(self) -> Problem:
        """The verification record's form (docs/format.md: object, chunk, problem, hint)."""
        return Problem(self.object, self.chunk, self.problem, self.hint)


def manifest_key(manifest: Manifest) -> str | None:
    """Where ``manifest.json`` of this item is stored."""
    if manifest.kind == "backup":
        return object_key(backup_prefix(manifest.id), MANIFEST_NAME)
    for entry in manifest.objects:
        if path_id(entry.key) == manifest.id:
            return entry.key.rsplit("/", 1)[0] + "/" + MANIFEST_NAME
    return None


def _schema_objects(manifest: Manifest) -> tuple[str, ...]:
    """A backup's pg_dump archives (pg_restore --list must read them): the dump, or in the
    parallel format the pre-data and post-data objects."""
    if manifest.kind != "backup":
        return ()
    if isinstance(manifest, BackupManifest) and manifest.dump_format == PARALLEL_FORMAT:
        return (PRE_DATA_OBJECT, POST_DATA_OBJECT)
    return (DUMP_OBJECT,)


def _about(
    entry: ObjectEntry, problem: str, hint: str | None, chunk: int | None = None
) -> KeyedProblem:
    return KeyedProblem(entry.name, chunk, problem, hint, key=entry.key)


def _about_manifest(manifest: Manifest, problem: str, hint: str | None) -> KeyedProblem:
    return KeyedProblem(MANIFEST_NAME, None, problem, hint, key=manifest_key(manifest))


@dataclass
class Meter:
    """Bytes one item's checks read: stored (encrypted) and, when deep, plaintext."""

    stored: int = 0
    plain: int = 0


class _MeteredStorage:
    """The one Storage method ``load`` uses, counting the stored bytes it reads."""

    def __init__(self, storage: Storage, meter: Meter, progress: ProgressFn) -> None:
        self._storage = storage
        self._meter = meter
        self._progress = progress

    def get(self, key: str) -> Iterator[bytes]:
        for chunk in self._storage.get(key):
            self._meter.stored += len(chunk)
            self._progress(len(chunk))
            yield chunk


def _missing(entry: ObjectEntry) -> KeyedProblem:
    return _about(entry, f"missing: {entry.key} is not in storage", MISSING_HINT)


class Checker:
    """Runs the checks of one verify run; deep when given identities to decrypt with."""

    def __init__(
        self, storage: Storage, identities: Sequence[Identity], progress: ProgressFactory
    ) -> None:
        self.storage = storage
        self.identities = list(identities)
        self.deep = bool(self.identities)
        self.progress = progress
        self._tools: dict[int | None, Tool] = {}

    def item(self, manifest: Manifest, meter: Meter) -> list[KeyedProblem]:
        """Every problem of one item: layout, then the seal (deep), then each object."""
        problems = self.layout(manifest)
        if self.deep:
            problems += self.seal(manifest)
        for entry in manifest.objects:
            progress = self.progress(f"verify {manifest.id} {entry.name}", entry.size)
            # A plain object (encrypted: false) has nothing to decrypt: its stored bytes'
            # SHA-256 is its plaintext's, and the seal authenticates the manifest recording it.
            if self.deep and entry.encrypted and self._can_open(manifest, entry):
                problems += self.deep_object(manifest, entry, meter, progress)
            else:
                problems += self.stored_object(entry, meter, progress)
        return problems

    def _can_open(self, manifest: Manifest, entry: ObjectEntry) -> bool:
        """A backup's bundle may be encrypted only to an escrow key (bundle.recipients): where
        none of ours is among its recipients, its stored bytes are checked instead."""
        bundle = manifest.bundle if isinstance(manifest, BackupManifest) else None
        if bundle is None or entry.name != bundle.object or not bundle.recipients:
            return True
        ours = {identity.recipient().fingerprint() for identity in self.identities}
        return bool(ours & set(bundle.recipients))

    def layout(self, manifest: Manifest) -> list[KeyedProblem]:
        """What the manifest says that cannot be right, checked without reading any object."""
        problems: list[KeyedProblem] = []
        names = [o.name for o in manifest.objects]
        for name in _schema_objects(manifest):
            if name not in names:
                problem = f"the manifest lists no {name} object"
                problems.append(_about_manifest(manifest, problem, TAMPERED_HINT))
        for entry in manifest.objects:
            if path_id(entry.key) != manifest.id:
                problem = f"stored at {entry.key}, outside this item's folder"
                problems.append(_about(entry, problem, TAMPERED_HINT))
        return problems

    def stored_object(
        self, entry: ObjectEntry, meter: Meter, progress: ProgressFn
    ) -> list[KeyedProblem]:
        """Present, and the stored bytes have the manifest's size and SHA-256 (no key needed)."""
        try:
            size = self.storage.stat(entry.key).size
            if size != entry.size:
                problem = (
                    f"stored size is {size} bytes, the manifest records {entry.size} "
                    "(truncated or replaced)"
                )
                return [_about(entry, problem, CHANGED_HINT)]
            digest = Digest()
            for _chunk in hash_tap(self.storage.get(entry.key), digest, progress):
                pass
        except NotFoundInStorage:
            return [_missing(entry)]
        meter.stored += digest.size
        try:
            what = f"object {entry.name} (stored bytes)"
            check_digest(digest, size=entry.size, sha256=entry.sha256, what=what, obj=entry.name)
        except IntegrityError as exc:
            return [_about(entry, exc.message, CHANGED_HINT)]
        return []

    def deep_object(
        self, manifest: Manifest, entry: ObjectEntry, meter: Meter, progress: ProgressFn
    ) -> list[KeyedProblem]:
        """Decrypt and authenticate every chunk, decompress, check both checksums and, for a
        backup's dump, that pg_restore reads its table of contents: one pass over the bytes."""
        storage = cast(Storage, _MeteredStorage(self.storage, meter, progress))
        reader = None
        if entry.name in _schema_objects(manifest):
            # pg_restore --list reads no database: the plain environment is enough.
            reader = TocReader(self._restore_tool(manifest), os.environ, obj=entry.name)
        try:
            stream = load(storage, entry.stored(), self.identities)
            for chunk in reader.tap(stream) if reader else stream:
                meter.plain += len(chunk)
            if reader:
                reader.toc()
        except NotFoundInStorage:
            return [_missing(entry)]
        except IntegrityError as exc:
            hint = exc.hint or DAMAGED_HINT
            named = replace(
                _about(entry, exc.message, hint, exc.chunk), object=exc.obj or entry.name
            )
            return [named]
        finally:
            if reader:
                reader.abort()
        return []

    def seal(self, manifest: Manifest) -> list[KeyedProblem]:
        """The manifest is authentic: its seal matches under the file key of the object it
        names (read from that object's header alone)."""
        name = manifest.seal_object
        if name is None:
            return [_about_manifest(manifest, "the manifest has no seal", TAMPERED_HINT)]
        try:
            entry = manifest.object(name)
        except IntegrityError:
            problem = f"the seal names object {name!r}, which the manifest does not list"
            return [_about_manifest(manifest, problem, TAMPERED_HINT)]
        try:
            stream = self.storage.get(entry.key)
        except NotFoundInStorage:
            problem = f"the seal cannot be checked: object {name} is missing"
            return [_about_manifest(manifest, problem, MISSING_HINT)]
        try:
            key = open_seal_key(stream, self.identities, obj=name)
        except IntegrityError as exc:
            problem = f"the seal cannot be checked: {exc.message}"
            return [_about_manifest(manifest, problem, exc.hint or DAMAGED_HINT)]
        finally:
            close_quietly(stream)
        if manifest.seal_valid(key):
            return []
        return [_about_manifest(manifest, SEAL_MISMATCH, TAMPERED_HINT)]

    def _restore_tool(self, manifest: Manifest) -> Tool:
        # pg_restore must be at least as new as the pg_dump that wrote the archive.
        match = re.match(r"\d+", manifest.pg_dump_version or "")
        major = int(match.group()) if match else None
        if major not in self._tools:
            self._tools[major] = restore_tool(major)
        return self._tools[major]
