"""Golden table: crontab expressions -> the next fire times the scheduler's trigger computes,
with cron's own semantics (0 and 7 are Sunday, names, ranges, steps, lists; day-of-month OR
day-of-week when both are restricted; Debian cron's DST rules).

Every expected time was worked out by hand from the calendar, not by the library under test:
2026-12-05 is a Saturday, 2027-01-01 a Friday, 2028-02-29 a Tuesday; Europe/Berlin changes
on Sunday 2026-03-29 (02:00 CET -> 03:00 CEST) and Sunday 2026-10-25 (03:00 CEST -> 02:00 CET);
America/New_York on Sunday 2026-03-08 (02:00 EST -> 03:00 EDT)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from drtool.scheduler.cron import CronTrigger

# Saturday, 10:00 UTC: the start of every row without a start of its own.
SAT = "2026-12-05T10:00:00+00:00"

# (expression, time zone, start, the next fire times as wall-clock times with their offset)
GOLDEN: list[tuple[str, str, str, list[str]]] = [
    # 0-6 is every day from Sunday to Saturday (APScheduler's own 0-6 would be Mon-Sun, and a
    # hand translation to sun-sat was rejected as a downward range).
    ("0 2 * * 0-6", "UTC", SAT, ["2026-12-06T02:00", "2026-12-07T02:00", "2026-12-08T02:00"]),
    # */2 in day-of-week is 0,2,4,6: Sunday, Tuesday, Thursday, Saturday.
    ("0 0 * * */2", "UTC", SAT, ["2026-12-06T00:00", "2026-12-08T00:00", "2026-12-10T00:00"]),
    # 7 is Sunday too; so are 0 and sun.
    ("0 0 * * 7", "UTC", SAT, ["2026-12-06T00:00", "2026-12-13T00:00", "2026-12-20T00:00"]),
    ("0 0 * * 0,7", "UTC", SAT, ["2026-12-06T00:00", "2026-12-13T00:00"]),
    ("0 0 * * sun", "UTC", SAT, ["2026-12-06T00:00", "2026-12-13T00:00"]),
    # A range through Sunday ends on 7: Friday, Saturday, Sunday.
    ("0 0 * * 5-7", "UTC", SAT, ["2026-12-06T00:00", "2026-12-11T00:00", "2026-12-12T00:00"]),
    ("0 22 * * 6,0", "UTC", SAT, ["2026-12-05T22:00", "2026-12-06T22:00", "2026-12-12T22:00"]),
    # Both day fields restricted: the 1st of the month OR any Monday.
    (
        "0 0 1 * 1",
        "UTC",
        SAT,
        [
            "2026-12-07T00:00",
            "2026-12-14T00:00",
            "2026-12-21T00:00",
            "2026-12-28T00:00",
            "2027-01-01T00:00",
            "2027-01-04T00:00",
        ],
    ),
    # The 1st and 15th OR any Friday.
    (
        "30 4 1,15 * 5",
        "UTC",
        SAT,
        [
            "2026-12-11T04:30",
            "2026-12-15T04:30",
            "2026-12-18T04:30",
            "2026-12-25T04:30",
            "2027-01-01T04:30",
            "2027-01-08T04:30",
        ],
    ),
    # The 13th OR any Friday (Sunday the 13th fires too).
    ("0 0 13 * 5", "UTC", SAT, ["2026-12-11T00:00", "2026-12-13T00:00", "2026-12-18T00:00"]),
    # Days 1-7 OR Mondays: the classic surprise, the 6th (a Sunday) fires.
    ("0 0 1-7 * mon", "UTC", SAT, ["2026-12-06T00:00", "2026-12-07T00:00", "2026-12-14T00:00"]),
    # A day field starting with * makes it AND (cron's DOM_STAR rule): odd days that are Mondays.
    ("0 0 */2 * 1", "UTC", SAT, ["2026-12-07T00:00", "2026-12-21T00:00", "2027-01-11T00:00"]),
    ("0 9 * * mon-fri", "UTC", SAT, ["2026-12-07T09:00", "2026-12-08T09:00", "2026-12-09T09:00"]),
    ("0 0 * * 1-5/2", "UTC", SAT, ["2026-12-07T00:00", "2026-12-09T00:00", "2026-12-11T00:00"]),
    ("0 0 * * 3", "UTC", SAT, ["2026-12-09T00:00", "2026-12-16T00:00"]),
    ("0 3 * * 6", "UTC", SAT, ["2026-12-12T03:00", "2026-12-19T03:00", "2026-12-26T03:00"]),
    # Leap day only.
    ("0 0 29 2 *", "UTC", SAT, ["2028-02-29T00:00", "2032-02-29T00:00", "2036-02-29T00:00"]),
    ("45 23 31 * *", "UTC", SAT, ["2026-12-31T23:45", "2027-01-31T23:45", "2027-03-31T23:45"]),
    ("0 0 1 * *", "UTC", SAT, ["2027-01-01T00:00", "2027-02-01T00:00", "2027-03-01T00:00"]),
    ("0 0 1 1 *", "UTC", SAT, ["2027-01-01T00:00", "2028-01-01T00:00", "2029-01-01T00:00"]),
    ("0 12 1 jan,jul *", "UTC", SAT, ["2027-01-01T12:00", "2027-07-01T12:00", "2028-01-01T12:00"]),
    ("0 0 1 */3 *", "UTC", SAT, ["2027-01-01T00:00", "2027-04-01T00:00", "2027-07-01T00:00"]),
    # The start itself counts when it is a fire time.
    ("*/15 * * * *", "UTC", SAT, ["2026-12-05T10:00", "2026-12-05T10:15", "2026-12-05T10:30"]),
    ("0 10 * * *", "UTC", SAT, ["2026-12-05T10:00", "2026-12-06T10:00"]),
    ("0 */6 * * *", "UTC", SAT, ["2026-12-05T12:00", "2026-12-05T18:00", "2026-12-06T00:00"]),
    ("0 8-18/5 * * *", "UTC", SAT, ["2026-12-05T13:00", "2026-12-05T18:00", "2026-12-06T08:00"]),
    ("59 23 * * *", "UTC", SAT, ["2026-12-05T23:59", "2026-12-06T23:59"]),
    ("5 4 * * *", "UTC", SAT, ["2026-12-06T04:05", "2026-12-07T04:05"]),
    # Time zones: wall-clock times in the job's zone.
    ("0 9 * * mon-fri", "Europe/Berlin", SAT, ["2026-12-07T09:00", "2026-12-08T09:00"]),
    ("0 2 * * *", "America/New_York", SAT, ["2026-12-06T02:00", "2026-12-07T02:00"]),
    # Berlin, spring: 02:30 does not exist on 29 March; a fixed-time job runs at the jump.
    (
        "30 2 * * *",
        "Europe/Berlin",
        "2026-03-28T12:00:00+01:00",
        ["2026-03-29T03:00", "2026-03-30T02:30", "2026-03-31T02:30"],
    ),
    (
        "15 2 * * 0",
        "Europe/Berlin",
        "2026-03-28T12:00:00+01:00",
        ["2026-03-29T03:00", "2026-04-05T02:15"],
    ),
    # Hourly across the jump: 01:00 CET, then 03:00 CEST one real hour later.
    (
        "0 * * * *",
        "Europe/Berlin",
        "2026-03-29T00:30:00+01:00",
        ["2026-03-29T01:00", "2026-03-29T03:00", "2026-03-29T04:00"],
    ),
    # Berlin, autumn: 02:30 happens twice on 25 October; a fixed-time job runs once.
    (
        "30 2 * * *",
        "Europe/Berlin",
        "2026-10-24T12:00:00+02:00",
        ["2026-10-25T02:30", "2026-10-26T02:30", "2026-10-27T02:30"],
    ),
    # ... and from inside the repeated hour, after its run, the next is the next day's.
    (
        "30 2 * * *",
        "Europe/Berlin",
        "2026-10-25T02:40:00+01:00",
        ["2026-10-26T02:30"],
    ),
    # Hourly across the repeated hour: 02:00 CEST and 02:00 CET, one real hour apart.
    (
        "0 * * * *",
        "Europe/Berlin",
        "2026-10-25T01:30:00+02:00",
        ["2026-10-25T02:00", "2026-10-25T02:00", "2026-10-25T03:00"],
    ),
    # New York, spring: 02:00 does not exist on 8 March.
    (
        "0 2 * * *",
        "America/New_York",
        "2026-03-07T12:00:00-05:00",
        ["2026-03-08T03:00", "2026-03-09T02:00"],
    ),
]

# The same fire times as UTC instants where the offset is what the row is about.
INSTANTS: dict[tuple[str, str, str], list[str]] = {
    ("30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00+01:00"): [
        "2026-03-29T01:00:00+00:00",
        "2026-03-30T00:30:00+00:00",
        "2026-03-31T00:30:00+00:00",
    ],
    ("0 * * * *", "Europe/Berlin", "2026-03-29T00:30:00+01:00"): [
        "2026-03-29T00:00:00+00:00",
        "2026-03-29T01:00:00+00:00",
        "2026-03-29T02:00:00+00:00",
    ],
    ("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00+02:00"): [
        "2026-10-25T00:30:00+00:00",
        "2026-10-26T01:30:00+00:00",
        "2026-10-27T01:30:00+00:00",
    ],
    ("0 * * * *", "Europe/Berlin", "2026-10-25T01:30:00+02:00"): [
        "2026-10-25T00:00:00+00:00",
        "2026-10-25T01:00:00+00:00",
        "2026-10-25T02:00:00+00:00",
    ],
    ("0 2 * * *", "America/New_York", "2026-03-07T12:00:00-05:00"): [
        "2026-03-08T07:00:00+00:00",
        "2026-03-09T06:00:00+00:00",
    ],
    ("0 9 * * mon-fri", "Europe/Berlin", SAT): [
        "2026-12-07T08:00:00+00:00",
        "2026-12-08T08:00:00+00:00",
    ],
}


def fire_times(expr: str, timezone: str, start: str, count: int) -> list[datetime]:
    """Chained as APScheduler chains them: each call gets the previous fire time."""
    trigger = CronTrigger(expr, timezone)
    at = datetime.fromisoformat(start)
    previous: datetime | None = None
    out: list[datetime] = []
    for _ in range(count):
        fire = trigger.get_next_fire_time(previous, at)
        assert fire is not None
        out.append(fire)
        previous, at = fire, fire
    return out


def test_the_table_is_big_enough() -> None:
    assert len({row[0] for row in GOLDEN}) >= 25
    assert {"Europe/Berlin", "America/New_York", "UTC"} <= {row[1] for row in GOLDEN}


@pytest.mark.parametrize(
    ("expr", "timezone", "start", "expected"),
    GOLDEN,
    ids=[f"{row[0]} {row[1]} {row[2][:10]}" for row in GOLDEN],
)
def test_next_fire_times(expr: str, timezone: str, start: str, expected: list[str]) -> None:
    tz = ZoneInfo(timezone)
    got = fire_times(expr, timezone, start, len(expected))
    assert [t.astimezone(tz).strftime("%Y-%m-%dT%H:%M") for t in got] == expected
    instants = INSTANTS.get((expr, timezone, start))
    if instants is not None:
        assert [t.astimezone(ZoneInfo("UTC")).isoformat() for t in got] == instants
