"""Time-sortable, unique item ids: ``20261126T021500.123Z-7f3a``."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

ID_PATTERN = re.compile(r"^\d{8}T\d{6}\.\d{3}Z-[0-9a-f]{4}$")


def new_id(now: datetime | None = None) -> str:
    """A new id for ``now`` (UTC): millisecond time plus 16 random bits."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    stamp = moment.strftime("%Y%m%dT%H%M%S") + f".{moment.microsecond // 1000:03d}Z"
    return f"{stamp}-{secrets.token_hex(2)}"


def is_valid_id(value: str) -> bool:
    return bool(ID_PATTERN.match(value))


def id_time(item_id: str) -> datetime:
    """The creation time encoded in an id."""
    stamp = item_id.split("-", 1)[0]
    return datetime.strptime(stamp, "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=UTC)
