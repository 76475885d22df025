"""Versioned manifests: the record that makes an item exist.
Readers accept every version ever written."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from drtool.crypto.age import seal, seal_matches
from drtool.errors import IntegrityError, UsageError
from drtool.pipeline.store import StoredObject

MANIFEST_FORMAT = "drtool-manifest"
MANIFEST_VERSION = 1
SUPPORTED_VERSIONS = (1,)

Kind = Literal["backup", "export", "archive", "drill", "verification", "purge"]


class ObjectEntry(BaseModel):
    """One stored object: stored (encrypted) size and SHA-256, plaintext size and SHA-256."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str
    key: str
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    plain_size: int = Field(ge=0)
    plain_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")

    @classmethod
    def of(cls, obj: StoredObject) -> ObjectEntry:
        """The manifest's record of an object the pipeline stored."""
        fields = ("name", "key", "size", "sha256", "plain_size", "plain_sha256")
        return cls(**{name: getattr(obj, name) for name in fields})

    def stored(self) -> StoredObject:
        """The pipeline's view of this object, for ``load()``."""
        return StoredObject(
            name=self.name,
            key=self.key,
            size=self.size,
            sha256=self.sha256,
            plain_size=self.plain_size,
            plain_sha256=self.plain_sha256,
            seconds=0.0,
        )


class Manifest(BaseModel):
    """Common manifest fields; kind-specific facts ride along as extra fields."""

    model_config = ConfigDict(extra="allow", frozen=True)

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
    # The document exactly as stored, for checking the seal against the stored bytes.
    _raw: dict[str, Any] = PrivateAttr(default_factory=dict)

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

    def sealed(self, key: bytes, obj: str) -> Manifest:
        """This manifest with a seal: HMAC-SHA256 of its canonical form under the seal key of
        object ``obj`` (derived from that object's age file key; docs/format.md)."""
        doc = self.model_dump(mode="json")
        doc.pop("seal", None)
        doc["seal"] = {"algorithm": SEAL_ALGORITHM, "object": obj, "mac": seal(canonical(doc), key)}
        out = Manifest.model_validate(doc)
        out._raw = json.loads(json.dumps(doc))
        return out

    @property
    def seal_object(self) -> str | None:
        info = (self.model_extra or {}).get("seal")
        return str(info.get("object")) if isinstance(info, dict) and info.get("object") else None

    def seal_valid(self, key: bytes) -> bool:
        """True if the stored document (every field but the seal) is what was sealed."""
        info = self._raw.get("seal") if self._raw else None
        if not isinstance(info, dict) or info.get("algorithm") != SEAL_ALGORITHM:
            return False
        mac = info.get("mac")
        return isinstance(mac, str) and seal_matches(canonical(self._raw), key, mac)


SEAL_ALGORITHM = "hmac-sha256/age-file-key"


def canonical(doc: dict[str, Any]) -> bytes:
    """The sealed form of a manifest document: compact, sorted JSON without the seal."""
    body = {k: v for k, v in doc.items() if k != "seal"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def parse_manifest(data: bytes, where: str) -> Manifest:
    """Parse and validate a stored manifest; anything malformed is an IntegrityError."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"{where}: manifest is not valid JSON", obj="manifest.json") from exc
    if not isinstance(doc, dict):
        raise IntegrityError(f"{where}: manifest is not a JSON object", obj="manifest.json")
    version = doc.get("version")
    if isinstance(version, int) and version > max(SUPPORTED_VERSIONS):
        raise UsageError(
            f"{where}: manifest version {version} was written by a newer drtool",
            hint="upgrade drtool to read it",
        )
    try:
        manifest = Manifest.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise IntegrityError(
            f"{where}: manifest is invalid ({loc}: {first['msg']})", obj="manifest.json"
        ) from exc
    manifest._raw = doc
    return manifest
