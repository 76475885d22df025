"""Binding an item's manifest to one of its objects before trusting either: the object's
stored size, then the manifest's seal keyed by that object's age file key (docs/format.md)."""

from __future__ import annotations

from drtool.catalog.manifest import Manifest
from drtool.crypto.age import open_seal_key
from drtool.crypto.keys import Identity
from drtool.errors import IntegrityError, NotFoundInStorage
from drtool.storage.base import Storage, close_quietly


def check_seal(
    storage: Storage,
    manifest: Manifest,
    name: str,
    identities: list[Identity],
    *,
    what: str,
    hint: str,
) -> None:
    """Bind object ``name`` to ``manifest`` before trusting either: its stored size, then the
    manifest's seal keyed by the object's age file key. A swapped or truncated object, an
    edited manifest and a wrong key all fail here (IntegrityError, exit 3)."""
    obj = manifest.object(name)
    try:
        size = storage.stat(obj.key).size
    except NotFoundInStorage:
        raise IntegrityError(
            f"{what}: object {name} is missing ({obj.key})", hint=hint, obj=name
        ) from None
    if size != obj.size:
        raise IntegrityError(
            f"{what}: object {name} is {size} bytes in storage, the manifest records {obj.size}",
            hint=hint,
            obj=name,
        )
    head = storage.get(obj.key)
    try:
        key = open_seal_key(head, identities, obj=name)
    finally:
        close_quietly(head)
    if manifest.seal_object != name or not manifest.seal_valid(key):
        raise IntegrityError(
            f"{what}: the manifest's seal does not match the {name} object: the manifest was "
            "edited, or the object was replaced (e.g. swapped in from another item)",
            hint=hint,
            obj="manifest.json",
        )
