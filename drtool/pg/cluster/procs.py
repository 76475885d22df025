"""Process helpers for the ephemeral cluster: free ports, /proc inspection, reaping, and
SIGTERM turned into SystemExit so ``with`` blocks remove what they started."""

from __future__ import annotations

import signal
import socket
import threading
import time
from pathlib import Path
from types import FrameType
from typing import NoReturn

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name: [state, ppid, ...]."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def alive(pid: int) -> bool:
    # A killed postmaster may linger as a zombie when PID 1 does not reap (containers).
    fields = proc_stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def is_postgres(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() in ("postgres", "postmaster")
    except OSError:
        return False


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        fields = proc_stat(int(entry.name)) if entry.name.isdigit() else None
        if fields is not None and fields[1] == str(pid):
            found.append(int(entry.name))
    return found


def wait_dead(pids: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so ``with`` blocks and atexit remove clusters."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, raise_system_exit)


def raise_system_exit(signum: int, frame: FrameType | None) -> NoReturn:
    raise SystemExit(128 + signum)
