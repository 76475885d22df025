"""Archival without servers: the batch format and canonical hash, restore's time parsing,
policy validation, and the scheduled `archive run` command line."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from drtool.cli.schedule_line import parse_schedule_command
from drtool.config import load_config
from drtool.errors import ConfigError, IntegrityError, UsageError
from drtool.scheduler.files import load_schedules
from drtool.services.archive.codec import copy_header, decode_batch, encode_batch, rows_sha256
from drtool.services.archive.restore import parse_time

REPO = Path(__file__).resolve().parents[2]
LINES = [b"1\tx\\ty\t\\N", b"2\tnew\\nline\t{a,b}", b"3\t\xc3\xa9\t42"]


def test_batch_format_is_a_copy_block_that_decodes_to_its_rows() -> None:
    header = copy_header("public", 'we"ird', ["id", "Body", "n"])
    assert header == b'COPY "public"."we""ird" ("id", "Body", "n") FROM stdin;'
    body = encode_batch(header, LINES)
    assert body.endswith(b"\n\\.\n")
    assert decode_batch(body, header, "t") == LINES
    assert decode_batch(encode_batch(header, []), header, "t") == []


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"COPY x FROM stdin;\n\\.\n",
        b'COPY "public"."t" ("id") FROM stdin;\n1\n',
        b'COPY "public"."t" ("id") FROM stdin;\n1\n\\.',
    ],
)
def test_a_batch_that_is_not_the_expected_copy_block_is_an_integrity_error(body: bytes) -> None:
    with pytest.raises(IntegrityError):
        decode_batch(body, copy_header("public", "t", ["id"]), "t")


def test_rows_hash_is_the_sha256_of_the_row_lines_between_header_and_terminator() -> None:
    header = copy_header("public", "t", ["id", "body", "n"])
    body = encode_batch(header, LINES)
    assert rows_sha256(body, header) == hashlib.sha256(b"\n".join(LINES) + b"\n").hexdigest()
    assert rows_sha256(encode_batch(header, []), header) == hashlib.sha256(b"").hexdigest()
    changed = encode_batch(header, [*LINES[:2], b"3\t\xc3\xa9\t43"])
    assert rows_sha256(changed, header) != rows_sha256(body, header)


def test_restore_times_are_iso_dates_or_datetimes_in_utc_by_default() -> None:
    assert parse_time("2024-01-31", "--since") == datetime(2024, 1, 31, tzinfo=UTC)
    assert parse_time("2024-01-31T12:30:00Z", "--since") == datetime(
        2024, 1, 31, 12, 30, tzinfo=UTC
    )
    plus_two = parse_time("2024-01-31T12:30:00+02:00", "--until")
    assert plus_two is not None and plus_two.astimezone(UTC).hour == 10
    assert parse_time(None, "--since") is None
    with pytest.raises(UsageError, match="--until"):
        parse_time("last tuesday", "--until")


def _config(tmp_path: Path, policies: str) -> Path:
    path = tmp_path / "drtool.yaml"
    path.write_text(f"archival:\n  policies:\n{policies}", encoding="utf-8")
    return path


def test_policies_need_unique_names_and_non_empty_where_lists(tmp_path: Path) -> None:
    dupes = (
        "    - {name: a, table: public.t, time_column: at, older_than: 1d}\n"
        "    - {name: a, table: t, time_column: at, older_than: 2d, action: purge}\n"
    )
    with pytest.raises(ConfigError, match="unique"):
        load_config(_config(tmp_path, dupes), {})
    empty = "    - {name: b, table: t, time_column: at, older_than: 1d, where: {status: []}}\n"
    with pytest.raises(ConfigError, match=r"archival\.policies\.0\.where"):
        load_config(_config(tmp_path, empty), {})
    nested = "    - {name: c, table: t, time_column: at, older_than: 1d, where: {s: [[x]]}}\n"
    with pytest.raises(ConfigError, match=r"archival\.policies\.0\.where"):
        load_config(_config(tmp_path, nested), {})


def test_spec_policies_load(tmp_path: Path) -> None:
    spec = (
        "    - {name: old-raw-events, table: public.raw_events, time_column: occurred_at,"
        " older_than: 730d, action: archive}\n"
        "    - {name: finished-jobs, table: public.jobs, time_column: updated_at,"
        " older_than: 30d, where: {status: [completed]}, action: archive}\n"
        "    - {name: expired-sessions, table: public.sessions, time_column: expires_at,"
        " older_than: 0d, action: purge}\n"
    )
    cfg = load_config(_config(tmp_path, spec), {})
    assert [p.action for p in cfg.archival.policies] == ["archive", "archive", "purge"]
    assert cfg.archival.policies[1].where == {"status": ["completed"]}
    assert cfg.archival.batch_size == 5000


def test_a_schedule_can_run_archive_run_with_its_options_only() -> None:
    call = parse_schedule_command(
        ["archive", "run", "--policy", "finished-jobs", "--max-duration", "30m", "--dry-run"]
    )
    assert call.params["policy"] == "finished-jobs" and call.params["dry_run"] is True
    assert call.params["max_duration"] == timedelta(minutes=30)  # converted by its click type
    for bad, words in (
        (["archive", "restore", "--policy", "x"], "`archive restore` cannot be scheduled"),
        (["archive", "run", "--batch-size", "0"], "'--batch-size': 0 is not in the range"),
        (["archive", "run", "--sleep", "soon"], "'--sleep': invalid duration 'soon'"),
        (["archive", "list"], "`archive list` cannot be scheduled"),
        (["archive"], "`archive` needs a command"),
    ):
        with pytest.raises(UsageError, match=words):
            parse_schedule_command(bad)
    jobs = {job.name: job for job in load_schedules(REPO / "schedules", parse_schedule_command)}
    assert jobs["archive"].call.command == "archive"
    assert jobs["archive"].call.argv[:2] == ("archive", "run")
