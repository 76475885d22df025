"""Helpers for the audit trail tests: a context on a storage, appends, the stored records."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from drtool.catalog.records.audit import AUDIT_PREFIX, is_record_key
from drtool.config import Config, StorageConfig
from drtool.services.audit.trail import write_audit_record
from drtool.services.context import Context
from drtool.storage import Storage, open_storage

# What SPEC says an audit record holds.
SPEC_FIELDS = {
    "id",
    "at",
    "command",
    "actor",
    "items",
    "target",
    "outcome",
    "exit_code",
    "prev_sha256",
}


def context(storage: Storage) -> Context:
    return Context(Config(storage=StorageConfig()), storage, lambda: datetime.now(UTC))


def append(storage: Storage, n: int, command: str = "restore") -> None:
    ctx = context(storage)
    for i in range(n):
        write_audit_record(
            ctx, command, items=[f"backup:x{i}"], target="db:5432/app", outcome="succeeded"
        )


def append_from_process(config_json: str, n: int, tag: str) -> None:
    """A child process's appends (multiprocessing, spawn): its own storage client."""
    config = StorageConfig.model_validate(json.loads(config_json))
    storage = open_storage(config)
    append(storage, n, command=f"restore-{tag}")


def record_keys(storage: Storage) -> list[str]:
    return sorted(i.key for i in storage.list(AUDIT_PREFIX) if is_record_key(i.key))


def records(storage: Storage) -> list[dict[str, Any]]:
    return [json.loads(storage.get_bytes(k)) for k in record_keys(storage)]


def storage_config_json(config: StorageConfig) -> str:
    doc = config.model_dump(mode="json")
    for secret in ("access_key_id", "secret_access_key"):
        value = getattr(config, secret)
        doc[secret] = value.get_secret_value() if value is not None else None
    return json.dumps(doc)
