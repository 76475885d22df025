"""The report's arithmetic without servers: RPO gaps between consecutive backups (and the open
one up to now) against the objective, the period cut, the value axis (objective on or off the
scale, readable ticks), and where the timeline and the bars put their marks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from drtool.catalog.records.drills import CheckResult, DrillRecord
from drtool.services.html.charts import (
    Bar,
    bar_chart,
    nice_top,
    scale,
    timeline_chart,
    value_domain,
)
from drtool.services.html.page import environment
from drtool.services.report.gaps import rpo_gaps, worst_gap

T0 = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
HOUR = 3600.0
DAY = 86400.0


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def test_gaps_are_between_consecutive_snapshots_then_open_up_to_now() -> None:
    snapshots = [("c", at(50)), ("a", at(0)), ("b", at(24))]  # any order
    gaps = rpo_gaps(snapshots, at(52), objective_seconds=25 * HOUR)
    assert [(g.start_id, g.end_id, g.seconds, g.over, g.open) for g in gaps] == [
        ("a", "b", 24 * HOUR, False, False),
        ("b", "c", 26 * HOUR, True, False),
        ("c", None, 2 * HOUR, False, True),
    ]
    assert worst_gap(gaps) == gaps[1]


def test_a_gap_that_began_before_the_period_counts_whole_and_older_ones_not_at_all() -> None:
    snapshots = [("a", at(0)), ("b", at(10)), ("c", at(40))]
    gaps = rpo_gaps(snapshots, at(41), objective_seconds=24 * HOUR, since=at(20))
    assert [(g.start_id, g.end_id, g.seconds, g.over) for g in gaps] == [
        ("b", "c", 30 * HOUR, True),
        ("c", None, 1 * HOUR, False),
    ]


def test_no_backup_no_gap_and_an_old_newest_backup_is_an_open_gap_over_the_objective() -> None:
    assert rpo_gaps([], at(10), 24 * HOUR) == []
    [gap] = rpo_gaps([("a", at(0))], at(30), 24 * HOUR)
    assert gap.open and gap.over and gap.seconds == 30 * HOUR
    assert worst_gap([]) is None


def test_objective_is_on_the_scale_unless_far_above_every_value() -> None:
    top, on = value_domain([10.0, 20.0], 30.0)
    assert on and top >= 30.0
    top, on = value_domain([10.0, 50.0], 30.0)
    assert on and top >= 50.0
    top, on = value_domain([5.0, 9.0], 3600.0)  # drills of seconds, objective 1h
    assert not on and 9.0 <= top < 3600.0
    assert value_domain([], 60.0) == (pytest.approx(66.0), True)
    assert value_domain([], None) == (1.0, False)


@pytest.mark.parametrize(
    ("top", "unit", "expected"),
    [
        (41.0, "s", (45.0, 15.0)),
        (3960.0, "s", (5400.0, 1800.0)),
        (0.99, "s", (1.0, 0.5)),
        (5.5 * 2**20, "B", (6 * 2**20, 2 * 2**20)),
        (100.0, "", (100.0, 50.0)),
    ],
)
def test_value_axes_end_on_a_readable_step(
    top: float, unit: str, expected: tuple[float, float]
) -> None:
    assert nice_top(top, unit) == pytest.approx(expected)


def test_scale_is_linear_and_clamped() -> None:
    assert scale(5, 0, 10, 100, 200) == 150
    assert scale(-1, 0, 10, 100, 200) == 100 and scale(11, 0, 10, 100, 200) == 200
    assert scale(3, 3, 3, 0, 10) == 5  # a zero-width domain: the middle


def test_timeline_puts_each_backup_at_its_time_and_marks_gaps_over_the_objective() -> None:
    snapshots = [("a", at(0)), ("b", at(24)), ("c", at(72))]
    now = at(96)
    gaps = rpo_gaps(snapshots, now, 24 * HOUR)
    chart = timeline_chart(snapshots, gaps, at(0), now, 24 * HOUR, "24h", lambda s: f"{s:g}")
    dots = [m for m in chart.marks if m.kind == "backup"]
    teeth = [m for m in chart.marks if m.kind == "gap"]
    assert len(dots) == 3 and len(teeth) == 3
    left, width = chart.left, chart.plot_width
    assert [round(d.x, 1) for d in dots] == [
        round(left + width * f, 1) for f in (0.0, 24 / 96, 72 / 96)
    ]
    assert [t.css for t in teeth] == ["gap", "gap over", "gap open"]
    # The objective line sits where a 24h tooth peaks; the 48h tooth rises above it.
    assert chart.objective_y is not None
    assert teeth[0].y == pytest.approx(chart.objective_y)
    assert teeth[1].y < chart.objective_y and teeth[1].label == "172800"
    assert all(d.y == chart.baseline for d in dots)


def test_bars_are_proportional_oldest_left_and_bad_ones_highlighted() -> None:
    bars = [
        Bar("d1", "d1", 30.0, False, ""),
        Bar("d2", "d2", 60.0, True, ""),
        Bar("d3", "d3", 0.0, False, ""),
    ]
    chart = bar_chart("rto", "RTO", "drill", bars, 45.0, "RTO 45s", str)
    rects = chart.marks
    assert [m.kind for m in rects] == ["drill"] * 3
    assert rects[0].x < rects[1].x < rects[2].x
    assert rects[1].h == pytest.approx(2 * rects[0].h)
    assert rects[2].h > 0  # a zero still shows
    assert [m.css for m in rects] == ["bar", "bar bad", "bar"]
    assert chart.objective_y is not None and chart.note == ""
    far = bar_chart("rto", "RTO", "drill", bars[:1], 3600.0, "RTO 1h", str)
    assert far.objective_y is None and "off the scale" in far.note


def test_what_records_hold_is_escaped_in_the_pages() -> None:
    drill = DrillRecord(
        id="20261101T020000.000Z-abcd",
        created_at=T0,
        verdict="fail",
        checks=[CheckResult(name="<script>alert(1)</script>", ok=False, detail='"><img src=x>')],
    )
    html = str(environment().get_template("macros.html.j2").module.checks(drill))
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
