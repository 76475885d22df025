"""Finding rehearsal records (``drills/<id>.json``, written by ``rehearse``) by key alone, and
reading the newest readable one."""

from __future__ import annotations

import json
from typing import Any

from drtool.errors import NotFoundInStorage
from drtool.ids import is_valid_id
from drtool.log import get_logger
from drtool.storage.base import Storage

DRILLS_PREFIX = "drills/"
DRILL_SUFFIX = ".json"

log = get_logger("drills")


def drill_ids(storage: Storage) -> list[str]:
    """Ids of every stored drill record, oldest first (ids sort by time); nothing is read."""
    ids: list[str] = []
    for info in storage.list(DRILLS_PREFIX):
        name = info.key.removeprefix(DRILLS_PREFIX)
        if "/" in name or not name.endswith(DRILL_SUFFIX):
            continue
        drill_id = name.removesuffix(DRILL_SUFFIX)
        if is_valid_id(drill_id):
            ids.append(drill_id)
    ids.sort()
    return ids


def _parse(data: bytes, key: str) -> dict[str, Any] | None:
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        log.warning("skipping drill record %s: not valid JSON", key)
        return None
    if not isinstance(doc, dict):
        log.warning("skipping drill record %s: not a JSON object", key)
        return None
    return doc


def latest_drill(storage: Storage) -> dict[str, Any] | None:
    """The newest readable drill record as stored (its ``id`` set from the key if absent), or
    None when there is none. Normally reads one object; a damaged newest one falls back."""
    for drill_id in reversed(drill_ids(storage)):
        key = DRILLS_PREFIX + drill_id + DRILL_SUFFIX
        try:
            doc = _parse(storage.get_bytes(key), key)
        except NotFoundInStorage:
            continue
        if doc is not None:
            doc.setdefault("id", drill_id)
            return doc
    return None
