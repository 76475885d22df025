"""The catalog: storage layout, item writers (manifest last), listing complete items, resolving
ids."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from drtool.catalog.manifest import MANIFEST_FILE, Kind, Manifest, parse_manifest
from drtool.catalog.records.document import read_record, readable
from drtool.catalog.writer import ItemWriter
from drtool.catalog.writer import object_key as object_key  # part of the layout; re-exported
from drtool.errors import IntegrityError, UsageError
from drtool.ids import is_valid_id
from drtool.storage.base import Storage, check_key

MANIFEST_NAME = MANIFEST_FILE
# A backup's objects: their names in the manifest and their files under backups/<id>/.
DUMP_OBJECT = "dump"
GLOBALS_OBJECT = "globals"
DUMP_FILE = "dump.pgdump.zst.age"
GLOBALS_FILE = "globals.sql.zst.age"
BUNDLE_OBJECT = "bundle"
BUNDLE_FILE = "bundle.tar.zst.age"
# The parallel format (docs/format.md): the schema before and after the data as two
# custom-format dumps, and one psql script (COPY ... FROM stdin) per table part.
PARALLEL_FORMAT = "parallel"  # BackupManifest.dump_format
PRE_DATA_OBJECT = "pre-data"
PRE_DATA_FILE = "pre-data.pgdump.zst.age"
POST_DATA_OBJECT = "post-data"
POST_DATA_FILE = "post-data.pgdump.zst.age"


def data_object(number: int) -> tuple[str, str]:
    """The name and file of the parallel format's ``number``-th data object (1-based)."""
    name = f"data-{number:05d}"
    return name, f"{name}.sql.zst.age"


# A change-stream segment's one object (streams/<slot>/segments/<id>/).
SEGMENT_OBJECT = "changes"
SEGMENT_FILE = "changes.pgoutput.zst.age"
KIND_PREFIX: dict[str, str] = {
    "backup": "backups/",
    "export": "exports/",
    "drill": "drills/",
    "archive": "archive/",  # archived batches and purge records (archive/<policy>/...)
}


def backup_prefix(item_id: str) -> str:
    return check_key(f"backups/{item_id}") + "/"


def segments_prefix(slot: str) -> str:
    return check_key(f"streams/{slot}/segments") + "/"


def segment_prefix(slot: str, item_id: str) -> str:
    return check_key(f"streams/{slot}/segments/{item_id}") + "/"


def export_prefix(user_id: str, item_id: str) -> str:
    """``exports/<user_id>/<id>/``; a user id that is not a safe key segment is a UsageError."""
    return check_key(f"exports/{user_id}/{item_id}") + "/"


def path_id(manifest_key: str) -> str:
    """The item id a manifest's location names: the folder that holds ``manifest.json``."""
    parts = manifest_key.split("/")
    return parts[-2] if len(parts) >= 2 else ""


def check_location(manifest: Manifest, key: str) -> Manifest:
    """A manifest copied into another item's folder is not that item (IntegrityError)."""
    where = path_id(key)
    if manifest.id != where:
        raise IntegrityError(
            f"{key}: the manifest is for {manifest.kind} {manifest.id}, not {where}",
            "the manifest was moved or copied; use another backup",
            obj=MANIFEST_NAME,
        )
    return manifest


def read_manifest(data: bytes, key: str) -> Manifest:
    """The manifest stored at ``key``, which must be in its own item's folder."""
    return check_location(parse_manifest(data, key), key)


@dataclass(frozen=True)
class Listing:
    """Complete items newest first, and the manifests that could not be read."""

    items: list[Manifest]
    unreadable: list[tuple[str, str]]


class Catalog:
    """Reads and writes the catalog in a storage; the manifest is always the last write."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def writer(self, kind: Kind, item_id: str, prefix: str) -> ItemWriter:
        """Write item ``item_id`` under ``prefix``: objects, then the sealed manifest last;
        a failure removes what was stored (``ItemWriter``)."""
        return ItemWriter(self.storage, kind, item_id, prefix)

    def _manifest_keys(self, kind: str) -> Iterator[str]:
        for info in self.storage.list(KIND_PREFIX[kind]):
            if info.key.endswith("/" + MANIFEST_NAME):
                yield info.key

    def listing(self, kind: Kind | None = None) -> Listing:
        kinds = [kind] if kind else ["backup", "export"]
        items: list[Manifest] = []
        unreadable: list[tuple[str, str]] = []
        for each in kinds:
            if each not in KIND_PREFIX:
                continue
            keys = self._manifest_keys(each)
            items += readable(
                self.storage,
                keys,
                read_manifest,
                on_unreadable=lambda key, message: unreadable.append((key, message)),
            )
        items.sort(key=lambda m: m.id, reverse=True)
        return Listing(items, unreadable)

    def get(self, item_id: str, kind: Kind = "backup") -> Manifest:
        """The manifest of ``item_id``; exit 2 if there is no such complete item."""
        if not is_valid_id(item_id):
            raise UsageError(
                f"{item_id!r} is not a drtool id (like 20261126T021500.123Z-7f3a)",
                hint="run `drtool list` to see the ids",
            )
        if kind == "backup":
            key = object_key(backup_prefix(item_id), MANIFEST_NAME)
            found = read_record(self.storage, key, read_manifest)
            if found is not None:
                return found
        elif kind in ("export", "archive"):
            found = self._manifest_by_id(kind, item_id)
            if found is not None:
                return found
        else:
            for manifest in self.listing(kind).items:
                if manifest.id == item_id:
                    return manifest
        raise UsageError(
            f"no complete {kind} {item_id} in {self.storage.description}",
            hint="run `drtool list` to see the ids",
        )

    def _manifest_by_id(self, kind: Kind, item_id: str) -> Manifest | None:
        """An export or archive item by id: one listing of keys, one manifest read (not every
        item's)."""
        suffix = f"/{item_id}/{MANIFEST_NAME}"
        for key in self._manifest_keys(kind):
            if key.endswith(suffix):
                return read_record(self.storage, key, read_manifest)
        return None

    def find(self, item_id: str) -> Manifest:
        """Any kind of item by id: backups first, then exports, then archived batches."""
        try:
            return self.get(item_id, "backup")
        except UsageError:
            if is_valid_id(item_id):
                for kind in ("export", "archive"):
                    if (found := self._manifest_by_id(kind, item_id)) is not None:
                        return found
            raise

    def resolve(self, ref: str, kind: Kind = "backup") -> Manifest:
        """An id, or ``latest``: the newest item whose manifest is present and valid."""
        if ref != "latest":
            return self.get(ref, kind)
        items = self.listing(kind).items
        if not items:
            raise UsageError(
                f"there is no complete {kind} in {self.storage.description}",
                hint="run `drtool backup` first",
            )
        return items[0]
