"""``stream drop``: remove the stream's replication slot (and its two publications), e.g. before
the WAL it retains fills the server's disk. Stored segments stay; a later ``stream run`` starts
a new chain with a new base backup."""

from __future__ import annotations

from dataclasses import dataclass

from drtool.errors import EXIT_OK, RefusedError
from drtool.log import get_logger
from drtool.pg.conn import connect
from drtool.pg.dump.snapshot import advisory_lock
from drtool.pg.stream.slot import (
    check_slot,
    drop_publication,
    drop_slot,
    insert_only_publication,
    slot_state,
)
from drtool.services.context import Context
from drtool.services.stream.run import lock_name

log = get_logger("stream")


@dataclass(frozen=True)
class StreamDropResult:
    slot: str
    dropped_slot: bool
    retained_bytes: int | None
    dropped_publications: list[str]
    exit_code: int = EXIT_OK

    def item_id(self) -> str | None:
        return None

    def summary(self) -> str:
        return f"slot {self.slot} {'dropped' if self.dropped_slot else 'not found'}"


def drop_stream(ctx: Context) -> StreamDropResult:
    cfg = ctx.config.stream
    target = ctx.database()
    with (
        advisory_lock(target, lock_name(cfg.slot)),
        connect(target, f"dropping replication slot {cfg.slot}") as conn,
    ):
        state = slot_state(conn, cfg.slot)
        retained = state.retained_bytes if state is not None else None
        if state is not None:
            check_slot(state, target.dbname)
            if state.active:
                raise RefusedError(
                    f"replication slot {cfg.slot} is in use by process {state.active_pid}",
                    hint="stop `drtool stream run` first (SIGTERM; it flushes and exits)",
                )
            drop_slot(conn, cfg.slot)
            log.warning(
                "dropped replication slot %s (it held %d bytes of WAL): changes from now on "
                "are not captured until `drtool stream run` starts a new chain",
                cfg.slot,
                retained or 0,
            )
        dropped = [
            name
            for name in (cfg.publication, insert_only_publication(cfg.publication))
            if drop_publication(conn, name)
        ]
    return StreamDropResult(cfg.slot, state is not None, retained, dropped)
