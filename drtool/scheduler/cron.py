"""Standard five-field crontab expressions, evaluated by ``cronsim`` (Debian cron's semantics),
wired into APScheduler as a trigger.

The semantics are cron's, not APScheduler's: weekdays 0-7 count from Sunday (0 and 7 are both
Sunday) or are named ``sun``-``sat``; months 1-12 or ``jan``-``dec``; ``*``, lists, ranges and
steps (``*/2``, ``1-5/2``) in every field; when both day-of-month and day-of-week are
restricted (neither starts with ``*``), a day matching EITHER fires. Times are wall-clock
times in the job's time zone, across DST as Debian cron runs them: a fixed-time job (minute
and hour without ``*``) whose time is skipped by the spring change runs when the clock jumps
(02:30 -> 03:00), and runs once when the autumn change repeats its hour; a job with ``*`` in
the minute or hour fires at every matching real time (so twice in a repeated hour).

Not accepted, because cron does not have them: a seconds field, ``@daily``-style nicknames,
and the ``L``, ``W``, ``#`` and ``?`` extensions."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger  # type: ignore[import-untyped]
from cronsim import CronSim, CronSimError

FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
# The checked reference start for validation: any time will do, a fixed one keeps it repeatable.
_PROBE = datetime(2000, 1, 1, tzinfo=UTC)
# cronsim gives up after 50 years; an expression that can match (e.g. 29 Feb on a Monday
# with both day fields restricted) matches far sooner, so this only bounds the guard loop.
_MAX_STEPS = 10_000
_EXTENSIONS = {2: re.compile(r"[LW?]"), 4: re.compile(r"[L#?]")}
_DOW_NAMES = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}


def _downward_range(field: str) -> str | None:
    for term in field.lower().split(","):
        low, dash, high = term.partition("/")[0].partition("-")
        if not dash:
            continue
        start = _DOW_NAMES.get(low, int(low) if low.isdigit() else None)
        end = _DOW_NAMES.get(high, int(high) if high.isdigit() else None)
        if start is not None and end is not None and end < start:
            return term
    return None


def parse_cron(expr: str) -> str:
    """``expr`` normalized (single spaces) if it is a valid five-field crontab expression;
    ValueError naming the field otherwise."""
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(
            f"expected five fields (minute hour day-of-month month day-of-week), got {len(fields)}"
        )
    for index, pattern in _EXTENSIONS.items():
        if pattern.search(fields[index].upper()):
            raise ValueError(
                f"{FIELDS[index]} {fields[index]!r}: L, W, # and ? are not standard cron"
            )
    normalized = " ".join(fields)
    try:
        CronSim(normalized, _PROBE)
    except CronSimError as exc:
        field = str(exc).removeprefix("Bad ").strip()
        if field not in FIELDS:
            raise ValueError(str(exc)) from None
        at = FIELDS.index(field)
        value = fields[at]
        hint = ""
        if at == 4 and (term := _downward_range(value)):
            hint = (
                f" (range {term!r} runs downwards; Sunday at the end of a range is 7,"
                " e.g. 5-7 or fri-7)"
            )
        elif at == 2:
            hint = " (1-31, and a day that exists in one of the months)"
        raise ValueError(f"invalid {field} field {value!r}{hint}") from None
    return normalized


def next_fire_at_or_after(expr: str, start: datetime, timezone: ZoneInfo) -> datetime | None:
    """The first fire time of ``expr`` (wall clock in ``timezone``) at or after ``start`` (an
    aware datetime), in ``timezone``; None if there is none within 50 years."""
    start_utc = start.astimezone(UTC)
    # cronsim returns times strictly after the second it is given: start one second earlier
    # (in UTC, keeping the fold) so a fire time equal to ``start`` counts.
    times = CronSim(expr, (start_utc - timedelta(seconds=1)).astimezone(timezone))
    for _ in range(_MAX_STEPS):
        try:
            fire = next(times)
        except StopIteration:
            return None
        # Compared in UTC: aware datetimes sharing a tzinfo compare without their fold, and a
        # fixed-time job in a repeated hour is reported at the first occurrence (which may lie
        # before a start in the second one: then its next day is the answer).
        if fire.astimezone(UTC) >= start_utc:
            return fire
    return None


class CronTrigger(BaseTrigger):  # type: ignore[misc]
    """An APScheduler trigger for a standard crontab expression in a time zone (DST-aware),
    with an optional random delay (jitter) of up to ``jitter`` seconds."""

    __slots__ = ("expr", "jitter", "timezone")

    def __init__(self, expr: str, timezone: str | ZoneInfo, jitter: int | None = None) -> None:
        self.expr = parse_cron(expr)
        self.timezone = timezone if isinstance(timezone, ZoneInfo) else ZoneInfo(timezone)
        self.jitter = jitter

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        # As APScheduler's own CronTrigger: after a previous fire, continue from just after it
        # (or from now, if that is earlier); otherwise from now, inclusive. The arithmetic is
        # done in UTC: on wall-clock times it would lose the fold of a repeated hour.
        now = now.astimezone(UTC)
        if previous_fire_time is not None:
            previous = previous_fire_time.astimezone(UTC)
            start = min(now, previous + timedelta(microseconds=1))
            if start == previous:
                start += timedelta(microseconds=1)
        else:
            start = now
        fire = next_fire_at_or_after(self.expr, start, self.timezone)
        jittered: datetime | None = self._apply_jitter(fire, self.jitter, now)
        return jittered

    def __str__(self) -> str:
        return f"cron[{self.expr}, {self.timezone.key}]"

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} ({self.expr!r}, timezone={self.timezone.key!r}, "
            f"jitter={self.jitter})>"
        )
