"""Finding rehearsal records (``drills/<id>.json``, written by ``rehearse``) by key alone
(reading them: ``drill_records``)."""

from __future__ import annotations

from drtool.ids import is_valid_id
from drtool.storage.base import Storage

DRILLS_PREFIX = "drills/"
DRILL_SUFFIX = ".json"


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
