"""The explicit context every service receives: configuration, storage, catalog, clock, progress."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from drtool.catalog.catalog import Catalog
from drtool.config import Config
from drtool.log import REDACTOR
from drtool.storage import open_storage
from drtool.storage.base import Storage

if TYPE_CHECKING:
    from drtool.pg.conn import Target
    from drtool.pipeline.stages import ProgressFn

# A progress factory: given a stage name and the expected total bytes (if known), an update fn.
ProgressFactory = Callable[[str, int | None], "ProgressFn"]
# Raises if the run was asked to stop (a scheduled run's timeout or shutdown), else nothing.
AbortCheck = Callable[[], None]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def no_progress(_stage: str, _total: int | None) -> ProgressFn:
    return lambda _n: None


def never_abort() -> None:
    return None


@dataclass
class Context:
    config: Config
    storage: Storage
    clock: Callable[[], datetime] = _utcnow
    progress: ProgressFactory = no_progress
    abort_check: AbortCheck = never_abort
    # The replica this context reads and writes instead of the primary (`--from NAME`), or None.
    source: str | None = None
    catalog: Catalog = field(init=False)

    def __post_init__(self) -> None:
        self.catalog = Catalog(self.storage)

    def check_abort(self) -> None:
        """Raise if this run was asked to stop. Data streams are checked at every chunk (their
        progress callbacks); stages that move no data (a drill's validation, a restore's
        counting) call this between their steps, so an abort does not wait for the whole job."""
        self.abort_check()

    @property
    def where(self) -> str:
        """The storage this context works on, as messages name it."""
        return f"replica {self.source}" if self.source else "the primary storage"

    def replica_storage(self, name: str) -> Storage:
        """Open the configured replica ``name`` (UsageError naming the configured ones)."""
        return open_storage(self.config.storage.replica(name), self.config.base_dir)

    def database(self) -> Target:
        from drtool.pg.conn import parse_target  # psycopg: only for commands that connect

        pw = self.config.database.password
        return parse_target(self.config.database.dsn, pw.get_secret_value() if pw else None)


def with_source(ctx: Context, source: str | None) -> Context:
    """``ctx`` switched to the replica ``source`` (`--from NAME`; UsageError naming the
    configured replicas for an unknown one), or ``ctx`` itself when it already reads there.
    The primary storage is not opened: a lost primary stops nothing."""
    if source is None or source == ctx.source:
        return ctx
    return Context(
        ctx.config,
        ctx.replica_storage(source),
        ctx.clock,
        ctx.progress,
        ctx.abort_check,
        source=source,
    )


def build_context(
    config: Config,
    *,
    clock: Callable[[], datetime] | None = None,
    progress: ProgressFactory | None = None,
    source: str | None = None,
) -> Context:
    """Register the config's secrets with the log redactor and open the storage: the primary,
    or with ``source`` the replica of that name (`--from NAME`: a lost primary stops nothing)."""
    for secret in config.secrets():
        REDACTOR.add(secret)
    location = config.storage.replica(source) if source else config.storage
    storage = open_storage(location, config.base_dir)
    return Context(config, storage, clock or _utcnow, progress or no_progress, source=source)
