"""The ``status`` use case: health against the objectives (services/jobs/health.py), from manifests
and small records only, and the metrics textfile refreshed. It stores nothing and notifies
nobody: it is what health checks and alerts call, as often as they like."""

from __future__ import annotations

from drtool.services.context import Context
from drtool.services.jobs.health import StatusResult, gather_status

__all__ = ["StatusResult", "check_status"]


def check_status(ctx: Context) -> StatusResult:
    result = gather_status(ctx)
    if ctx.config.metrics.textfile is not None:
        # Imported here: prometheus_client is needed only to write a configured textfile.
        from drtool.services.jobs.metrics import publish_metrics

        publish_metrics(ctx.config, result)
    return result
