"""Writing one item: its objects through the data path, then its sealed manifest, last. Every
writer of items (backups, per-user exports, archived batches, purge records) goes through
``ItemWriter``, so an item is never complete-looking without its data, and a failure at any
point (an error, a storage fault, Ctrl-C, an abort) removes what was stored, best effort."""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

from drtool.catalog.manifest import MANIFEST_FILE, Kind, ManifestBase, ObjectEntry
from drtool.errors import DrtoolError, IntegrityError
from drtool.log import get_logger
from drtool.storage.base import Storage, check_key

if TYPE_CHECKING:
    # The data path (cryptography, zstandard) is imported by ``store``, when an object is
    # written: commands that only read the catalog (status, list) do not load it.
    from drtool.crypto.keys import Recipient
    from drtool.pipeline.stages import ProgressFn
    from drtool.pipeline.store import StoredObject

M = TypeVar("M", bound=ManifestBase)

log = get_logger("catalog")


def object_key(prefix: str, name: str) -> str:
    return check_key(prefix + name)


def commit_manifest(storage: Storage, manifest: ManifestBase, prefix: str) -> str:
    """Write the manifest after checking every object it lists is stored with its size."""
    for entry in manifest.objects:
        info = storage.stat(entry.key)
        if info.size != entry.size:
            raise IntegrityError(
                f"{manifest.kind} {manifest.id}: object {entry.name} is {info.size} bytes in "
                f"storage, {entry.size} were written",
                obj=entry.name,
            )
    key = object_key(prefix, MANIFEST_FILE)
    storage.put_bytes(key, manifest.to_json())
    return key


class ItemWriter:
    """``with ItemWriter(storage, kind, item_id, prefix) as w:`` store the objects
    (``w.store``), build the manifest listing ``w.entries()``, ``w.commit(manifest, seal=name)``.
    Leaving the block before ``commit`` (any exception) removes everything under the prefix,
    the manifest first."""

    def __init__(self, storage: Storage, kind: Kind, item_id: str, prefix: str) -> None:
        self.storage = storage
        self.kind = kind
        self.id = item_id
        self.prefix = prefix
        self.committed: ManifestBase | None = None
        self._stored: dict[str, StoredObject] = {}
        self._seal_keys: dict[str, bytes] = {}
        self._plain: set[str] = set()

    def __enter__(self) -> ItemWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None and self.committed is None:
            self.discard(exc)

    def key(self, filename: str) -> str:
        return object_key(self.prefix, filename)

    def store(
        self,
        name: str,
        filename: str,
        chunks: Iterable[bytes],
        *,
        recipients: list[Recipient],
        level: int,
        threads: int = 0,
        progress: ProgressFn | None = None,
    ) -> StoredObject:
        """Stream ``chunks`` through the data path into ``<prefix><filename>`` as object
        ``name``; its seal key is kept for ``commit``."""
        if name in self._stored:
            raise ValueError(f"{self.kind} {self.id}: object {name!r} stored twice")
        from drtool.crypto.age import Encryption
        from drtool.pipeline.store import store

        encryption = Encryption(recipients)
        obj = store(
            self.storage,
            self.key(filename),
            name,
            chunks,
            recipients=recipients,
            level=level,
            threads=threads,
            progress=progress,
            encryption=encryption,
        )
        self._stored[name] = obj
        self._seal_keys[name] = encryption.seal_key
        return obj

    def store_plain(self, name: str, filename: str, data: bytes) -> StoredObject:
        """Store small ``data`` as is (not compressed, not encrypted) into
        ``<prefix><filename>`` as object ``name``: for what must be readable without any key
        (a backup's RECOVERY.md). Never for anything secret. Its size and SHA-256 are listed in
        the sealed manifest like any object's (plain and stored the same, ``encrypted: false``),
        so the seal authenticates it; it has no seal key of its own."""
        from drtool.pipeline.store import StoredObject  # the data path's type, loaded lazily

        if name in self._stored:
            raise ValueError(f"{self.kind} {self.id}: object {name!r} stored twice")
        started = time.monotonic()
        key = self.key(filename)
        self.storage.put_bytes(key, data)
        sha256 = hashlib.sha256(data).hexdigest()
        obj = StoredObject(
            name=name,
            key=key,
            size=len(data),
            sha256=sha256,
            plain_size=len(data),
            plain_sha256=sha256,
            seconds=time.monotonic() - started,
        )
        self._stored[name] = obj
        self._plain.add(name)
        return obj

    def _entry(self, obj: StoredObject) -> ObjectEntry:
        return ObjectEntry.of(obj, encrypted=obj.name not in self._plain)

    def entries(self) -> list[ObjectEntry]:
        """The manifest's ``objects``: every object stored so far, in order."""
        return [self._entry(obj) for obj in self._stored.values()]

    def commit(self, manifest: M, *, seal: str | None) -> M:
        """Seal ``manifest`` with the seal key of object ``seal`` (None: an item without
        objects, such as a purge record, is not sealed) and write it, last. Every listed object
        must be one this writer stored, with the size and digest it wrote, and in storage with
        that size; every stored object must be listed."""
        what = f"{self.kind} {self.id}"
        if manifest.id != self.id or manifest.kind != self.kind:
            raise ValueError(f"{what}: the manifest is for {manifest.kind} {manifest.id}")
        for entry in manifest.objects:
            ours = self._stored.get(entry.name)
            if ours is None or self._entry(ours) != entry:
                raise IntegrityError(
                    f"{what}: the manifest lists object {entry.name} as it was not stored "
                    f"(size {entry.size}, key {entry.key})",
                    obj=entry.name,
                )
        unlisted = set(self._stored) - {entry.name for entry in manifest.objects}
        if unlisted:
            raise ValueError(f"{what}: stored objects missing from the manifest: {unlisted}")
        if seal is not None:
            if seal not in self._seal_keys:
                raise ValueError(f"{what}: no stored object {seal!r} to seal the manifest with")
            manifest = manifest.sealed(self._seal_keys[seal], seal)
        commit_manifest(self.storage, manifest, self.prefix)
        self.committed = manifest
        return manifest

    def discard(self, cause: BaseException | None = None) -> None:
        """Best effort: remove the manifest (if it was written) and then every object under the
        prefix; what cannot be removed now is left for ``prune`` (abandoned uploads)."""
        reason = f" ({cause!r})" if cause is not None else ""
        log.warning("%s %s failed%s: removing what it stored", self.kind, self.id, reason)
        keys = [self.key(MANIFEST_FILE), *(obj.key for obj in self._stored.values())]
        with contextlib.suppress(DrtoolError):
            keys += [info.key for info in self.storage.list(self.prefix)]
        for key in dict.fromkeys(keys):
            try:
                self.storage.delete(key)
            except DrtoolError as exc:
                log.warning("could not remove %s (prune removes it later): %s", key, exc.message)
