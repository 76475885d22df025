"""Schedule files: the shipped defaults parse; every kind of mistake is reported with its file
and key, all at once; `schedule check` exits 2 listing them."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from drtool.cli.schedule_line import parse_schedule_command
from drtool.errors import ConfigError
from drtool.scheduler.files import ScheduleJob
from drtool.scheduler.files import load_schedules as load_with

REPO = Path(__file__).resolve().parents[2]


def load_schedules(directory: Path) -> list[ScheduleJob]:
    return load_with(directory, parse_schedule_command)


def write(directory: Path, name: str, text: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(text, encoding="utf-8")


def problems_of(directory: Path) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        load_schedules(directory)
    return dict(info.value.problems)


def test_shipped_schedules_parse() -> None:
    jobs = {job.name: job for job in load_schedules(REPO / "schedules")}
    assert set(jobs) == {
        "backup",
        "verify",
        "verify-deep",
        "prune",
        "rehearse",
        "rehearse-replica",
        "export-users",
        "export-users-weekly",
        "archive",
        "replicate",
    }
    assert jobs["export-users"].call.params["changed_since"] == "25h"
    assert jobs["archive"].call.command == "archive"
    assert jobs["backup"].call.command == "backup"
    assert jobs["verify-deep"].call.params["deep"] is True
    assert jobs["verify-deep"].call.params["all_items"] is False
    assert jobs["rehearse"].call.params["report"] is not None
    assert jobs["rehearse"].call.params["source"] is None
    assert jobs["rehearse-replica"].call.params["source"] == "dr-region"
    assert jobs["rehearse-replica"].call.command == "rehearse"
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    assert jobs["backup"].next_fire_times(now, 2) == [
        datetime(2026, 11, 27, 2, 0, tzinfo=UTC),
        datetime(2026, 11, 28, 2, 0, tzinfo=UTC),
    ]
    # cron weekdays count from Sunday = 0 (APScheduler's from Monday): 2026-11-29 is a Sunday
    assert jobs["rehearse"].next_fire_times(now, 1)[0].day == 1
    assert jobs["verify-deep"].next_fire_times(now, 1)[0].date().isoformat() == "2026-11-29"


def test_string_list_and_defaults(tmp_path: Path) -> None:
    write(tmp_path / "s", "a.yaml", 'cron: "*/5 * * * 0"\ncommand: [verify, --all]\n')
    (job,) = load_schedules(tmp_path / "s")
    assert job.name == "a"
    assert job.timezone == "UTC"
    assert job.enabled
    assert job.call.params["all_items"] is True
    assert job.next_fire_times(datetime(2026, 11, 26, tzinfo=UTC), 1)[0].weekday() == 6


@pytest.mark.parametrize(
    ("cron", "first"),
    [
        # Standard crontab lines that a translation to APScheduler's fields got wrong.
        ("0 2 * * 0-6", "2026-11-27T02:00"),  # every day (2026-11-26 is a Thursday)
        ("0 0 * * */2", "2026-11-28T00:00"),  # Sun, Tue, Thu, Sat: Saturday next
        ("0 0 * * 7", "2026-11-29T00:00"),  # Sunday
        ("0 0 * * 5-7", "2026-11-27T00:00"),  # Friday to Sunday
        ("0 0 * * SAT,SUN", "2026-11-28T00:00"),
        ("0 0 1 * 1", "2026-11-30T00:00"),  # the 1st OR a Monday
    ],
)
def test_standard_crontab_lines_are_accepted(tmp_path: Path, cron: str, first: str) -> None:
    write(tmp_path / "s", "a.yaml", f'cron: "{cron}"\ncommand: status\n')
    (job,) = load_schedules(tmp_path / "s")
    (fire,) = job.next_fire_times(datetime(2026, 11, 26, 12, tzinfo=UTC), 1)
    assert fire.strftime("%Y-%m-%dT%H:%M") == first


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ('cron: "61 2 * * *"\ncommand: backup\n', "cron", "invalid cron"),
        ('cron: "0 2 * *"\ncommand: backup\n', "cron", "five fields"),
        # The command's messages are click's: the CLI's own command tree parses it.
        ('cron: "0 2 * * *"\ncommand: backupp\n', "command", "No such command 'backupp'"),
        ('cron: "0 2 * * *"\ncommand: backup --lable x\n', "command", "No such option '--lable'"),
        ('cron: "0 2 * * *"\ncommand: backup extra\n', "command", "unexpected extra argument"),
        ('cron: "0 2 * * *"\ncommand: backup --label\n', "command", "requires an argument"),
        ('cron: "0 2 * * *"\ncommand: restore latest\n', "command", "cannot be scheduled"),
        ('cron: "0 2 * * *"\ncommand: backup\nshedule: x\n', "shedule", "unknown key"),
        ('cron: "0 2 * * *"\ncommand: backup\ntimezone: Mars/Base\n', "timezone", "Mars/Base"),
        ('cron: "0 2 * * *"\ncommand: backup\njitter: 5 minutes\n', "jitter", "invalid duration"),
        ('cron: "0 2 * * *"\ncommand: backup\ntimeout: 2x\n', "timeout", "invalid duration"),
        ('cron: "0 2 * * *"\ncommand: backup\nenabled: yes\n', "enabled", "true or false"),
        ('cron: "0 2 * * *"\n', "command", "required"),
        ('cron: "0 2 * * *"\ncommand: backup\nname: Nightly Backup\n', "name", "invalid job"),
        ('cron: "0 0 * * 5-0"\ncommand: backup\n', "cron", "e.g. 5-7"),
        ('cron: "0 0 * * sat-sun"\ncommand: backup\n', "cron", "runs downwards"),
        ('cron: "0 0 * * 8"\ncommand: backup\n', "cron", "day-of-week"),
        ('cron: "0 0 31 2 *"\ncommand: backup\n', "cron", "day-of-month"),
        ('cron: "0 0 L * *"\ncommand: backup\n', "cron", "not standard cron"),
        ('cron: "0 0 * * 1#2"\ncommand: backup\n', "cron", "not standard cron"),
        ('cron: "0 0 0 * * *"\ncommand: backup\n', "cron", "five fields"),
        ('cron: "@daily"\ncommand: backup\n', "cron", "five fields"),
    ],
)
def test_each_mistake_is_named_with_file_and_key(
    tmp_path: Path, text: str, key: str, words: str
) -> None:
    write(tmp_path / "schedules", "job.yaml", text)
    problems = problems_of(tmp_path / "schedules")
    where = f"schedules/job.yaml: {key}"
    assert where in problems, problems
    assert words in problems[where]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    d = tmp_path / "schedules"
    write(d, "a.yaml", 'cron: "bad"\ncommand: nope\n')
    write(d, "b.yaml", 'name: a\ncron: "0 1 * * *"\ncommand: status\n')
    write(d, "c.yaml", 'cron: "0 1 * * *"\ncommand: verify latest --deeep\n')
    problems = problems_of(d)
    assert {"schedules/a.yaml: cron", "schedules/a.yaml: command"} <= set(problems)
    assert "schedules/c.yaml: command" in problems


def test_duplicate_names(tmp_path: Path) -> None:
    d = tmp_path / "schedules"
    write(d, "a.yaml", 'cron: "0 1 * * *"\ncommand: status\n')
    write(d, "b.yaml", 'name: a\ncron: "0 1 * * *"\ncommand: status\n')
    assert "also defined" in problems_of(d)["schedules/b.yaml: name"]


def test_schedule_check_exits_2_naming_file_and_key(tmp_path: Path) -> None:
    d = tmp_path / "schedules"
    write(d, "backup.yaml", 'cron: "0 25 * * *"\ncommand: backup --lable x\n')
    config = tmp_path / "drtool.yaml"
    config.write_text(f'storage: {{url: "file://{tmp_path}/data"}}\n', encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "drtool", "--config", str(config), "schedule", "check"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 2, done.stderr
    assert "schedules/backup.yaml: cron" in done.stderr
    assert "schedules/backup.yaml: command" in done.stderr
    assert "Traceback" not in done.stderr


def test_schedule_check_exits_2_for_an_enabled_job_from_an_unknown_replica(tmp_path: Path) -> None:
    d = tmp_path / "schedules"
    write(d, "drill.yaml", 'cron: "0 5 15 * *"\ncommand: rehearse latest --from dr-region\n')
    write(d, "off.yaml", 'cron: "0 5 1 * *"\ncommand: verify --from gone\nenabled: false\n')
    config = tmp_path / "drtool.yaml"
    config.write_text(
        f'storage: {{url: "file://{tmp_path}/data", replicas: [{{name: dr, url: "file://{tmp_path}/dr"}}]}}\n',
        encoding="utf-8",
    )

    def check() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "drtool", "--config", str(config), "schedule", "check"],
            capture_output=True,
            text=True,
            check=False,
            cwd=REPO,
        )

    done = check()
    assert done.returncode == 2, done.stderr
    assert "schedules/drill.yaml: command" in done.stderr
    assert "no replica named 'dr-region' in storage.replicas (dr)" in done.stderr
    assert "off.yaml" not in done.stderr, "a disabled job is not checked"
    write(d, "drill.yaml", 'cron: "0 5 15 * *"\ncommand: rehearse latest --from dr\n')
    assert check().returncode == 0, check().stderr
