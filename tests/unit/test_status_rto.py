"""`status` shows a drill's RTO to a tenth of a second below 10 s (a 0.9 s drill is not
"RTO 0s"), and as before from 10 s on."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from drtool.cli.render_status import status_lines
from drtool.services.jobs.health import format_age, format_elapsed, gather_status
from tests.unit.dr_state import T0, Clock, make_context, put_backup, put_drill


def test_sub_ten_second_durations_keep_one_decimal() -> None:
    assert [format_elapsed(s) for s in (0, 0.04, 0.9, 2.4, 9.9)] == [
        "0.0s",
        "0.0s",
        "0.9s",
        "2.4s",
        "9.9s",
    ]


def test_ten_seconds_and_more_read_as_ages_do() -> None:
    for seconds in (9.96, 10, 12.7, 250, 7500, 3 * 86400 + 4 * 3600 + 5):
        assert format_elapsed(seconds) == format_age(seconds)


def test_status_prints_a_sub_second_rto_with_its_decimal(tmp_path: Path) -> None:
    ctx = make_context(tmp_path, Clock(T0 + timedelta(hours=1)))
    put_backup(ctx, T0)
    put_drill(ctx, T0 + timedelta(minutes=30), rto=0.9)
    text = "\n".join(status_lines(gather_status(ctx)))
    assert "RTO 0.9s " in text and "RTO 0s" not in text


def test_status_prints_longer_rtos_as_before(tmp_path: Path) -> None:
    ctx = make_context(tmp_path, Clock(T0 + timedelta(hours=1)))
    put_backup(ctx, T0)
    put_drill(ctx, T0 + timedelta(minutes=30), rto=250.4)
    assert "RTO 4m 10s " in "\n".join(status_lines(gather_status(ctx)))
