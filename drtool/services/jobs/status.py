"""The ``status`` use case: health against the objectives (services/jobs/health.py), from manifests
and small records only, and the metrics textfile refreshed. It stores nothing and notifies
nobody: it is what health checks and alerts call, as often as they like."""

from __future__ import annotations

from drtool.services.context import Context
from drtool.services.jobs.health import StatusResult, gather_status
from drtool.services.jobs.metrics import publish_metrics

__all__ = ["StatusResult", "check_status"]


def check_status(ctx: Context) -> StatusResult:
    result = gather_status(ctx)
    publish_metrics(ctx.config, result)
    return result
