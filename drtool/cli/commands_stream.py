"""``stream run|status|drop``: continuous archiving, a thin shell over services.stream."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import click

from drtool.cli.render_stream import drop_result, run_result, status_result
from drtool.cli.state import common_options, get_state
from drtool.services.jobs.audited import stream_drop_audited
from drtool.services.jobs.calls import stream_run_job
from drtool.services.stream.status import stream_status


@click.group("stream")
def stream_group() -> None:
    """Continuous archiving of committed changes (point-in-time recovery; docs/streaming.md)."""


@stream_group.command("run")
@click.option(
    "--once",
    is_flag=True,
    help="Store what is committed now (a base backup first if one is due) and exit, instead "
    "of running until SIGTERM.",
)
@common_options
def stream_run_cmd(once: bool) -> int:
    """Keep the replication slot and store committed changes as encrypted segments every
    stream.flush_interval; a base backup at start and every stream.base_backup_every.
    SIGTERM or Ctrl-C: store what is committed, then exit 0. The slot stays: a stopped
    stream loses nothing, but the server keeps WAL for it (`drtool stream status`)."""
    state = get_state()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        result = stream_run_job(state.context(), stop, once=once)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    run_result(result, state.json)
    return result.exit_code


@stream_group.command("status")
@common_options
def stream_status_cmd() -> int:
    """The slot's retained WAL, the newest stored segment and its age, the stream's RPO.
    Exit 4 when the slot holds more than stream.max_slot_lag, or an enabled stream is not
    storing."""
    state = get_state()
    result = stream_status(state.context())
    status_result(result, state.json)
    return 4 if result.breaches else 0


@stream_group.command("drop")
@common_options
def stream_drop_cmd() -> int:
    """Drop the replication slot (and drtool's publications): the server recycles the WAL it
    held. Stored segments stay. Changes from now on are not captured until `stream run`
    starts a new chain (with a new base backup). Exit 5 while a stream run uses the slot."""
    state = get_state()
    result = stream_drop_audited(state.context())
    drop_result(result, state.json)
    return result.exit_code
