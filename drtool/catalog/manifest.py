"""Versioned manifests: the record that makes an item exist.
Readers accept every version ever written."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self, TypeAlias, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    model_serializer,
)

from drtool.catalog.records.document import load_document, validate
from drtool.errors import IntegrityError

if TYPE_CHECKING:
    # pipeline.store imports the ciphers (cryptography); reading a manifest needs neither.
    from drtool.pipeline.store import StoredObject

MANIFEST_FORMAT = "drtool-manifest"
MANIFEST_VERSION = 1
SUPPORTED_VERSIONS = (1,)
MANIFEST_FILE = "manifest.json"

Kind = Literal["backup", "export", "archive", "drill", "verification", "purge", "segment"]


class ObjectEntry(BaseModel):
    """One stored object: stored (encrypted) size and SHA-256, plaintext size and SHA-256.
    ``encrypted: false`` marks a small plain object stored as is (a backup's RECOVERY.md):
    its stored and plain size and SHA-256 are the same. Entries without the field, every entry
    before it existed, are encrypted objects, and the field stays absent when written back."""

    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)

    name: str
    key: str
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    plain_size: int = Field(ge=0)
    plain_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    encrypted: bool = True

    @model_serializer(mode="wrap")
    def _as_written(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        doc: dict[str, Any] = handler(self)
        if "encrypted" not in self.model_fields_set:
            doc.pop("encrypted", None)
        return doc

    @classmethod
    def of(cls, obj: StoredObject, *, encrypted: bool = True) -> ObjectEntry:
        """The manifest's record of an object the pipeline stored (``encrypted=False``: one
        stored as is, recorded with the marker)."""
        fields = ("name", "key", "size", "sha256", "plain_size", "plain_sha256")
        marker: dict[str, Any] = {} if encrypted else {"encrypted": False}
        return cls(**{name: getattr(obj, name) for name in fields}, **marker)

    def stored(self) -> StoredObject:
        """The pipeline's view of this object, for ``load()``."""
        from drtool.pipeline.store import StoredObject

        return StoredObject(
            name=self.name,
            key=self.key,
            size=self.size,
            sha256=self.sha256,
            plain_size=self.plain_size,
            plain_sha256=self.plain_sha256,
            seconds=0.0,
        )


class Seal(BaseModel):
    """``{"algorithm", "object", "mac"}``: HMAC of the canonical document under the seal key
    of the object it names (docs/format.md, "The manifest seal"). Each part may be missing:
    a damaged seal still parses, so the item is found and refused as tampered (exit 3), not
    skipped as unreadable."""

    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)

    algorithm: str | None = None
    object: str | None = None
    mac: str | None = None


class ManifestBase(BaseModel):
    """The fields every kind of manifest has. Kind-specific fields are declared on the kind's
    model; fields a newer writer adds are kept as extras (read back and sealed unchanged)."""

    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)

    format: Literal["drtool-manifest"] = "drtool-manifest"
    version: int = MANIFEST_VERSION
    id: str
    kind: Kind
    status: Literal["complete"] = "complete"
    created_at: datetime
    finished_at: datetime
    snapshot_at: datetime | None = None
    label: str | None = None
    tool_version: str
    server_version: str | None = None
    pg_dump_version: str | None = None
    database: str | None = None
    objects: list[ObjectEntry] = Field(default_factory=list)
    compression: dict[str, Any] = Field(default_factory=dict)
    encryption: dict[str, Any] = Field(default_factory=dict)
    tables: dict[str, int] = Field(default_factory=dict)
    timings: dict[str, float] = Field(default_factory=dict)
    seal: Seal | None = None
    # The document exactly as stored, for checking the seal against the stored bytes.
    _raw: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_serializer(mode="wrap")
    def _as_written(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """The document as written: a kind-specific field (or the seal) that was never set,
        e.g. one an older manifest lacks, stays absent instead of appearing as its default."""
        doc: dict[str, Any] = handler(self)
        for name in _optional_fields(type(self)):
            if name not in self.model_fields_set:
                doc.pop(name, None)
        return doc

    @property
    def size(self) -> int:
        return sum(o.size for o in self.objects)

    def object(self, name: str) -> ObjectEntry:
        for entry in self.objects:
            if entry.name == name:
                return entry
        raise IntegrityError(
            f"{self.kind} {self.id}: the manifest lists no object {name!r}", obj=name
        )

    def to_json(self) -> bytes:
        doc = self.model_dump(mode="json")
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")

    def sealed(self, key: bytes, obj: str) -> Self:
        """This manifest with a seal: HMAC-SHA256 of its canonical form under the seal key of
        object ``obj`` (derived from that object's age file key; docs/format.md)."""
        from drtool.crypto.age import seal  # cryptography: not needed to read a manifest

        doc = self.model_dump(mode="json")
        doc.pop("seal", None)
        doc["seal"] = {"algorithm": SEAL_ALGORITHM, "object": obj, "mac": seal(canonical(doc), key)}
        out = type(self).model_validate(doc)
        out._raw = json.loads(json.dumps(doc))
        return out

    @property
    def seal_object(self) -> str | None:
        return self.seal.object if self.seal is not None and self.seal.object else None

    def seal_valid(self, key: bytes) -> bool:
        """True if the stored document (every field but the seal) is what was sealed."""
        from drtool.crypto.age import seal_matches

        info = self._raw.get("seal") if self._raw else None
        if not isinstance(info, dict) or info.get("algorithm") != SEAL_ALGORITHM:
            return False
        mac = info.get("mac")
        return isinstance(mac, str) and seal_matches(canonical(self._raw), key, mac)


def _optional_fields(cls: type[ManifestBase]) -> list[str]:
    declared = [n for n in cls.model_fields if n not in ManifestBase.model_fields]
    return ["seal", *declared]


class BundleEntry(BaseModel):
    """One captured file or variable: its name, size and fingerprint, never its value."""

    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)

    kind: Literal["file", "env"]
    name: str  # the variable's name, or the file's name in the bundle and in a restore
    size: int = Field(ge=0)
    fingerprint: str
    path: str | None = None  # a file's configured path


class BundleInfo(BaseModel):
    """A backup's configuration & secrets bundle (docs/bundle.md): the object holding it, the
    fingerprint parameters (with the per-bundle salt) and an entry per file and variable."""

    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)

    object: str
    format: str
    version: int = 1
    captured_at: datetime
    fingerprint: dict[str, Any]
    recipients: list[str] = Field(default_factory=list)
    entries: list[BundleEntry] = Field(default_factory=list)


class TablePart(BaseModel):
    """One data object of a parallel backup: which table (and which ctid range of it) it
    holds, the columns in its COPY, its exact rows, and the length of its psql preamble
    (``SET ...; COPY ... FROM stdin;``) that a restore through COPY skips."""

    model_config = ConfigDict(extra="allow", frozen=True)

    object: str
    table: str  # schema.table
    schema_name: str
    table_name: str
    part: int = Field(ge=1)
    parts: int = Field(ge=1)
    columns: list[str]
    where: str | None = None  # the ctid range, None: the whole table
    rows: int = Field(ge=0)
    header_size: int = Field(ge=0)


class BackupManifest(ManifestBase):
    """A full logical backup (``backups/<id>/``): objects ``dump`` and, if stored, ``globals``
    (``dump_format: custom``), or ``pre-data``, ``post-data`` and ``data-NNNNN`` listed in
    ``parts`` (``dump_format: parallel``). Every field here is absent from some older
    manifest, so each has a default."""

    kind: Literal["backup"] = "backup"
    server_major: int | None = None
    source: str | None = None
    host: str | None = None
    excluded_schemas: list[str] = Field(default_factory=list)
    excluded_table_data: dict[str, int] = Field(default_factory=dict)
    globals: dict[str, str] | None = None
    dump_format: str = "custom"
    platform: str | None = None
    platform_details: dict[str, Any] | None = None
    warnings: list[str] = Field(default_factory=list)
    bundle: BundleInfo | None = None
    stream: StreamPoint | None = None
    # The parallel format: the data objects, and the session settings their rows are in.
    parts: list[TablePart] = Field(default_factory=list)
    copy_settings: dict[str, str] = Field(default_factory=dict)


class StreamPoint(BaseModel):
    """Where a backup's snapshot stands in the change stream (continuous archiving): the WAL
    position read just before the snapshot was taken and the snapshot itself
    (``pg_current_snapshot()``, ``xmin:xmax:xip,...``). Replay on top of this backup skips
    exactly the transactions this snapshot sees."""

    model_config = ConfigDict(extra="allow", frozen=True)

    lsn: str
    snapshot: str


class ExportManifest(ManifestBase):
    """One user's rows (``exports/<user_id>/<id>/``): object ``rows`` (docs/exports.md)."""

    kind: Literal["export"] = "export"
    user_id: str = ""
    users_table: str | None = None
    user_id_column: str | None = None
    users_id_column: str | None = None
    encoding: str | None = None
    table_details: list[dict[str, Any]] | None = None
    warnings: list[str] = Field(default_factory=list)
    not_exported: list[dict[str, Any]] = Field(default_factory=list)
    platform: str | None = None
    server_major: int | None = None
    source: str | None = None
    host: str | None = None


class ArchiveManifest(ManifestBase):
    """An archived row batch (``archive/<policy>/<yyyy>/<mm>/<id>/``): object ``rows``."""

    kind: Literal["archive"] = "archive"
    policy: str
    table: str
    columns: list[str]
    pk: list[str]
    time_column: str
    cutoff: str
    where: dict[str, list[Any]] = Field(default_factory=dict)
    pk_first: list[Any] | None = None
    pk_last: list[Any] | None = None
    time_min: str | None = None
    time_max: str | None = None
    rows: int
    rows_sha256: str
    rows_digest: str | None = None
    encoding: str | None = None
    copy_settings: dict[str, str] = Field(default_factory=dict)


class PurgeManifest(ManifestBase):
    """A purge run's record (no objects): what a purge policy deleted."""

    kind: Literal["purge"] = "purge"
    policy: str
    table: str
    cutoff: str
    where: dict[str, list[Any]] = Field(default_factory=dict)
    deleted: int = 0
    batches: int = 0
    interrupted: bool = False


class SegmentManifest(ManifestBase):
    """A change-stream segment (continuous archiving): committed transactions in commit order,
    as pgoutput messages, in one object. Segments of one generation form a chain: each names
    its predecessor and its sequence number, and its ``from_lsn`` is at or after the
    predecessor's ``to_lsn`` (the slot was advanced over nothing but empty transactions)."""

    kind: Literal["segment"] = "segment"
    slot: str
    generation: str
    generation_lsn: str  # the slot's confirmed position when the generation started
    sequence: int = Field(ge=1)
    predecessor: str | None = None
    from_lsn: str  # the slot's confirmed position when the changes were read
    to_lsn: str  # the end of the last commit stored: the slot is advanced here once stored
    # None: a marker segment without transactions (a schema change seen while nothing flowed).
    first_commit_at: datetime | None = None
    last_commit_at: datetime | None = None
    transactions: int = Field(ge=0)
    changes: int = Field(ge=0)
    # Row changes per table (inserted/updated/deleted/truncated) and every relation's shape.
    relations: dict[str, dict[str, int]] = Field(default_factory=dict)
    # Sequence values read after the segment's last commit (>= their values at any commit in it).
    sequences: dict[str, int] = Field(default_factory=dict)
    # Tables added or changed since the previous check (at ``schema_changed_after``): DDL that
    # logical decoding does not carry; replay from an older base backup must stop before it.
    schema_changes: list[str] = Field(default_factory=list)
    schema_changed_after: datetime | None = None


# Every kind of stored manifest; ``parse_manifest`` picks the model by ``kind``.
Manifest: TypeAlias = (
    BackupManifest | ExportManifest | ArchiveManifest | PurgeManifest | SegmentManifest
)
_MANIFEST = TypeAdapter[Manifest](
    Annotated[Manifest, Field(discriminator="kind")], config=ConfigDict(defer_build=True)
)
M = TypeVar("M", BackupManifest, ExportManifest, ArchiveManifest, PurgeManifest, SegmentManifest)


def expect_kind(manifest: Manifest, model: type[M]) -> M:
    """``manifest`` as ``model`` (its kind's fields typed); another kind is an IntegrityError."""
    if not isinstance(manifest, model):
        wanted = model.model_fields["kind"].default
        raise IntegrityError(
            f"{manifest.kind} {manifest.id}: not a {wanted} manifest", obj="manifest.json"
        )
    return manifest


SEAL_ALGORITHM = "hmac-sha256/age-file-key"


def canonical(doc: dict[str, Any]) -> bytes:
    """The sealed form of a manifest document: compact, sorted JSON without the seal."""
    body = {k: v for k, v in doc.items() if k != "seal"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def parse_manifest(data: bytes, where: str) -> Manifest:
    """Parse and validate a stored manifest (its model chosen by ``kind``); anything malformed
    is an IntegrityError."""
    doc = load_document(data, where, "manifest", supported=SUPPORTED_VERSIONS, obj=MANIFEST_FILE)
    manifest = validate(_MANIFEST, doc, where, "manifest", obj=MANIFEST_FILE)
    manifest._raw = doc
    return manifest
