"""Versioned manifests: the record that makes an item exist.
Readers accept every version ever written."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from drtool.errors import IntegrityError, UsageError

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
        return Manifest.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise IntegrityError(
            f"{where}: manifest is invalid ({loc}: {first['msg']})", obj="manifest.json"
        ) from exc
