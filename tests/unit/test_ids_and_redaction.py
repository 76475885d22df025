"""Ids sort by time and are unique; the redactor keeps secrets out of every line."""

from __future__ import annotations

from datetime import UTC, datetime

from drtool.ids import id_time, is_valid_id, new_id
from drtool.log import Redactor


def test_ids_sort_by_time_and_are_unique_within_a_second() -> None:
    moment = datetime(2026, 11, 26, 2, 15, 0, 123000, tzinfo=UTC)
    ids = {new_id(moment) for _ in range(200)}
    assert len(ids) > 150  # 16 random bits: collisions in 200 draws are rare, never all
    one = next(iter(ids))
    assert one.startswith("20261126T021500.123Z-")
    assert is_valid_id(one)
    assert id_time(one) == moment
    later = new_id(datetime(2026, 11, 26, 2, 15, 1, tzinfo=UTC))
    assert all(later > i for i in ids)


def test_redactor_hides_registered_secrets_and_secret_shapes() -> None:
    r = Redactor()
    r.add("hunter2-very-secret")
    line = (
        "connect postgresql://app:p4ss@db:5432/x failed; pw hunter2-very-secret; "
        "password=abc123 key AGE-SECRET-KEY-1QQQQQQQQQQ"
    )
    out = r.redact(line)
    for secret in ("p4ss", "hunter2-very-secret", "abc123", "QQQQQQQQQQ"):
        assert secret not in out
    assert "postgresql://app:***@db:5432/x" in out
