"""The change stream's state record, ``streams/<slot>/state.json``: rewritten by ``stream run``
after every cycle (never under Object Lock), read by ``stream status``, ``status`` and metrics.
It is a claim of the stream process, not part of the chain: the segments' manifests are."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from drtool.catalog.records.document import document_bytes, parse_record, readable
from drtool.storage.base import Storage, check_key

STATE_FORMAT = "drtool-stream-state"
SUPPORTED_VERSIONS = (1,)


class StreamState(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    format: Literal["drtool-stream-state"] = "drtool-stream-state"
    version: int = 1
    slot: str
    generation: str
    generation_lsn: str
    running: bool
    host: str | None = None
    pid: int | None = None
    updated_at: datetime
    # Every change committed before this time is in a stored segment (or was empty).
    stored_through_at: datetime | None = None
    newest_segment: str | None = None
    newest_sequence: int = 0
    newest_to_lsn: str | None = None
    # The slot was advanced to here over transactions with nothing published (not a segment).
    empty_through_lsn: str | None = None
    slot_retained_bytes: int | None = None
    slot_pending_bytes: int | None = None
    segments_stored: int = Field(default=0, ge=0)  # by this process
    changes_stored: int = Field(default=0, ge=0)
    changes_per_second: float | None = None
    not_replayable: list[str] = Field(default_factory=list)  # INSERT/TRUNCATE only
    not_captured: list[str] = Field(default_factory=list)  # not ownable: not published at all
    last_error: str | None = None
    base_backup_due: bool = False
    # Every published table's shape (columns, types, replica identity) when last checked, so
    # DDL while the stream was stopped is seen when it starts again.
    table_shapes: dict[str, str] = Field(default_factory=dict)
    stopped_at: datetime | None = None


def state_key(slot: str) -> str:
    return check_key(f"streams/{slot}/state.json")


def parse_state(data: bytes, where: str) -> StreamState:
    return parse_record(StreamState, data, where, "stream state", supported=SUPPORTED_VERSIONS)


def read_state(storage: Storage, slot: str) -> StreamState | None:
    return next(readable(storage, [state_key(slot)], parse_state), None)


def write_state(storage: Storage, state: StreamState) -> None:
    storage.put_bytes(state_key(state.slot), document_bytes(state))
