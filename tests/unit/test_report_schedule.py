"""A schedule can run `report`: its command line is parsed by the CLI's own options."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from drtool.cli.schedule_line import parse_schedule_command
from drtool.errors import UsageError


def test_a_schedule_can_run_report_with_its_options() -> None:
    call = parse_schedule_command(["report", "--out", "/var/lib/r.html", "--since", "31d"])
    assert call.command == "report"
    assert call.params == {"out": Path("/var/lib/r.html"), "since": timedelta(days=31)}


def test_a_scheduled_report_with_a_bad_since_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--since"):
        parse_schedule_command(["report", "--out", "r.html", "--since", "monthly"])
