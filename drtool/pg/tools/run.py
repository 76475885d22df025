"""Subprocess driver for PostgreSQL client tools: argv lists, passwords via the environment,
stdout streamed in fixed chunks, stderr drained into a bounded tail, children always reaped."""

from __future__ import annotations

import collections
import contextlib
import fcntl
import os
import signal
import subprocess
import threading
from collections.abc import Iterator, Mapping
from typing import IO

from drtool.errors import SubprocessError
from drtool.log import get_logger, redact

CHUNK_BYTES = 1024 * 1024
STDERR_TAIL_LINES = 20
# Linux F_SETPIPE_SZ: a 1 MiB pipe lets pg_dump keep writing while we compress the last chunk.
_F_SETPIPE_SZ = 1031
_PIPE_BYTES = 1024 * 1024

log = get_logger("pg")


class StderrTail:
    """Drains a child's stderr on a thread, keeping the last lines for error messages."""

    def __init__(self, stream: IO[bytes], lines: int = STDERR_TAIL_LINES) -> None:
        self._lines: collections.deque[str] = collections.deque(maxlen=lines)
        self._thread = threading.Thread(target=self._drain, args=(stream,), daemon=True)
        self._thread.start()

    def _drain(self, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self._lines.append(line)
                log.debug("child: %s", line)
        stream.close()

    def text(self) -> str:
        self._thread.join(timeout=5)
        return redact("\n".join(self._lines))


@contextlib.contextmanager
def pgpass_env(
    password: str | None, base_env: Mapping[str, str] | None = None
) -> Iterator[dict[str, str]]:
    """An environment for a libpq child with the password in ``PGPASSWORD``, never in argv.

    The environment (readable only by the same user and root) rather than a temporary pgpass
    file: a file would outlive a drtool killed with SIGKILL; the environment dies with the child.
    """
    env = dict(os.environ if base_env is None else base_env)
    if password is not None:
        env["PGPASSWORD"] = password
    yield env


def _enlarge_pipe(stream: IO[bytes]) -> None:
    with contextlib.suppress(OSError):
        fcntl.fcntl(stream.fileno(), _F_SETPIPE_SZ, _PIPE_BYTES)


def _reap(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGKILL)
    proc.wait()


def stream_stdout(
    argv: list[str], env: Mapping[str, str], what: str, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[bytes]:
    """Run ``argv`` and yield its stdout in chunks; raise SubprocessError with the stderr tail
    if it exits non-zero. If the consumer stops early or fails, the child is killed and reaped."""
    log.debug("running %s", argv[0])
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env),
        )
    except OSError as exc:
        raise SubprocessError(f"cannot start {what}: {exc.strerror}") from exc
    assert proc.stdout is not None and proc.stderr is not None
    tail = StderrTail(proc.stderr)
    _enlarge_pipe(proc.stdout)
    finished = False
    try:
        reader = proc.stdout
        while True:
            chunk = reader.read(chunk_bytes)
            if not chunk:
                break
            yield chunk
        code = proc.wait()
        finished = True
        if code != 0:
            raise SubprocessError(
                f"{what} failed (exit {code}): {tail.text() or 'no error output'}",
                hint="see the error above; the partial upload was discarded",
            )
    finally:
        if not finished:
            _reap(proc)
        proc.stdout.close()


def run_capture(argv: list[str], env: Mapping[str, str], what: str, timeout_s: float = 600) -> str:
    """Run a short command, return its stdout; SubprocessError with the stderr tail if it fails."""
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=dict(env),
            timeout=timeout_s,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SubprocessError(f"cannot run {what}: {exc}") from exc
    if done.returncode != 0:
        err = redact(done.stderr.decode("utf-8", "replace").strip()[-2000:])
        raise SubprocessError(f"{what} failed (exit {done.returncode}): {err or 'no error output'}")
    return done.stdout.decode("utf-8", "replace")
