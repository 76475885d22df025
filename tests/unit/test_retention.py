"""Retention planning against golden cases (tests/golden/retention/*.json), restic-style:
input timestamps, a policy, the newest verified id, and the exact expected plan with reasons."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from drtool.config import RetentionConfig
from drtool.services.retention.plan import (
    FUTURE_REASON,
    NEWEST_REASON,
    NEWEST_VERIFIED_REASON,
    BackupFacts,
    ExportFacts,
    plan_exports,
    plan_retention,
)

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "retention"
CASES = sorted(GOLDEN.glob("*.json"))


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


def test_the_golden_cases_cover_the_required_situations() -> None:
    names = {path.stem for path in CASES}
    assert {
        "all_keep_zero",
        "newest_unverified",
        "several_per_day",
        "gaps",
        "year_boundary",
        "typical_60_nightly_default_policy",
    } <= names


@pytest.mark.parametrize("path", CASES, ids=[path.stem for path in CASES])
def test_retention_plan_matches_golden_case(path: Path) -> None:
    case = load(path)
    backups = [BackupFacts(at, parse_time(at)) for at in case["backups"]]
    plan = plan_retention(
        backups, RetentionConfig(**case["policy"]), parse_time(case["now"]), case["newest_verified"]
    )
    assert plan.keep == case["expected"]["keep"]
    assert plan.remove == case["expected"]["remove"]
    assert set(plan.keep) | set(plan.remove) == {b.id for b in backups}
    assert not set(plan.keep) & set(plan.remove)


@pytest.mark.parametrize("path", CASES, ids=[path.stem for path in CASES])
def test_newest_and_newest_verified_are_never_removed(path: Path) -> None:
    case = load(path)
    backups = [BackupFacts(at, parse_time(at)) for at in case["backups"]]
    zero = RetentionConfig(keep_last=0, keep_daily=0, keep_weekly=0, keep_monthly=0, keep_yearly=0)
    for policy in (RetentionConfig(**case["policy"]), zero):
        plan = plan_retention(backups, policy, parse_time(case["now"]), case["newest_verified"])
        newest = max(backups, key=lambda b: b.at).id
        assert NEWEST_REASON in plan.keep[newest]
        if case["newest_verified"] is not None:
            assert NEWEST_VERIFIED_REASON in plan.keep[case["newest_verified"]]


def test_an_empty_catalog_plans_nothing() -> None:
    plan = plan_retention([], RetentionConfig(), datetime(2026, 1, 1, tzinfo=UTC), None)
    assert plan.keep == {} and plan.remove == {}


def test_a_verified_id_that_is_not_listed_is_ignored() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    zero = RetentionConfig(keep_last=0, keep_daily=0, keep_weekly=0, keep_monthly=0, keep_yearly=0)
    plan = plan_retention([BackupFacts("a", at)], zero, at, "gone")
    assert plan.keep == {"a": [NEWEST_REASON]}


def test_a_backup_dated_after_now_is_kept() -> None:
    now = datetime(2026, 1, 10, tzinfo=UTC)
    zero = RetentionConfig(keep_last=0, keep_daily=0, keep_weekly=0, keep_monthly=0, keep_yearly=0)
    backups = [
        BackupFacts("future", now + timedelta(days=2)),
        BackupFacts("later", now + timedelta(days=1)),
        BackupFacts("old", now - timedelta(days=5)),
    ]
    plan = plan_retention(backups, zero, now, None)
    assert plan.keep == {"future": [NEWEST_REASON, FUTURE_REASON], "later": [FUTURE_REASON]}
    assert list(plan.remove) == ["old"]


def test_old_exports_go_but_each_users_newest_stays() -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    exports = [
        ExportFacts("u1-new", "u1", now - timedelta(days=1)),
        ExportFacts("u1-mid", "u1", now - timedelta(days=29)),
        ExportFacts("u1-old", "u1", now - timedelta(days=31)),
        ExportFacts("u2-only", "u2", now - timedelta(days=400)),
    ]
    plan = plan_exports(exports, timedelta(days=30), now)
    assert set(plan.keep) == {"u1-new", "u1-mid", "u2-only"}
    assert plan.keep["u2-only"] == ["newest export of user u2"]
    assert plan.remove == {"u1-old": "older than exports_max_age (30d)"}
