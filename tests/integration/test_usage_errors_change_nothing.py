"""SPEC "Exit codes": exit 2 is a usage error and changes nothing. An unknown id, user or
policy given to a job command leaves the storage exactly as it was (no run record under
`runs/`), writes no metrics textfile and sends no notification."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.cli import Setup
from tests.fixtures.webhook import Webhook
from tests.integration.test_archive import POLICIES

UNKNOWN_ID = "20260101T000000Z-0000000000"


def storage_keys(setup: Setup) -> dict[str, bytes]:
    root = Path(setup.doc["storage"]["url"].removeprefix("file://"))
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture
def watched(file_setup: Setup, webhook: Webhook) -> tuple[Setup, Path, Webhook]:
    """A setup with a metrics textfile, a webhook for every event and an archival policy, and
    one committed backup in storage (so there is state a usage error could disturb)."""
    textfile = file_setup.dir / "textfile" / "drtool.prom"
    textfile.parent.mkdir()
    file_setup.doc["metrics"] = {"textfile": str(textfile)}
    file_setup.doc["notifications"] = {
        "webhook_url": webhook.url,
        "on": ["failure", "success", "breach", "drill"],
    }
    file_setup.doc["archival"] = {"policies": POLICIES}
    file_setup.write()
    file_setup.run("backup", "--label", "before")
    return file_setup, textfile, webhook


@pytest.mark.parametrize(
    "args",
    [
        ("verify", UNKNOWN_ID),
        ("verify", UNKNOWN_ID, "--deep"),
        ("rehearse", UNKNOWN_ID),
        ("restore-user", "42", "--from-export", UNKNOWN_ID, "--to", "{dsn}"),
        ("restore-user", "42", "--from-backup", UNKNOWN_ID, "--to", "{dsn}"),
        ("export-user", "999999999"),
        ("archive", "run", "--policy", "no-such-policy"),
    ],
    ids=[
        "verify",
        "verify-deep",
        "rehearse",
        "restore-user-from-export",
        "restore-user-from-backup",
        "export-user",
        "archive-run",
    ],
)
def test_a_usage_error_changes_nothing(
    watched: tuple[Setup, Path, Webhook], sample_db: Any, args: tuple[str, ...]
) -> None:
    setup, textfile, webhook = watched
    before = storage_keys(setup)
    assert before, "the backup should be in storage"
    metrics_before = textfile.read_bytes() if textfile.exists() else None
    notices_before = len(webhook.received)
    argv = [a.replace("{dsn}", sample_db.dsn) for a in args]

    result = setup.run(*argv, expect=2)

    assert "drtool: error:" in result.stderr
    after = storage_keys(setup)
    assert sorted(after) == sorted(before), "a usage error must not store anything"
    assert after == before
    assert (textfile.read_bytes() if textfile.exists() else None) == metrics_before
    assert len(webhook.received) == notices_before
