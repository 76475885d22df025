"""The HTML report from real records (backups, verifications, drills made by the CLI against the
sample database), rendered by headless Chromium: the charts are laid out with non-zero sizes and
one mark per backup, gap and drill; the verdict is the one `status` gives; the file references
nothing outside itself and runs no script. `rehearse --report *.html` writes the drill report."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.cli import Setup
from tests.integration.chromium_support import find_chromium, measure, png_colours, screenshot
from tests.integration.restore_support import backup

CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium on PATH (scripts/system-deps.sh installs Debian's chromium package)",
)
RPO_SECONDS = 30
# Longer than the RPO objective: the gap the timeline must show in red.
LONG_GAP_SECONDS = RPO_SECONDS + 3
# Set to a directory (docs/images) to save full-page screenshots of the report and the drill
# report there, wide and narrow: how the README's pictures are made.
SCREENSHOTS_ENV = "DRTOOL_REPORT_SCREENSHOTS"
EXTERNAL = re.compile(r"""(?:src|href|xlink:href)\s*=\s*["']?\s*(?:https?:)?//""", re.I)


@pytest.fixture
def drill_tmp() -> Iterator[Path]:
    """TMPDIR for the drills' ephemeral clusters: under /tmp, reachable by the postgres
    account when the tests run as root."""
    path = Path(tempfile.mkdtemp(prefix="drtool-reporttest-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def rehearse(setup: Setup, drill_tmp: Path, *args: str) -> Any:
    return setup.run("rehearse", *args, "--json", extra_env={"TMPDIR": str(drill_tmp)}).json


def assert_self_contained(text: str) -> None:
    assert "<script" not in text.lower()
    assert not EXTERNAL.search(text), EXTERNAL.search(text)
    assert "@import" not in text and "url(" not in text
    assert "<style>" in text and "@media print" in text


def chart(measured: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [c for c in measured["charts"] if c["name"] == name]
    assert found["width"] > 0 and found["height"] > 0, found
    assert found["drawn"] == sum(found["marks"].values()), found  # every mark has an area
    return found


def save_screenshots(folder: Path, pages: dict[str, Path], work: Path) -> None:
    assert CHROMIUM is not None
    folder.mkdir(parents=True, exist_ok=True)
    for name, page in pages.items():
        for width, suffix in ((1280, ""), (420, "-mobile")):
            height = measure(CHROMIUM, page, work, width)["scrollHeight"]
            screenshot(CHROMIUM, page, folder / f"{name}{suffix}.png", width, height)


@needs_chromium
def test_report_from_real_records_draws_every_backup_gap_and_drill_in_chromium(
    file_setup: Setup, drill_tmp: Path, tmp_path: Path
) -> None:
    assert CHROMIUM is not None
    file_setup.doc["objectives"] = {"rpo": f"{RPO_SECONDS}s", "rto": "1h"}
    file_setup.write()
    first = backup(file_setup)
    drill_report = tmp_path / "drill.html"
    drill_one = rehearse(file_setup, drill_tmp, "--report", str(drill_report))
    second = backup(file_setup)
    drill_two = rehearse(file_setup, drill_tmp)
    assert drill_one["verdict"] == drill_two["verdict"] == "pass"
    file_setup.run("verify", "--all")
    time.sleep(LONG_GAP_SECONDS)
    third = backup(file_setup)
    file_setup.run("verify", third)
    out = tmp_path / "report.html"
    doc = file_setup.run("--json", "report", "--out", str(out), "--since", "30d").json
    status = file_setup.run("status", "--json", expect=None).json

    assert doc["ok"] is True and doc["path"] == str(out)
    assert doc["backups"] == 3 and doc["drills"] == 2 and doc["verifications"] == 3
    assert doc["verdict"] == ("ok" if status["ok"] else "breached")
    text = out.read_text(encoding="utf-8")
    assert_self_contained(text)
    verdict = "ok" if status["ok"] else "breached"
    assert f'data-verdict="{verdict}"' in text
    assert f"RPO objective {RPO_SECONDS}s" in text and "RTO objective 1h" in text
    for item in (first, second, third, drill_one["id"], drill_two["id"]):
        assert item in text
    assert "public.contacts" in text  # the latest drill's per-table validation
    assert "1 gap(s) longer than the RPO objective" in text
    assert "Replicas" not in text  # none configured: no section

    measured = measure(CHROMIUM, out, tmp_path)
    timeline = chart(measured, "timeline")
    assert timeline["marks"] == {"backup": 3, "gap": 3}  # two between, one open up to now
    assert chart(measured, "rto")["marks"] == {"drill": 2}
    days = {b[:8] for b in (first, second, third)}
    assert chart(measured, "growth")["marks"] == {"day": len(days)}
    assert text.count('class="gap over"') == 1  # the long gap, highlighted
    narrow = measure(CHROMIUM, out, tmp_path, width=420)
    assert narrow["scrollWidth"] <= narrow["innerWidth"]  # no sideways scrolling on a phone
    assert all(c["width"] > 0 and c["height"] > 0 for c in narrow["charts"])

    png = screenshot(CHROMIUM, out, tmp_path / "report.png", 1280, 2000)
    width, height, colours = png_colours(png)
    assert (width, height) == (1280, 2000) and colours > 8

    if folder := os.environ.get(SCREENSHOTS_ENV):
        save_screenshots(Path(folder), {"report": out, "drill-report": drill_report}, tmp_path)

    # The drill report (`rehearse --report *.html`), same style, from the first drill.
    drill_text = drill_report.read_text(encoding="utf-8")
    assert_self_contained(drill_text)
    assert "Verdict: PASS" in drill_text and first in drill_text
    assert 'data-verdict="pass"' in drill_text and "public.contacts" in drill_text
    assert "Sign-off" in drill_text and "start to validated" in drill_text
    drill_measured = measure(CHROMIUM, drill_report, tmp_path)
    assert chart(drill_measured, "stages")["marks"] == {"stage": len(drill_one["stages"])}
    assert chart(drill_measured, "rto")["marks"] == {"drill": 1}
    drill_narrow = measure(CHROMIUM, drill_report, tmp_path, width=420)
    assert drill_narrow["scrollWidth"] <= drill_narrow["innerWidth"]


def test_report_without_records_says_so_and_fails_cleanly_on_bad_options(
    file_setup: Setup, tmp_path: Path
) -> None:
    out = tmp_path / "empty.html"
    doc = file_setup.run("--json", "report", "--out", str(out)).json
    assert doc["verdict"] == "breached" and doc["backups"] == 0
    text = out.read_text(encoding="utf-8")
    assert_self_contained(text)
    assert "No complete backup is stored." in text and "No drill recorded" in text
    assert "No verification run in the period." in text and "<svg" not in text
    bad = file_setup.run("report", "--out", str(out), "--since", "soon", expect=2)
    assert "--since" in bad.stderr and "Traceback" not in bad.stderr
    nowhere = file_setup.run("report", "--out", str(tmp_path / "no" / "r.html"), expect=2)
    assert "does not exist" in nowhere.stderr
    err = file_setup.run("--json", "report", "--out", str(tmp_path), expect=2).json
    assert err["exit_code"] == 2 and "directory" in err["error"]["message"]


@needs_chromium
def test_report_shows_each_replicas_lag_against_the_objective(
    file_setup: Setup, tmp_path: Path
) -> None:
    assert CHROMIUM is not None
    for name in ("dr", "far"):
        (tmp_path / name).mkdir()
    file_setup.doc["storage"]["replicas"] = [
        {"name": "dr", "url": (tmp_path / "dr").as_uri()},
        {"name": "far", "url": (tmp_path / "far").as_uri()},
    ]
    file_setup.doc["objectives"] = {"rpo": "24h", "rto": "1h", "replica_lag": "1h"}
    file_setup.write()
    backup_id = backup(file_setup)
    file_setup.run("replicate", "--to", "dr")
    out = tmp_path / "replicas.html"
    doc = file_setup.run("--json", "report", "--out", str(out)).json
    assert doc["replicas"] == 2 and doc["verdict"] == "ok"
    text = out.read_text(encoding="utf-8")
    assert_self_contained(text)
    assert "Replicas" in text and "replica_lag 1h" in text
    section = text[text.index('id="replicas"') :]
    assert backup_id in section[: section.index("</section>")]  # dr has it, far has none
    assert chart(measure(CHROMIUM, out, tmp_path), "replicas")["marks"] == {"replica": 2}
