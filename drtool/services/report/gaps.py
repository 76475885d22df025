"""RPO gaps: the time between consecutive backups' snapshots, and from the newest one to now
(the current exposure), each judged against ``objectives.rpo``."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime

from drtool.services.html.charts import Gap


def rpo_gaps(
    snapshots: Sequence[tuple[str, datetime]],
    now: datetime,
    objective_seconds: float,
    since: datetime | None = None,
) -> list[Gap]:
    """The gaps, oldest first, of backups ``snapshots`` (id, snapshot time; any order): one
    between each two consecutive ones, ending at or after ``since`` (a gap that began before
    the period counts whole), then the open one from the newest to ``now``. No backup: none."""
    ordered = sorted(snapshots, key=lambda s: (s[1], s[0]))
    gaps: list[Gap] = []
    for (prev_id, prev_at), (next_id, next_at) in itertools.pairwise(ordered):
        if since is not None and next_at < since:
            continue
        seconds = round((next_at - prev_at).total_seconds(), 3)
        gaps.append(
            Gap(prev_at, next_at, seconds, seconds > objective_seconds, False, prev_id, next_id)
        )
    if ordered:
        last_id, last_at = ordered[-1]
        seconds = round(max((now - last_at).total_seconds(), 0.0), 3)
        gaps.append(Gap(last_at, now, seconds, seconds > objective_seconds, True, last_id, None))
    return gaps


def worst_gap(gaps: Sequence[Gap]) -> Gap | None:
    return max(gaps, key=lambda g: g.seconds, default=None)
