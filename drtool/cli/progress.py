"""Progress on stderr (bytes, rate) when stderr is a terminal; nothing otherwise."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

from drtool.services.context import ProgressFactory, no_progress

if TYPE_CHECKING:
    from drtool.pipeline.stages import ProgressFn  # zstandard: not for type names

REFRESH_S = 0.25


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


def progress_factory(show: bool) -> ProgressFactory:
    if not show:
        return no_progress

    def factory(stage: str, total: int | None) -> ProgressFn:
        started = time.monotonic()
        state = {"done": 0, "shown": 0.0}

        def update(n: int) -> None:
            state["done"] += n
            now = time.monotonic()
            if now - state["shown"] < REFRESH_S:
                return
            state["shown"] = now
            elapsed = max(now - started, 1e-6)
            rate = state["done"] / elapsed
            line = f"{stage}: {_human(state['done'])} at {_human(rate)}/s"
            if total:
                pct = 100 * state["done"] / total
                eta = (total - state["done"]) / rate if rate else 0
                line += f" ({pct:.0f}%, ETA {eta:.0f}s)"
            sys.stderr.write("\r\x1b[2K" + line)
            sys.stderr.flush()
            if total and state["done"] >= total:
                sys.stderr.write("\n")

        return update

    return factory
