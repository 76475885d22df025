"""Generates drtool-dashboard.json, the Grafana dashboard on drtool's metrics: prints it, or
with ``--write`` writes it next to this file. tests/integration/test_monitoring.py checks that
the committed JSON is this script's output, so edit here and rerun:

    python deploy/monitoring/gen_dashboard.py --write

Import the JSON in Grafana (Dashboards > New > Import) and pick the Prometheus data source
for ``DS_PROMETHEUS``: every panel queries ``${DS_PROMETHEUS}``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).with_name("drtool-dashboard.json")
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
SEL = '{instance=~"$instance"}'  # every query is scoped by the instance variable

Panel = dict[str, Any]


def target(expr: str, legend: str, ref: str) -> dict[str, Any]:
    return {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "refId": ref}


def targets(*pairs: tuple[str, str]) -> list[dict[str, Any]]:
    return [target(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(pairs)]


def thresholds(*steps: tuple[float | None, str]) -> dict[str, Any]:
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for v, c in steps]}


def panel(
    kind: str,
    title: str,
    description: str,
    grid: tuple[int, int, int, int],
    queries: list[dict[str, Any]],
    unit: str = "short",
    **extra: Any,
) -> Panel:
    x, y, w, h = grid
    defaults: dict[str, Any] = {"unit": unit}
    defaults.update(extra.pop("defaults", {}))
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": queries,
        "fieldConfig": {"defaults": defaults, "overrides": extra.pop("overrides", [])},
        "options": extra.pop("options", {}),
        **extra,
    }


OK_FAILED = [
    {
        "type": "value",
        "options": {
            "0": {"text": "FAILED", "color": "red", "index": 0},
            "1": {"text": "OK", "color": "green", "index": 1},
        },
    }
]
SAME_DRIFT = [
    {
        "type": "value",
        "options": {
            "0": {"text": "same", "color": "green", "index": 0},
            "1": {"text": "drifted", "color": "red", "index": 1},
        },
    }
]
STATE_TIMELINE = {"showValue": "auto", "mergeValues": True, "legend": {"showLegend": False}}
TABLE_LEGEND = {"legend": {"displayMode": "table", "placement": "bottom", "showLegend": True}}


def objective_line(name: str) -> dict[str, Any]:
    """The objective series drawn as a dashed red line."""
    return {
        "matcher": {"id": "byName", "options": name},
        "properties": [
            {"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}},
            {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
        ],
    }


def panels() -> list[Panel]:
    found = [
        panel(
            "timeseries",
            "RPO exposure vs objective",
            "Seconds since the newest complete backup's snapshot (recomputed from its timestamp, "
            "so it grows even while no drtool command runs) against objectives.rpo.",
            (0, 0, 12, 8),
            targets(
                (f"time() - drtool_backup_last_timestamp_seconds{SEL}", "exposure {{instance}}"),
                (f"drtool_rpo_objective_seconds{SEL}", "objective"),
            ),
            unit="s",
            overrides=[objective_line("objective")],
            options=TABLE_LEGEND,
        ),
        panel(
            "stat",
            "Last backup age",
            "Age of the newest complete backup's snapshot; orange beyond a day (the nightly "
            "backup schedule): the RPO alert judges it against objectives.rpo.",
            (12, 0, 6, 8),
            targets((f"time() - drtool_backup_last_timestamp_seconds{SEL}", "{{instance}}")),
            unit="s",
            defaults={
                "thresholds": thresholds((None, "green"), (86400, "orange"), (172800, "red"))
            },
            options={"colorMode": "background", "reduceOptions": {"calcs": ["lastNotNull"]}},
        ),
        panel(
            "stat",
            "Verification status",
            "The most recent `drtool verify` run (1 OK, 0 problems found) and its failed items.",
            (18, 0, 6, 8),
            targets(
                (f"drtool_verify_last_ok{SEL}", "last verify"),
                (f"drtool_verify_items_failed{SEL}", "items failed"),
            ),
            defaults={"thresholds": thresholds((None, "green"))},
            overrides=[
                {
                    "matcher": {"id": "byName", "options": "last verify"},
                    "properties": [{"id": "mappings", "value": OK_FAILED}],
                },
                {
                    "matcher": {"id": "byName", "options": "items failed"},
                    "properties": [
                        {"id": "thresholds", "value": thresholds((None, "green"), (1, "red"))}
                    ],
                },
            ],
            options={"colorMode": "background", "reduceOptions": {"calcs": ["lastNotNull"]}},
        ),
        panel(
            "state-timeline",
            "Job outcomes",
            "Whether each drtool job's last run succeeded, per drtool_job.",
            (0, 8, 12, 8),
            targets((f"drtool_job_last_run_ok{SEL}", "{{drtool_job}}")),
            defaults={"mappings": OK_FAILED},
            options=STATE_TIMELINE,
        ),
        panel(
            "state-timeline",
            "Objectives breached",
            "drtool_objective_breached per objective (what `drtool status` exits 4 on).",
            (12, 8, 12, 8),
            targets((f"drtool_objective_breached{SEL}", "{{objective}}")),
            defaults={
                "mappings": [
                    {
                        "type": "value",
                        "options": {
                            "0": {"text": "met", "color": "green", "index": 0},
                            "1": {"text": "BREACHED", "color": "red", "index": 1},
                        },
                    }
                ]
            },
            options=STATE_TIMELINE,
        ),
        panel(
            "timeseries",
            "Drill RTO vs objective",
            "RTO measured by the newest DR drill (start to validated) against objectives.rto.",
            (0, 16, 12, 8),
            targets(
                (f"drtool_drill_last_rto_seconds{SEL}", "drill RTO {{instance}}"),
                (f"drtool_rto_objective_seconds{SEL}", "objective"),
            ),
            unit="s",
            overrides=[objective_line("objective")],
            options=TABLE_LEGEND,
        ),
        panel(
            "timeseries",
            "Replica lag",
            "Per replica: the age of the oldest primary backup it lacks (0 when it has the "
            "newest), against objectives.replica_lag; a point at 0 labelled unreadable: the "
            "replica could not be read.",
            (12, 16, 12, 8),
            targets(
                (f"drtool_replica_lag_seconds{SEL}", "{{replica}}"),
                (f"drtool_replica_lag_objective_seconds{SEL}", "objective"),
                (f"drtool_replica_up{SEL} == 0", "{{replica}} unreadable"),
            ),
            unit="s",
            overrides=[objective_line("objective")],
            options=TABLE_LEGEND,
        ),
        panel(
            "timeseries",
            "Stream RPO",
            "Continuous archiving: seconds of changes not yet stored.",
            (0, 24, 8, 8),
            targets((f"drtool_stream_rpo_seconds{SEL}", "stream RPO {{instance}}")),
            unit="s",
            options=TABLE_LEGEND,
        ),
        panel(
            "timeseries",
            "Stream slot lag",
            "WAL retained by the stream's replication slot against stream.max_slot_lag.",
            (8, 24, 8, 8),
            targets(
                (f"drtool_stream_slot_lag_bytes{SEL}", "slot lag {{instance}}"),
                (f"drtool_stream_max_slot_lag_bytes{SEL}", "limit"),
            ),
            unit="bytes",
            overrides=[objective_line("limit")],
            options=TABLE_LEGEND,
        ),
        panel(
            "state-timeline",
            "Bundle drift",
            "Per captured variable or file: whether it now differs from the newest backup's "
            "bundle (or the variable is unset).",
            (16, 24, 8, 8),
            targets((f"drtool_bundle_drift{SEL}", "{{kind}} {{name}}")),
            defaults={"mappings": SAME_DRIFT},
            options=STATE_TIMELINE,
        ),
    ]
    return [{"id": i, **p} for i, p in enumerate(found, start=1)]


def dashboard() -> dict[str, Any]:
    return {
        "__inputs": [
            {
                "name": "DS_PROMETHEUS",
                "label": "Prometheus",
                "description": "The Prometheus that scrapes drtool (or node_exporter's textfile)",
                "type": "datasource",
                "pluginId": "prometheus",
                "pluginName": "Prometheus",
            }
        ],
        "__requires": [
            {"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.4.0"},
            {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
        ],
        "annotations": {"list": []},
        "description": "drtool: RPO/RTO against objectives, jobs, verification, drills, "
        "replicas, continuous archiving and bundle drift (runbooks/alerts.md).",
        "editable": True,
        "graphTooltip": 1,
        "links": [],
        "panels": panels(),
        "refresh": "1m",
        "schemaVersion": 39,
        "tags": ["drtool", "backup", "dr"],
        "templating": {
            "list": [
                {
                    "name": "instance",
                    "label": "instance",
                    "type": "query",
                    "datasource": DATASOURCE,
                    "query": {
                        "query": "label_values(drtool_metrics_storage_up, instance)",
                        "refId": "instance",
                    },
                    "definition": "label_values(drtool_metrics_storage_up, instance)",
                    "includeAll": True,
                    "multi": True,
                    "allValue": ".*",
                    "current": {},
                    "refresh": 2,
                    "sort": 1,
                }
            ]
        },
        "time": {"from": "now-7d", "to": "now"},
        "timepicker": {},
        "timezone": "utc",
        "title": "drtool: backups and disaster recovery",
        "uid": "drtool-dr",
        "version": 1,
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    if argv == ["--write"]:
        OUT.write_text(render(), encoding="utf-8")
        return 0
    if argv:
        print(f"usage: {Path(__file__).name} [--write]", file=sys.stderr)
        return 2
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
