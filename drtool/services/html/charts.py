"""SVG chart geometry, computed here and drawn by the templates (macros.html.j2): linear scales,
the RPO sawtooth of a backups timeline, bars against an objective line. Pure functions of the
values; no markup."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

WIDTH = 760
HEIGHT = 220
LEFT = 72  # room for the y-axis labels
RIGHT = 16
TOP = 14
BOTTOM = 34  # room for the x-axis labels
# An objective this many times above the largest value would flatten every mark to a line:
# the axis then ends just above the values and the objective is named in the caption instead.
OBJECTIVE_OFF_SCALE_FACTOR = 3.0
HEADROOM = 1.1
TICKS = 5


@dataclass(frozen=True)
class Mark:
    """One drawn value: ``shape`` rect (x, y, w, h), circle (x, y, r=w) or polygon (points)."""

    shape: str
    kind: str  # data-mark: backup, gap, drill, day
    css: str
    title: str
    x: float = 0.0
    y: float = 0.0
    w: float = 0.0
    h: float = 0.0
    points: str = ""
    label: str = ""


@dataclass(frozen=True)
class Tick:
    at: float
    label: str


@dataclass(frozen=True)
class Chart:
    name: str
    title: str  # the SVG's accessible title
    marks: list[Mark]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    objective_y: float | None  # the objective line, if on the scale
    objective_label: str
    note: str = ""  # said under the chart (e.g. the objective is off the scale)
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    top: int = TOP
    plot_width: float = field(default=WIDTH - LEFT - RIGHT)
    plot_height: float = field(default=HEIGHT - TOP - BOTTOM)

    @property
    def baseline(self) -> float:
        return self.top + self.plot_height


def value_domain(values: Sequence[float], objective: float | None) -> tuple[float, bool]:
    """The top of a value axis and whether the objective line is on it: the objective and
    the values both fit, unless the objective is far above every value."""
    top = max(values, default=0.0)
    if (
        objective is not None
        and objective > 0
        and (top <= 0 or objective <= top * OBJECTIVE_OFF_SCALE_FACTOR)
    ):
        return max(top, objective) * HEADROOM, True
    return (top * HEADROOM if top > 0 else 1.0), False


def scale(value: float, lo: float, hi: float, out_lo: float, out_hi: float) -> float:
    """``value`` in [lo, hi] mapped linearly onto [out_lo, out_hi] (clamped); a zero-width
    domain maps to the middle."""
    if hi <= lo:
        return (out_lo + out_hi) / 2
    ratio = min(max((value - lo) / (hi - lo), 0.0), 1.0)
    return out_lo + ratio * (out_hi - out_lo)


def time_ticks(start: datetime, end: datetime, count: int = TICKS) -> list[tuple[datetime, str]]:
    """``count`` evenly spaced instants over [start, end], labelled at a precision that tells
    them apart (dates over days, times within a day, seconds within minutes)."""
    span = (end - start).total_seconds()
    if span >= 3 * 86400:
        fmt = "%Y-%m-%d"
    elif span >= 86400:
        fmt = "%m-%d %H:%M"
    elif span >= 600:
        fmt = "%H:%M"
    else:
        fmt = "%H:%M:%S"
    n = max(count, 2)
    return [
        (at, at.strftime(fmt))
        for at in (start + timedelta(seconds=span * i / (n - 1)) for i in range(n))
    ]


# Tick steps that read well on a time axis (seconds): 1s ... 30s, 1m ... 30m, 1h ... 12h, days.
TIME_STEPS = (
    1,
    2,
    5,
    10,
    15,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    3 * 3600,
    6 * 3600,
    12 * 3600,
    86400,
    2 * 86400,
    7 * 86400,
    14 * 86400,
)
BYTE_UNIT = 1024


def nice_step(raw: float, unit: str = "") -> float:
    """The smallest readable step at least ``raw``: from TIME_STEPS for seconds (``unit``
    ``s``), else 1, 2 or 5 times a power of ten (of 1024 for ``unit`` ``B``)."""
    if raw <= 0:
        return 1.0
    if unit == "s":
        if raw < 1:
            return _decimal_step(raw, 10)
        return float(
            next((s for s in TIME_STEPS if s >= raw), _decimal_step(raw / 86400, 10) * 86400)
        )
    if unit == "B" and raw >= 1:
        power = float(BYTE_UNIT) ** int(math.log(raw, BYTE_UNIT))
        return _decimal_step(raw / power, 10) * power
    return _decimal_step(raw, 10)


def _decimal_step(raw: float, base: int) -> float:
    power = float(base) ** math.floor(math.log(raw, base))
    for factor in (1, 2, 5, 10):
        if factor * power >= raw * (1 - 1e-9):
            return factor * power
    return 10 * power


def nice_top(top: float, unit: str, count: int = TICKS - 1) -> tuple[float, float]:
    """(axis top, tick step): ``top`` rounded up to a whole number of readable steps."""
    step = nice_step(top / count, unit)
    return step * max(math.ceil(top / step - 1e-9), 1), step


def _value_ticks(
    top: float, step: float, fmt: Callable[[float], str], plot: tuple[float, float]
) -> list[Tick]:
    y0, y1 = plot
    count = round(top / step)
    return [
        Tick(scale(step * i, 0.0, top, y0, y1), fmt(step * i) if i else "0")
        for i in range(count + 1)
    ]


def _objective(
    top: float, on_scale: bool, objective: float | None, label: str, baseline: float, ceil: float
) -> tuple[float | None, str]:
    if objective is None:
        return None, ""
    if on_scale:
        return scale(objective, 0.0, top, baseline, ceil), f"objective {label}"
    return None, f"The objective ({label}) is far above every value shown and off the scale."


@dataclass(frozen=True)
class Gap:
    """The time between two consecutive backups' snapshots (``open``: from the newest one to
    the time of the report, the current RPO exposure)."""

    start: datetime
    end: datetime
    seconds: float
    over: bool  # longer than the RPO objective
    open: bool
    start_id: str | None
    end_id: str | None


def timeline_chart(
    backups: Sequence[tuple[str, datetime]],
    gaps: Sequence[Gap],
    start: datetime,
    end: datetime,
    objective_seconds: float,
    objective_label: str,
    fmt: Callable[[float], str],
) -> Chart:
    """Backups over [start, end] as dots on the time axis, and the RPO exposure between them as
    a sawtooth: the data at risk grows from each snapshot until the next one. Teeth above the
    objective line are the gaps that breached it."""
    c = Chart("timeline", "Backups and RPO gaps", [], [], [], None, "")
    baseline, ceil = c.baseline, float(c.top)
    x0, x1 = float(c.left), c.left + c.plot_width
    span = (end - start).total_seconds()

    def x(at: datetime) -> float:
        return scale((at - start).total_seconds(), 0.0, span, x0, x1)

    top, on_scale = value_domain([g.seconds for g in gaps], objective_seconds)
    top, step = nice_top(top, "s")
    marks: list[Mark] = []
    for g in gaps:
        gx0, gx1 = x(max(g.start, start)), x(g.end)
        # The exposure at the left edge, when the gap began before the period.
        lead = max((start - g.start).total_seconds(), 0.0)
        y_lead = scale(lead, 0.0, top, baseline, ceil)
        y_peak = scale(g.seconds, 0.0, top, baseline, ceil)
        css = "gap over" if g.over else "gap"
        if g.open:
            css += " open"
        what = "since the newest backup" if g.open else f"between {g.start_id} and {g.end_id}"
        marks.append(
            Mark(
                shape="polygon",
                kind="gap",
                css=css,
                title=f"{fmt(g.seconds)} {what}" + (" (over the objective)" if g.over else ""),
                points=f"{gx0:.1f},{baseline:.1f} {gx0:.1f},{y_lead:.1f} "
                f"{gx1:.1f},{y_peak:.1f} {gx1:.1f},{baseline:.1f}",
                x=gx1,
                y=y_peak,
                label=fmt(g.seconds) if g.over else "",
            )
        )
    for backup_id, at in backups:
        marks.append(
            Mark(
                shape="circle",
                kind="backup",
                css="backup",
                title=f"backup {backup_id} (snapshot {at.isoformat(timespec='seconds')})",
                x=x(at),
                y=baseline,
                w=4.0,
            )
        )
    objective_y, note = _objective(
        top, on_scale, objective_seconds, objective_label, baseline, ceil
    )
    return Chart(
        name="timeline",
        title="Backups and RPO gaps",
        marks=marks,
        x_ticks=[Tick(x(at), label) for at, label in time_ticks(start, end)],
        y_ticks=_value_ticks(top, step, fmt, (baseline, ceil)),
        objective_y=objective_y,
        objective_label=f"RPO {note}" if on_scale else "",
        note="" if on_scale else note.replace("objective", "RPO objective", 1),
    )


@dataclass(frozen=True)
class Bar:
    key: str  # what the bar is (an id, a day)
    label: str  # under the bar
    value: float
    bad: bool  # drawn highlighted (over the objective, a failed drill)
    title: str


def bar_chart(
    name: str,
    title: str,
    kind: str,
    bars: Sequence[Bar],
    objective: float | None,
    objective_label: str,
    fmt: Callable[[float], str],
    unit: str = "s",
) -> Chart:
    """One bar per value, oldest left, against an objective line (if any). Labels under the
    bars are thinned out so that they do not overlap."""
    c = Chart(name, title, [], [], [], None, "")
    baseline, ceil = c.baseline, float(c.top)
    top, on_scale = value_domain([b.value for b in bars], objective)
    top, step = nice_top(top, unit)
    slot = c.plot_width / max(len(bars), 1)
    width = max(min(slot * 0.7, 48.0), 1.0)
    every = max(1, round(len(bars) / 8))
    marks: list[Mark] = []
    ticks: list[Tick] = []
    for i, b in enumerate(bars):
        center = c.left + slot * (i + 0.5)
        y = scale(b.value, 0.0, top, baseline, ceil)
        height = max(baseline - y, 1.5)  # a zero still shows
        marks.append(
            Mark(
                shape="rect",
                kind=kind,
                css="bar bad" if b.bad else "bar",
                title=b.title,
                x=center - width / 2,
                y=baseline - height,
                w=width,
                h=height,
                label=fmt(b.value) if len(bars) <= 12 else "",
            )
        )
        if i % every == 0:
            ticks.append(Tick(center, b.label))
    objective_y, note = _objective(top, on_scale, objective, objective_label, baseline, ceil)
    return Chart(
        name=name,
        title=title,
        marks=marks,
        x_ticks=ticks,
        y_ticks=_value_ticks(top, step, fmt, (baseline, ceil)),
        objective_y=objective_y,
        objective_label=note if on_scale else "",
        note="" if on_scale else note,
    )
