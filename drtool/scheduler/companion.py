"""A long-running drtool process the scheduler keeps beside its jobs (``stream run`` when
``stream.enabled``): started with the scheduler, restarted with a growing delay when it dies,
and stopped with SIGTERM (it flushes and exits) when the scheduler stops."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Sequence

from drtool.log import get_logger

log = get_logger("scheduler")

FIRST_DELAY = 1.0
MAX_DELAY = 60.0
HEALTHY_AFTER = 60.0  # a process that ran this long resets the restart delay


class Companion:
    def __init__(self, name: str, argv: Sequence[str]) -> None:
        self.name = name
        self.argv = list(argv)
        self.restarts = 0
        self.last_exit: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._supervise, name=f"companion-{name}", daemon=True
        )

    @property
    def running(self) -> bool:
        with self._lock:
            return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        self._thread.start()

    def _supervise(self) -> None:
        delay = FIRST_DELAY
        while not self._stop.is_set():
            started = time.monotonic()
            with self._lock:
                if self._stop.is_set():
                    return
                # The child inherits stdout/stderr: its log lines join the scheduler's.
                self._proc = subprocess.Popen(self.argv)
                proc = self._proc
            log.info("%s: started (pid %d)", self.name, proc.pid, extra={"event": "companion"})
            code = proc.wait()
            self.last_exit = code
            if self._stop.is_set():
                return
            if time.monotonic() - started >= HEALTHY_AFTER:
                delay = FIRST_DELAY
            self.restarts += 1
            log.error(
                "%s exited with %d; restarting in %.0fs",
                self.name,
                code,
                delay,
                extra={"event": "companion"},
            )
            if self._stop.wait(delay):
                return
            delay = min(delay * 2, MAX_DELAY)

    def stop(self, grace_seconds: float) -> int | None:
        """SIGTERM, then up to ``grace_seconds`` to exit, then SIGKILL; its exit code."""
        self._stop.set()
        with self._lock:
            proc = self._proc
        if proc is None or proc.poll() is not None:
            return proc.returncode if proc is not None else None
        proc.terminate()
        try:
            return proc.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            log.error("%s did not stop within %.0fs; killing it", self.name, grace_seconds)
            proc.kill()
            return proc.wait()
