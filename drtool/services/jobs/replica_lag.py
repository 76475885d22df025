"""How far each replica is behind the primary, from backup manifests only: its newest complete
backup and the lag (the age of the oldest primary backup it lacks), judged against
``objectives.replica_lag``; a replica that cannot be read is reported, never fatal."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from drtool.catalog.catalog import Catalog
from drtool.catalog.manifest import Manifest
from drtool.config import ObjectivesConfig, format_duration
from drtool.errors import DrtoolError
from drtool.log import get_logger
from drtool.services.context import Context

log = get_logger("status")


@dataclass(frozen=True)
class ReplicaState:
    """One replica as `status` sees it. ``newest_id``: its newest complete backup (None if it
    has none); ``lag_seconds``: the age of the oldest complete primary backup newer than that
    one (0 when it has the primary's newest; the primary's newest backup's age when it has
    none); None with ``error`` when the replica could not be read. ``ok``: readable and within
    ``objectives.replica_lag`` (if set)."""

    name: str
    newest_id: str | None
    newest_at: datetime | None
    lag_seconds: float | None
    ok: bool
    storage: str
    error: str | None = None
    behind_id: str | None = None  # the oldest primary backup the replica lacks


def _at(manifest: Manifest) -> datetime:
    at = manifest.snapshot_at or manifest.created_at
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def lag_of(
    primary: Sequence[Manifest], replica: Sequence[Manifest], now: datetime
) -> tuple[float, str | None]:
    """(lag in seconds, the primary backup it is measured from), both lists newest first."""
    if not primary:
        return 0.0, None
    if not replica:
        return round((now - _at(primary[0])).total_seconds(), 3), primary[0].id
    newest = max(_at(m) for m in replica)
    missing = [m for m in primary if _at(m) > newest]
    if not missing:
        return 0.0, None
    oldest = min(missing, key=_at)
    return round((now - _at(oldest)).total_seconds(), 3), oldest.id


def _why(exc: Exception) -> str:
    return exc.message if isinstance(exc, DrtoolError) else f"{type(exc).__name__}: {exc}"


def replica_states(ctx: Context, primary: Sequence[Manifest]) -> list[ReplicaState]:
    """Every configured replica, in configuration order; ``primary``: the primary's complete
    backups, newest first. Reads each replica's backup manifests, never a data object."""
    now = ctx.clock()
    limit = ctx.config.objectives.replica_lag
    states: list[ReplicaState] = []
    for replica in ctx.config.storage.replicas:
        description = replica.url
        try:
            storage = ctx.replica_storage(replica.name)
            description = storage.description
            backups = Catalog(storage).listing("backup").items
        except Exception as exc:
            log.warning("replica %s cannot be read: %s", replica.name, _why(exc))
            states.append(
                ReplicaState(replica.name, None, None, None, False, description, _why(exc))
            )
            continue
        lag, behind = lag_of(primary, backups, now)
        newest = backups[0] if backups else None
        within = limit is None or lag <= limit.total_seconds()
        states.append(
            ReplicaState(
                name=replica.name,
                newest_id=newest.id if newest else None,
                newest_at=_at(newest) if newest else None,
                lag_seconds=lag,
                ok=within,
                storage=description,
                behind_id=behind,
            )
        )
    return states


def replica_breaches(
    states: Sequence[ReplicaState], objectives: ObjectivesConfig, age: Callable[[float], str]
) -> list[str]:
    """The breach text for each replica that is unreadable or lags beyond the objective."""
    limit = objectives.replica_lag
    found: list[str] = []
    for state in states:
        if state.error is not None:
            found.append(f"replica {state.name} cannot be read ({state.storage}): {state.error}")
        elif limit is not None and state.lag_seconds is not None and not state.ok:
            has = (
                f"its newest backup is {state.newest_id}" if state.newest_id else "it has no backup"
            )
            found.append(
                f"replica {state.name} lags {age(state.lag_seconds)} behind the primary "
                f"({has}; backup {state.behind_id} is missing there): "
                f"objective replica_lag {format_duration(limit)} (run `drtool replicate`)"
            )
    return found
