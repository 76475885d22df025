"""The ``status`` use case: health against the objectives (services/health.py), from manifests
and small records only, and the metrics textfile refreshed. It stores nothing and notifies
nobody: it is what health checks and alerts call, as often as they like."""

from __future__ import annotations

from drtool.services.context import Context
from drtool.services.health import StatusResult, gather_status
from drtool.services.metrics import publish_metrics

__all__ = ["StatusResult", "check_status"]


def check_status(ctx: Context) -> StatusResult:
    result = gather_status(ctx)
    publish_metrics(ctx.config, result)
    return result
