"""Copying one item to a replica: each object copied (skipped when the replica already holds
it with the right size and SHA-256: a rerun after a kill copies nothing twice) and verified
there from its stored bytes, then the manifest's bytes, unchanged, last."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from drtool.catalog.catalog import read_manifest
from drtool.errors import DrtoolError, IntegrityError, NotFoundInStorage
from drtool.log import get_logger
from drtool.services.replicate.plan import ItemToCopy, ObjectToCopy
from drtool.storage.base import Storage
from drtool.storage.copy import copy_object, digest_of

log = get_logger("replicate")


@dataclass(frozen=True)
class ItemCopied:
    """How one item went: the bytes copied (0 when everything was already there)."""

    item: ItemToCopy
    bytes: int
    server_side: bool


class ItemCopier:
    """Copies items from ``primary`` to ``replica``; thread-safe (no state per item)."""

    def __init__(
        self,
        primary: Storage,
        replica: Storage,
        *,
        replica_name: str,
        progress: Callable[[int], None],
        check_abort: Callable[[], None],
        multipart_threshold: int,
    ) -> None:
        self.primary = primary
        self.replica = replica
        self.name = replica_name
        self.progress = progress
        self.check_abort = check_abort
        self.multipart_threshold = multipart_threshold

    def copy(self, item: ItemToCopy) -> ItemCopied:
        copied, server_side = 0, False
        for obj in item.objects:
            self.check_abort()
            n, server = self._object(item, obj)
            copied += n
            server_side = server_side or server
        if item.manifest is not None:
            self.check_abort()
            copied += self._manifest(item, item.manifest)
        return ItemCopied(item, copied, server_side)

    def _what(self, item: ItemToCopy, key: str) -> str:
        return f"{item.kind} {item.id}: {key}"

    def _object(self, item: ItemToCopy, obj: ObjectToCopy) -> tuple[int, bool]:
        """Copy and verify one object; (bytes copied, server-side?)."""
        if obj.sha256 is not None and self._already_there(obj):
            self.progress(obj.size or 0)
            return 0, False
        try:
            done = copy_object(
                self.primary,
                self.replica,
                obj.key,
                size=obj.size,
                sha256=obj.sha256,
                # Records and void markers are not in the planned total: no progress for them.
                progress=self.progress if obj.size is not None else None,
                multipart_threshold=self.multipart_threshold,
                # A record has no reference digest but the bytes that pass: stream it.
                server_side=obj.sha256 is not None,
            )
        except IntegrityError as exc:
            raise IntegrityError(
                f"{self._what(item, obj.key)}: not copied: the primary's object is damaged "
                f"({exc.message})",
                hint="run `drtool verify --all` on the primary; the replica keeps its last "
                "good copies",
                obj=obj.key,
            ) from exc
        expected = (obj.size, obj.sha256) if obj.sha256 is not None else (done.size, done.sha256)
        self._verify(item, obj.key, expected[0], expected[1], server_side=done.server_side)
        return done.size, done.server_side

    def _already_there(self, obj: ObjectToCopy) -> bool:
        try:
            if self.replica.stat(obj.key).size != obj.size:
                return False
            return digest_of(self.replica, obj.key) == (obj.size, obj.sha256)
        except NotFoundInStorage:
            return False

    def _verify(
        self, item: ItemToCopy, key: str, size: int | None, sha256: str | None, *, server_side: bool
    ) -> None:
        """The replica's stored bytes are the expected ones, else the copy is removed."""
        stored = digest_of(self.replica, key)
        if stored == (size, sha256):
            return
        self._remove(key)
        why = (
            "the primary's object is damaged (a server-side copy moves its bytes as they are)"
            if server_side
            else "the copy was damaged in transit or at rest on the replica"
        )
        raise IntegrityError(
            f"{self._what(item, key)}: on replica {self.name} {stored[0]} bytes with a "
            f"different SHA-256 than expected ({size} bytes): {why}; the copy was removed",
            hint="run `drtool verify --all` on the primary, then `drtool replicate` again",
            obj=key,
        )

    def _manifest(self, item: ItemToCopy, key: str) -> int:
        """The primary's manifest bytes, unchanged (they are sealed), written last."""
        data = self.primary.get_bytes(key)
        manifest = read_manifest(data, key)
        listed = {(o.key, o.size, o.sha256) for o in manifest.objects}
        planned = {(o.key, o.size, o.sha256) for o in item.objects if o.sha256 is not None}
        if manifest.id != item.id or listed != planned:
            raise IntegrityError(
                f"{self._what(item, key)}: the manifest changed while it was replicated",
                hint="run `drtool replicate` again",
                obj=key,
            )
        self.replica.put_bytes(key, data)
        self._verify(item, key, len(data), hashlib.sha256(data).hexdigest(), server_side=False)
        return len(data)

    def _remove(self, key: str) -> None:
        try:
            self.replica.delete(key)
        except DrtoolError as exc:
            log.warning("could not remove %s from replica %s: %s", key, self.name, exc.message)
