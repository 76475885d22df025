"""The `replicate` command line: --help documents every option, a schedule can run it (the
repo's schedules/replicate.yaml, after the nightly backup), bad options exit 2, and a config
without replicas is a usage error that changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from drtool.cli.schedule_line import parse_schedule_command
from drtool.config import StorageConfig
from drtool.errors import UsageError
from drtool.scheduler.files import load_schedules
from tests.fixtures.cli import make_setup

REPO = Path(__file__).resolve().parents[2]


def test_help_documents_every_option(tmp_path: Path) -> None:
    setup = make_setup(tmp_path, "postgresql://x@127.0.0.1:9/x", None, StorageConfig())
    out = setup.run("replicate", "--help").stdout
    for option in ("--to NAME", "--jobs", "--json", "server-side", "manifest"):
        assert option in out, option


def test_a_schedule_runs_replicate_after_the_nightly_backup() -> None:
    call = parse_schedule_command(["replicate", "--to", "dr", "--jobs", "4"])
    assert call.command == "replicate" and call.params == {"to": "dr", "jobs": 4}
    with pytest.raises(UsageError, match="'--jobs': 0 is not in the range"):
        parse_schedule_command(["replicate", "--jobs", "0"])
    jobs = {job.name: job for job in load_schedules(REPO / "schedules", parse_schedule_command)}
    replicate, backup = jobs["replicate"], jobs["backup"]
    assert replicate.call.argv == ("replicate",)
    hour = lambda job: int(job.cron.split()[1])  # noqa: E731
    assert hour(replicate) > hour(backup)


def test_without_replicas_replicate_exits_2_and_changes_nothing(tmp_path: Path) -> None:
    storage = StorageConfig(url=(tmp_path / "storage").as_uri())
    setup = make_setup(tmp_path / "cfg", "postgresql://x@127.0.0.1:9/x", None, storage)
    out = setup.run("--json", "replicate", expect=2).json
    assert "no replica is configured" in out["error"]["message"]
    assert not (tmp_path / "storage" / "runs").exists()
