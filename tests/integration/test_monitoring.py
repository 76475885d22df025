"""deploy/monitoring/ as Prometheus and Grafana read it: the alert rules pass `promtool check
rules` and their `promtool test rules` unit tests, every alert has a test where it fires and
one where it stays quiet, every alert points at a section of runbooks/alerts.md, the dashboard
is importable and laid out without overlaps, is what gen_dashboard.py generates, and every
metric the rules and the dashboard query is one drtool emits."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from drtool.services.jobs import metrics
from drtool.services.jobs.health import OBJECTIVE_NAMES
from tests.integration.test_promtool import require_promtool

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "monitoring"
ALERTS = MONITORING / "alerts.yml"
ALERT_TESTS = MONITORING / "alerts.test.yml"
DASHBOARD = MONITORING / "drtool-dashboard.json"
GENERATOR = MONITORING / "gen_dashboard.py"
RUNBOOKS = ROOT / "runbooks"
ALERTS_RUNBOOK = RUNBOOKS / "alerts.md"

# Not drtool's: node_exporter's textfile collector reports each *.prom file's mtime.
EXTERNAL_METRICS = {"node_textfile_mtime_seconds"}

SEVERITIES = {"critical", "warning"}
PANEL_TYPES = {"timeseries", "stat", "state-timeline", "table", "gauge", "bargauge", "text"}
GRID_COLUMNS = 24
DATASOURCE_INPUT = "DS_PROMETHEUS"
PROMQL_KEYWORDS = {
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def alert_rules() -> list[dict[str, Any]]:
    return [
        rule for group in load_yaml(ALERTS)["groups"] for rule in group["rules"] if "alert" in rule
    ]


def dashboard() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return doc


def dashboard_exprs() -> list[str]:
    return [target["expr"] for panel in dashboard()["panels"] for target in panel["targets"]]


def emitted_metrics() -> set[str]:
    """The series names in metrics.py's source; a counter family is exposed with ``_total``."""
    source = Path(metrics.__file__).read_text(encoding="utf-8")
    names = set(re.findall(r'"(drtool_[a-z0-9_]+)"', source)) - {metrics.JOB_LABEL}
    names |= {metrics.STORAGE_UP, metrics.STORAGE_ERRORS}
    for arg in re.findall(r"CounterMetricFamily\(\s*([A-Z_]+|\"[a-z0-9_]+\")", source):
        name = arg.strip('"') if arg.startswith('"') else getattr(metrics, arg)
        names.remove(name)
        names.add(f"{name}_total")
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, keywords, label names and
    values, durations and numbers left out)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    found = set()
    for match in re.finditer(r"(?<![\w.$])([A-Za-z_:][\w:]*)\s*(\()?", expr):
        name, call = match.group(1), match.group(2)
        if call is None and name not in PROMQL_KEYWORDS:
            found.add(name)
    return found


def anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def headings(path: Path) -> Iterator[str]:
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"#{1,6}\s+(.*)", line)):
            yield match.group(1)


def anchors(path: Path) -> set[str]:
    return {anchor(heading) for heading in headings(path)}


def run_promtool(*args: str) -> None:
    done = subprocess.run(
        [require_promtool(), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}{done.stderr}"


def test_the_alert_rules_pass_promtool_check() -> None:
    run_promtool("check", "rules", str(ALERTS.relative_to(ROOT)))


def test_the_alert_rules_pass_their_promtool_unit_tests() -> None:
    run_promtool("test", "rules", str(ALERT_TESTS.relative_to(ROOT)))


def test_every_alert_has_a_test_where_it_fires_and_one_where_it_stays_quiet() -> None:
    fires: set[str] = set()
    quiet: set[str] = set()
    for case in load_yaml(ALERT_TESTS)["tests"]:
        for check in case.get("alert_rule_test", []):
            expected = check.get("exp_alerts") or []
            (fires if expected else quiet).add(check["alertname"])
            for alert in expected:
                assert alert["exp_labels"].get("severity") in SEVERITIES, (case["name"], alert)
                assert {"summary", "description", "runbook_url"} <= set(alert["exp_annotations"])
    names = {rule["alert"] for rule in alert_rules()}
    assert len(names) == len(alert_rules()), "alert names must be unique"
    assert names - fires == set(), "alerts without a test where they fire"
    assert names - quiet == set(), "alerts without a test where they stay quiet"
    assert (fires | quiet) - names == set(), "tests of alerts that do not exist"


def test_every_alert_has_a_severity_a_summary_a_description_and_a_runbook() -> None:
    for rule in alert_rules():
        assert rule.get("labels", {}).get("severity") in SEVERITIES, rule["alert"]
        annotations = rule.get("annotations", {})
        assert {"summary", "description", "runbook_url"} <= set(annotations), rule["alert"]
        assert re.fullmatch(r"runbooks/alerts\.md#[a-z0-9-]+", annotations["runbook_url"])
        assert "for" in rule, f"{rule['alert']}: a one-evaluation blip should not page"


def test_each_runbook_url_is_a_heading_of_runbooks_alerts_md() -> None:
    found = anchors(ALERTS_RUNBOOK)
    urls = [rule["annotations"]["runbook_url"] for rule in alert_rules()]
    missing = [url for url in urls if url.partition("#")[2] not in found]
    assert missing == [], f"no such heading in runbooks/alerts.md: {missing}"
    assert len(set(urls)) == len(urls), "two alerts share a runbook section"


def test_the_links_of_the_alert_rules_section_resolve() -> None:
    text = ALERTS_RUNBOOK.read_text(encoding="utf-8")
    section = text[text.index("\n## Alert rules\n") :]
    links = re.findall(r"\]\(([^)#\s]+)(?:#([^)\s]+))?\)", section)
    assert links, "the alert rules link no runbook step"
    for target, fragment in links:
        path = (RUNBOOKS / target).resolve()
        assert path.is_file(), f"runbooks/alerts.md links a missing {target}"
        if fragment:
            assert fragment in anchors(path), f"no heading #{fragment} in {target}"


def test_the_rules_and_the_dashboard_query_only_metrics_drtool_emits() -> None:
    exprs = [rule["expr"] for rule in alert_rules()] + dashboard_exprs()
    known = emitted_metrics() | EXTERNAL_METRICS
    unknown = {name for expr in exprs for name in metric_names(expr)} - known
    assert unknown == set(), f"not emitted by drtool: {sorted(unknown)}"
    objectives = {value for expr in exprs for value in re.findall(r'objective="(\w+)"', expr)}
    assert objectives - set(OBJECTIVE_NAMES) == set()
    # Prometheus owns `job`: a series' own job label would come back as exported_job.
    assert not [expr for expr in exprs if re.search(r"[{,]\s*job\s*=", expr)]


def test_the_metric_name_extraction_skips_functions_labels_and_numbers() -> None:
    expr = (
        'max without (objective) (drtool_a{objective="rpo", instance=~"$instance"}) == 1\n'
        "or time() - drtool_b > 0.8 * drtool_c unless rate(drtool_d_total[5m]) > 1e6\n"
        "or drtool_e > ignoring (replica) group_left drtool_f offset 5m"
    )
    assert metric_names(expr) == {f"drtool_{c}" for c in "abcdef"} - {"drtool_d"} | {
        "drtool_d_total"
    }
    emitted = emitted_metrics()
    assert {"drtool_metrics_storage_errors_total", "drtool_job_last_run_ok"} <= emitted
    assert not {"drtool_metrics_storage_errors", "drtool_job"} & emitted


def test_the_committed_dashboard_is_what_gen_dashboard_generates() -> None:
    done = subprocess.run(
        [sys.executable, str(GENERATOR)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout == DASHBOARD.read_text(encoding="utf-8"), (
        "run: python deploy/monitoring/gen_dashboard.py --write"
    )


def test_the_dashboard_is_importable_with_a_prometheus_datasource_input() -> None:
    doc = dashboard()
    for key in ("title", "uid", "panels", "schemaVersion", "templating", "time", "__inputs"):
        assert key in doc, key
    assert isinstance(doc["schemaVersion"], int) and 36 <= doc["schemaVersion"] <= 41
    [source] = [i for i in doc["__inputs"] if i["name"] == DATASOURCE_INPUT]
    assert source["type"] == "datasource" and source["pluginId"] == "prometheus"
    inputs = {i["name"] for i in doc["__inputs"]}
    referenced = set(re.findall(r"\$\{(DS_\w+)\}", DASHBOARD.read_text(encoding="utf-8")))
    assert referenced == inputs
    for variable in doc["templating"]["list"]:
        assert variable["name"] and variable["type"] in {"query", "datasource", "custom"}
        if variable["type"] == "query":
            assert variable["datasource"]["uid"] == "${" + DATASOURCE_INPUT + "}"


def test_the_dashboard_panels_are_well_formed_and_do_not_overlap() -> None:
    panels = dashboard()["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(set(ids)) == len(ids), f"panel ids repeat: {ids}"
    cells: dict[tuple[int, int], str] = {}
    uid = "${" + DATASOURCE_INPUT + "}"
    for panel in panels:
        title = panel["title"]
        assert panel["type"] in PANEL_TYPES and title, panel
        grid = panel["gridPos"]
        x, y, w, h = (grid[key] for key in ("x", "y", "w", "h"))
        assert all(isinstance(v, int) for v in (x, y, w, h)), title
        assert 0 <= x < GRID_COLUMNS and 1 <= w <= GRID_COLUMNS and x + w <= GRID_COLUMNS, title
        assert y >= 0 and h >= 1, title
        for cell in itertools.product(range(x, x + w), range(y, y + h)):
            assert cell not in cells, f"{title!r} overlaps {cells[cell]!r} at {cell}"
            cells[cell] = title
        assert panel["datasource"] == {"type": "prometheus", "uid": uid}, title
        refs = [target["refId"] for target in panel["targets"]]
        assert panel["targets"] and len(set(refs)) == len(refs) and all(refs), title
        for target in panel["targets"]:
            assert target["expr"].strip(), title
            assert target.get("datasource", panel["datasource"])["uid"] == uid, title


@pytest.mark.parametrize(
    "metric",
    [
        "drtool_backup_last_timestamp_seconds",  # RPO exposure, last backup age
        "drtool_rpo_objective_seconds",
        "drtool_job_last_run_ok",
        "drtool_drill_last_rto_seconds",
        "drtool_rto_objective_seconds",
        "drtool_verify_last_ok",
        "drtool_replica_lag_seconds",
        "drtool_stream_rpo_seconds",
        "drtool_stream_slot_lag_bytes",
        "drtool_bundle_drift",
    ],
)
def test_the_dashboard_shows(metric: str) -> None:
    assert any(metric in metric_names(expr) for expr in dashboard_exprs())
