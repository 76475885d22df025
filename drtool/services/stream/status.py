"""``stream status`` and the stream's part of ``status``: the slot's retained WAL (read from the
server: a stopped stream's slot keeps growing), the newest stored segment, the RPO."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from drtool.catalog.manifest import SegmentManifest
from drtool.catalog.records.stream_state import StreamState, read_state
from drtool.catalog.segments import newest_segment
from drtool.config import Config
from drtool.errors import DrtoolError
from drtool.pg.conn import connect
from drtool.pg.stream.slot import SlotState, slot_state
from drtool.services.context import Context

# The objective names, as in `drtool_objective_breached{objective=...}` (services/jobs/health.py).
OBJECTIVE_STREAM_SLOT_LAG = "stream_slot_lag"
OBJECTIVE_STREAM_RPO = "stream_rpo"


@dataclass(frozen=True)
class StreamStatus:
    slot: str
    enabled: bool
    max_slot_lag: int
    checked_at: datetime
    slot_state: SlotState | None = None
    slot_error: str | None = None  # the server could not be asked
    state: StreamState | None = None
    newest: SegmentManifest | None = None
    breaches: list[tuple[str, str]] = field(default_factory=list)

    @property
    def slot_exists(self) -> bool | None:
        return None if self.slot_error is not None else self.slot_state is not None

    @property
    def retained_bytes(self) -> int | None:
        if self.slot_state is not None:
            return self.slot_state.retained_bytes
        return None

    @property
    def stored_through(self) -> datetime | None:
        """Every change committed before this time is stored (the stream's recovery point)."""
        points = [self.state.stored_through_at if self.state else None]
        if self.newest is not None:
            points.append(self.newest.last_commit_at)
        found = [p for p in points if p is not None]
        return max(found) if found else None

    @property
    def rpo_seconds(self) -> float | None:
        through = self.stored_through
        return (self.checked_at - through).total_seconds() if through else None

    @property
    def running(self) -> bool:
        return bool(self.state and self.state.running)

    @property
    def newest_age_seconds(self) -> float | None:
        if self.newest is None:
            return None
        return (self.checked_at - self.newest.finished_at).total_seconds()


def _judge(config: Config, status: StreamStatus) -> list[tuple[str, str]]:
    cfg = config.stream
    found: list[tuple[str, str]] = []
    retained = status.retained_bytes
    limit = cfg.max_slot_lag
    if retained is not None and retained > limit:
        found.append(
            (
                OBJECTIVE_STREAM_SLOT_LAG,
                f"replication slot {cfg.slot} holds {_size(retained)} of WAL on the server "
                f"(stream.max_slot_lag {_size(limit)}): the server's disk fills while it grows; "
                "restart `drtool stream run`, or `drtool stream drop` (runbooks/pitr.md)",
            )
        )
    if not cfg.enabled:
        return found
    if status.slot_error is not None:
        found.append(
            (OBJECTIVE_STREAM_SLOT_LAG, f"replication slot {cfg.slot}: {status.slot_error}")
        )
    stale_after = 3 * cfg.flush_interval.total_seconds() + 60
    rpo = status.rpo_seconds
    if status.state is None or rpo is None:
        found.append(
            (OBJECTIVE_STREAM_RPO, f"stream.enabled, but stream {cfg.slot} has stored nothing yet")
        )
    elif not status.running or rpo > stale_after:
        found.append(
            (
                OBJECTIVE_STREAM_RPO,
                f"stream {cfg.slot} is {'stopped' if not status.running else 'not storing'}: "
                f"changes since {status.stored_through} are not in storage "
                f"(RPO {int(rpo)}s, flush_interval "
                f"{int(cfg.flush_interval.total_seconds())}s; runbooks/pitr.md)",
            )
        )
    return found


def _size(n: int) -> str:
    for unit, size in (("GB", 1000**3), ("MB", 1000**2), ("kB", 1000)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def stream_status(ctx: Context, *, ask_server: bool = True) -> StreamStatus:
    cfg = ctx.config.stream
    slot: SlotState | None = None
    error: str | None = None
    if ask_server:
        try:
            with connect(ctx.database(), "reading the replication slot") as conn:
                slot = slot_state(conn, cfg.slot)
        except DrtoolError as exc:
            error = exc.message
    status = StreamStatus(
        slot=cfg.slot,
        enabled=cfg.enabled,
        max_slot_lag=cfg.max_slot_lag,
        checked_at=ctx.clock(),
        slot_state=slot,
        slot_error=error,
        state=read_state(ctx.storage, cfg.slot),
        newest=newest_segment(ctx.storage, cfg.slot),
    )
    return StreamStatus(**{**status.__dict__, "breaches": _judge(ctx.config, status)})
