"""Notifications through the real CLI and the job wrapper, received by a local HTTP server:
one JSON POST with a Slack-compatible `text` per event in `notifications.on`, retried briefly,
never delaying the job beyond its budget, never carrying a secret."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest
import yaml

from drtool.catalog.records.runs import read_run
from drtool.config import Config
from drtool.crypto.keys import generate_identity
from drtool.errors import EXIT_INTEGRITY, IntegrityError
from drtool.services.context import build_context
from drtool.services.jobs.job import run_job
from drtool.services.jobs.notify import ATTEMPTS, Notice, notify, notify_all
from tests.fixtures.cli import Setup
from tests.fixtures.webhook import Webhook, closed_port_url

ROOT = Path(__file__).resolve().parents[2]
DSN_PASSWORD = "dsn-pass-Q7w9"
DB_PASSWORD = "db-pass-Z3k8"
ACCESS_KEY = "AKIAEXAMPLESECRET42"
SECRET_KEY = "storage-secret-key-V5n1"
RAW_KEY = "ab" * 32  # DRTOOL_ENCRYPTION__KEY: 32 bytes in hex
SECRETS = [DSN_PASSWORD, DB_PASSWORD, ACCESS_KEY, SECRET_KEY, RAW_KEY, "hook-token-s3cr3t"]


def failing_config(tmp_path: Path, url: str, on: list[str] | None = None) -> dict[str, Any]:
    """A configuration whose backup fails at once (nothing listens on the database port), with
    a password in the DSN and every other kind of secret set."""
    doc: dict[str, Any] = {
        "database": {"dsn": f"postgresql://backup:{DSN_PASSWORD}@127.0.0.1:9/omnicrm"},
        "storage": {"url": (tmp_path / "storage").as_uri()},
        "encryption": {"recipients": [generate_identity().recipient().encode()]},
        "notifications": {"webhook_url": url},
    }
    if on is not None:
        doc["notifications"]["on"] = on
    return doc


def run_cli(
    tmp_path: Path, doc: dict[str, Any], *args: str
) -> tuple[subprocess.CompletedProcess[str], float]:
    config = tmp_path / "drtool.yaml"
    config.write_text(yaml.safe_dump(doc), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRTOOL_", "PG", "AWS_"))}
    env |= {
        "PYTHONPATH": str(ROOT),
        "DRTOOL_DATABASE__PASSWORD": DB_PASSWORD,
        "DRTOOL_STORAGE__ACCESS_KEY_ID": ACCESS_KEY,
        "DRTOOL_STORAGE__SECRET_ACCESS_KEY": SECRET_KEY,
        "DRTOOL_ENCRYPTION__KEY": RAW_KEY,
    }
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "drtool", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    return done, time.monotonic() - started


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} leaked"


def test_failed_backup_posts_one_failure_notice_without_secrets(
    tmp_path: Path, webhook: Webhook
) -> None:
    done, _ = run_cli(tmp_path, failing_config(tmp_path, webhook.url, ["failure"]), "backup")
    assert done.returncode == 1, done.stderr
    [post] = webhook.received
    assert post.headers["Content-Type"] == "application/json"
    doc = post.json
    assert doc["event"] == "failure"
    assert "drtool backup FAILED" in doc["text"] and "(exit 1)" in doc["text"]
    assert doc["drtool"]["job"] == "backup" and doc["drtool"]["exit_code"] == 1
    assert "Connection refused" in doc["drtool"]["error"]
    assert_no_secret(post.body.decode())
    assert_no_secret(done.stdout + done.stderr)
    assert_no_secret((tmp_path / "storage" / "runs" / "backup.json").read_text())


def test_default_events_also_report_the_breach_a_failed_backup_leaves(
    tmp_path: Path, webhook: Webhook
) -> None:
    done, _ = run_cli(tmp_path, failing_config(tmp_path, webhook.url), "backup")
    assert done.returncode == 1
    by_event = {post["event"]: post for post in webhook.posts()}
    assert set(by_event) == {"failure", "breach"}
    assert "no complete backup" in by_event["breach"]["text"]
    assert by_event["breach"]["drtool"]["breached"] == ["rpo"]
    assert_no_secret(json.dumps(webhook.posts()))


def test_a_webhook_answering_500_is_tried_three_times_and_the_job_keeps_its_exit_code(
    tmp_path: Path, webhook: Webhook
) -> None:
    webhook.status = 500
    done, seconds = run_cli(tmp_path, failing_config(tmp_path, webhook.url, ["failure"]), "backup")
    assert done.returncode == 1
    assert len(webhook.received) == ATTEMPTS == 3
    assert "not delivered after 3 attempt(s): HTTP 500" in done.stderr
    assert "drtool: error: connecting" in done.stderr
    assert seconds < 15


def test_a_client_error_is_not_retried(tmp_path: Path, webhook: Webhook) -> None:
    webhook.status = 404
    done, _ = run_cli(tmp_path, failing_config(tmp_path, webhook.url, ["failure"]), "backup")
    assert done.returncode == 1 and len(webhook.received) == 1


def test_an_unreachable_webhook_delays_the_job_only_briefly_and_is_never_logged(
    tmp_path: Path,
) -> None:
    url = closed_port_url()
    done, seconds = run_cli(tmp_path, failing_config(tmp_path, url, ["failure"]), "backup")
    assert done.returncode == 1
    assert "not delivered after 3 attempt(s)" in done.stderr
    assert url not in done.stderr and "127.0.0.1:" + url.rsplit(":", 1)[1] not in done.stderr
    assert seconds < 12  # 3 refused attempts and 1.5 s of backoff, plus start-up


def test_events_not_subscribed_are_not_sent(tmp_path: Path, webhook: Webhook) -> None:
    done, _ = run_cli(tmp_path, failing_config(tmp_path, webhook.url, ["drill"]), "backup")
    assert done.returncode == 1
    assert webhook.received == []


def test_a_webhook_that_never_answers_is_abandoned_at_the_budget(webhook: Webhook) -> None:
    webhook.hang = True
    config = Config.model_validate({"notifications": {"webhook_url": webhook.url}})
    started = time.monotonic()
    notices = [Notice("failure", "a"), Notice("breach", "b")]
    assert notify_all(config, notices, budget_s=1.0) == [False, False]
    assert time.monotonic() - started < 3.0
    assert len(webhook.received) == 2, "both were sent, in parallel"


def test_without_a_webhook_nothing_is_sent_and_nothing_fails() -> None:
    assert notify(Config(), "failure", "text", {}) is False


@dataclass(frozen=True)
class Drill:
    """A result as run_job sees one (services.jobs.Outcome): its exit code says if it failed."""

    verdict: str
    id: str

    @property
    def exit_code(self) -> int:
        return 0 if self.verdict == "pass" else 4

    def item_id(self) -> str | None:
        return self.id

    def summary(self) -> str | None:
        return f"verdict {self.verdict}, RTO 42s"


class BadHooks:
    exit_code = 0

    def item_id(self) -> str | None:
        raise RuntimeError("hook bug")

    def summary(self) -> str | None:
        raise RuntimeError("hook bug")


def test_job_wrapper_sends_drill_events_and_records_result_failures(
    tmp_path: Path, webhook: Webhook
) -> None:
    config = Config.model_validate(
        {
            "storage": {"url": (tmp_path / "storage").as_uri()},
            "notifications": {"webhook_url": webhook.url, "on": ["failure", "drill", "success"]},
        }
    )
    ctx = build_context(config)
    verdict = Drill("fail", "20261126T021500.123Z-7f3a")
    result = run_job(ctx, "rehearse", lambda: verdict, events=("drill",))
    assert result is verdict
    by_event = {post["event"]: post for post in webhook.posts()}
    assert set(by_event) == {"failure", "drill"}
    assert by_event["drill"]["text"].endswith(": verdict fail, RTO 42s")
    run = read_run(ctx.storage, "rehearse")
    assert run is not None and not run.last_ok and run.last_failure_exit_code == 4
    assert run.item_id == verdict.id and run.last_failure_error == "verdict fail, RTO 42s"


def test_job_wrapper_reraises_errors_after_recording_them_and_survives_bad_hooks(
    tmp_path: Path, webhook: Webhook
) -> None:
    config = Config.model_validate(
        {
            "storage": {"url": (tmp_path / "storage").as_uri()},
            "notifications": {"webhook_url": webhook.url, "on": ["failure", "success"]},
        }
    )
    ctx = build_context(config)

    def broken() -> NoReturn:
        raise IntegrityError("backup X: object dump chunk 3 failed authentication")

    with pytest.raises(IntegrityError):
        run_job(ctx, "verify", broken)
    run = read_run(ctx.storage, "verify")
    assert run is not None and run.last_failure_exit_code == EXIT_INTEGRITY
    assert webhook.posts()[-1]["event"] == "failure"

    bad = BadHooks()
    assert run_job(ctx, "verify", lambda: bad) is bad
    run = read_run(ctx.storage, "verify")
    assert run is not None and run.last_ok and run.last_failure_exit_code == EXIT_INTEGRITY
    assert webhook.posts()[-1]["event"] == "success"


def test_successful_backup_with_a_breach_notifies_success_and_breach(
    file_setup: Setup, webhook: Webhook
) -> None:
    file_setup.doc["objectives"] = {"rpo": "24h", "drill_max_age": "35d"}
    file_setup.doc["notifications"] = {"webhook_url": webhook.url, "on": ["success", "breach"]}
    file_setup.write()
    backup_id = file_setup.run("backup").stdout.strip().splitlines()[-1]
    by_event = {post["event"]: post for post in webhook.posts()}
    assert set(by_event) == {"success", "breach"}
    assert by_event["success"]["drtool"]["item_id"] == backup_id
    assert f"drtool backup {backup_id} succeeded" in by_event["success"]["text"]
    assert "no drill recorded" in by_event["breach"]["text"]
    assert by_event["breach"]["drtool"]["breached"] == ["drill_age"]
    assert file_setup.env["DRTOOL_DATABASE__PASSWORD"] not in json.dumps(webhook.posts())


def test_a_webhook_url_that_is_not_http_is_a_config_error_that_does_not_echo_it(
    tmp_path: Path,
) -> None:
    doc = failing_config(tmp_path, "ftp://hook-token-s3cr3t.example/x")
    done, _ = run_cli(tmp_path, doc, "status")
    assert done.returncode == 2
    assert "notifications.webhook_url: expected an http:// or https:// URL" in done.stderr
    assert_no_secret(done.stdout + done.stderr)
