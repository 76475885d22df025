"""Archival's storage layout: batch folders ``archive/<policy>/<yyyy>/<mm>/<id>/`` (object +
manifest, plus ``void.json`` when a batch must never be restored), and the journal
``archive/<policy>/journal/<id>.json``: an entry is written before a batch (or purge run)
touches anything and removed once it is settled, so a rerun knows what a crash left."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from drtool.catalog.catalog import MANIFEST_NAME, read_manifest
from drtool.catalog.manifest import Manifest
from drtool.catalog.records.document import parse_record, read_record, readable
from drtool.errors import IntegrityError, NotFoundInStorage
from drtool.storage.base import Storage, check_key

ARCHIVE_PREFIX = "archive/"
JOURNAL_DIR = "journal"
VOID_NAME = "void.json"
ROWS_OBJECT = "rows"
ROWS_FILE = "rows.copy.zst.age"
JOURNAL_FORMAT = "drtool-archive-journal"


def policy_prefix(policy: str) -> str:
    return check_key(ARCHIVE_PREFIX + policy) + "/"


def batch_prefix(policy: str, when: datetime, item_id: str) -> str:
    """``archive/<policy>/<yyyy>/<mm>/<id>/``; yyyy/mm of the archival run (UTC)."""
    return check_key(f"{ARCHIVE_PREFIX}{policy}/{when:%Y}/{when:%m}/{item_id}") + "/"


def journal_key(policy: str, item_id: str) -> str:
    return check_key(f"{ARCHIVE_PREFIX}{policy}/{JOURNAL_DIR}/{item_id}.json")


class JournalEntry(BaseModel):
    """An archive batch or purge run in flight. ``keys`` are the batch's primary keys as text
    (the rows to look for on reconciliation); ``rows_sha256`` the canonical hash of its COPY
    lines, ``rows_digest`` the server-side digest of its rows (pg/archive/session.py)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    format: Literal["drtool-archive-journal"] = "drtool-archive-journal"
    version: int = 1
    kind: Literal["archive-batch", "purge-run"]
    id: str
    policy: str
    prefix: str
    table: str
    created_at: datetime
    cutoff: datetime
    keys: list[list[str]] = Field(default_factory=list)
    rows: int = 0
    rows_sha256: str | None = None
    rows_digest: str | None = None
    deleted: int = 0
    batches: int = 0
    # Purge runs: what the purge record repeats (the database and the policy's condition).
    database: str | None = None
    where: dict[str, list[Any]] = Field(default_factory=dict)

    def to_json(self) -> bytes:
        return (json.dumps(self.model_dump(mode="json"), sort_keys=True) + "\n").encode()


def parse_journal(data: bytes, where: str) -> JournalEntry:
    return parse_record(JournalEntry, data, where, "archive journal entry")


def write_journal(storage: Storage, entry: JournalEntry) -> None:
    storage.put_bytes(journal_key(entry.policy, entry.id), entry.to_json())


def clear_journal(storage: Storage, entry: JournalEntry) -> None:
    storage.delete(journal_key(entry.policy, entry.id))


def read_journal(storage: Storage, policy: str) -> list[JournalEntry]:
    """The policy's journal entries, oldest first; an unreadable one is an IntegrityError
    (never guessed at: it may describe rows that are about to be deleted)."""
    entries: list[JournalEntry] = []
    for info in storage.list(policy_prefix(policy) + JOURNAL_DIR + "/"):
        try:
            entry = read_record(storage, info.key, parse_journal)
        except IntegrityError as exc:
            raise IntegrityError(
                f"archive journal entry {info.key} is unreadable ({exc.message})",
                hint="inspect it (runbooks/archive.md, 'a run was killed') before rerunning",
            ) from exc
        if entry is not None:
            entries.append(entry)
    entries.sort(key=lambda e: e.id)
    return entries


def write_void(storage: Storage, prefix: str, reason: str, at: datetime) -> None:
    doc: dict[str, Any] = {"void": True, "reason": reason, "at": at.isoformat()}
    storage.put_bytes(check_key(prefix + VOID_NAME), (json.dumps(doc) + "\n").encode())


@dataclass(frozen=True)
class ArchiveEntry:
    """A stored archive batch or purge record, with its state."""

    manifest: Manifest
    prefix: str
    policy: str
    void_reason: str | None
    pending: bool

    @property
    def status(self) -> str:
        if self.void_reason is not None:
            return "void"
        return "pending" if self.pending else "archived"


def archive_entries(storage: Storage, policy: str | None = None) -> list[ArchiveEntry]:
    """Every complete batch/purge record (of ``policy``, or all), newest first."""
    prefix = policy_prefix(policy) if policy else ARCHIVE_PREFIX
    manifests: list[str] = []
    voids: set[str] = set()
    journal: set[tuple[str, str]] = set()
    for info in storage.list(prefix):
        parts = info.key.split("/")
        if len(parts) == 4 and parts[2] == JOURNAL_DIR:
            journal.add((parts[1], parts[3].removesuffix(".json")))
        elif len(parts) == 6 and parts[5] == MANIFEST_NAME:
            manifests.append(info.key)
        elif len(parts) == 6 and parts[5] == VOID_NAME:
            voids.add(info.key.removesuffix(VOID_NAME))
    out: list[ArchiveEntry] = []
    for key, manifest in readable(storage, manifests, lambda d, k: (k, read_manifest(d, k))):
        folder = key.removesuffix(MANIFEST_NAME)
        reason = _void_reason(storage, folder) if folder in voids else None
        name = folder.split("/")[1]
        out.append(ArchiveEntry(manifest, folder, name, reason, (name, manifest.id) in journal))
    out.sort(key=lambda e: e.manifest.id, reverse=True)
    return out


def _void_reason(storage: Storage, folder: str) -> str:
    try:
        doc = json.loads(storage.get_bytes(folder + VOID_NAME))
        return str(doc.get("reason") or "void") if isinstance(doc, dict) else "void"
    except (NotFoundInStorage, ValueError):
        return "void"
