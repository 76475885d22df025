"""pg_restore as a sink: plaintext dump chunks fed to its stdin, stderr kept as a bounded tail;
reading a dump's table of contents (TOC)."""

from __future__ import annotations

import contextlib
import re
import subprocess
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from drtool.errors import IntegrityError, SubprocessError
from drtool.pg.tools.find import Tool, find_tool
from drtool.pg.tools.run import STDERR_TAIL_LINES, StderrTail

# A TOC line of `pg_restore --list`: "12; 1259 16390 TABLE public contacts owner".
_TOC_LINE = re.compile(r"^(?P<dump_id>\d+); (?P<tableoid>\d+) (?P<oid>\d+) (?P<rest>.+)$")
_TOC_TYPES = (
    "TABLE DATA",
    "TABLE ATTACH",
    "EVENT TRIGGER",
    "PUBLICATION TABLE",
    "PUBLICATION TABLES IN SCHEMA",
    "LARGE OBJECT",
    "BLOB",
    "PROCEDURAL LANGUAGE",
    "FOREIGN TABLE",
    "USER MAPPING",
    "TEXT SEARCH CONFIGURATION",
    "TEXT SEARCH DICTIONARY",
    "ACCESS METHOD",
    "SEQUENCE SET",
    "SEQUENCE OWNED BY",
    "DEFAULT ACL",
    "FK CONSTRAINT",
    "MATERIALIZED VIEW DATA",
    "ROW SECURITY",
    "TYPE",
    "TABLE",
    "SEQUENCE",
    "INDEX",
    "CONSTRAINT",
    "VIEW",
    "FUNCTION",
    "PROCEDURE",
    "POLICY",
    "TRIGGER",
    "EXTENSION",
    "SCHEMA",
    "COMMENT",
    "ACL",
    "DEFAULT",
    "DOMAIN",
    "AGGREGATE",
    "RULE",
    "PUBLICATION",
    "MATERIALIZED VIEW",
    "ENCODING",
    "STDSTRINGS",
    "SEARCHPATH",
    "DATABASE",
)


@dataclass(frozen=True)
class TocEntry:
    dump_id: int
    kind: str
    schema: str
    name: str
    owner: str
    line: str = ""  # the listing line, for a ``pg_restore --use-list`` file

    @property
    def subject(self) -> tuple[str, str]:
        """For COMMENT, ACL and SECURITY LABEL entries: the object's kind and name
        (``("EXTENSION", "pgcrypto")``, ``("TABLE", "users")``); else ``("", "")``."""
        if self.kind not in ("COMMENT", "ACL", "SECURITY LABEL"):
            return "", ""
        for kind in _TOC_TYPES:
            if self.name.startswith(kind + " "):
                return kind, self.name[len(kind) + 1 :]
        head, _, rest = self.name.partition(" ")
        return head, rest


@dataclass(frozen=True)
class Toc:
    """What ``pg_restore --list`` read from a dump's header and table of contents."""

    entries: list[TocEntry] = field(default_factory=list)
    header: dict[str, str] = field(default_factory=dict)

    @property
    def owners(self) -> set[str]:
        return {e.owner for e in self.entries if e.owner and e.owner != "-"}

    @property
    def extensions(self) -> list[str]:
        return [e.name for e in self.entries if e.kind == "EXTENSION"]

    @property
    def server_major(self) -> int | None:
        version = self.header.get("Dumped from database version", "")
        match = re.match(r"(\d+)", version)
        return int(match.group(1)) if match else None


def parse_toc(text: str) -> Toc:
    """Parse ``pg_restore --list`` output (header comments, then one line per entry)."""
    header: dict[str, str] = {}
    entries: list[TocEntry] = []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith(";"):
            body = line.lstrip(";").strip()
            if ":" in body:
                key, _, value = body.partition(":")
                header[key.strip()] = value.strip()
            continue
        # Not stripped at the end: an empty owner is a trailing space.
        match = _TOC_LINE.match(raw.lstrip().rstrip("\r\n"))
        if not match:
            continue
        rest = match.group("rest")
        kind = next((t for t in _TOC_TYPES if rest.startswith(t + " ")), rest.split(" ", 1)[0])
        # "KIND schema name owner"; the owner is empty for some entries (a trailing space).
        body = rest[len(kind) + 1 :] if rest.startswith(kind + " ") else ""
        fields = body.split(" ")
        schema = fields[0] if len(fields) >= 3 else "-"
        owner = fields[-1] if len(fields) >= 2 else "-"
        name = " ".join(fields[1:-1]) if len(fields) >= 3 else (fields[0] if fields else "")
        entries.append(
            TocEntry(
                int(match.group("dump_id")), kind, schema, name, owner or "-", raw.rstrip("\n")
            )
        )
    return Toc(entries, header)


def restore_tool(min_major: int | None = None) -> Tool:
    return find_tool("pg_restore", min_major=min_major)


# pg_restore follows an error with the whole failing statement ("Command was: CREATE TABLE
# ..."), which can push the error itself out of a short tail: keep a long one, then condense.
LONG_TAIL_LINES = 200
COMMAND_LINES_SHOWN = 2
MESSAGE_LINES = 30
_MESSAGE_PREFIXES = ("pg_restore:", "psql:", "ERROR:", "DETAIL:", "HINT:", "WARNING:")


def condense_errors(text: str) -> str:
    """Client-tool stderr with each echoed statement cut to its first lines."""
    out: list[str] = []
    left: int | None = None  # lines of the echoed statement still shown; None: not in one
    for line in text.splitlines():
        if line.startswith("Command was:"):
            out.append(line)
            left = COMMAND_LINES_SHOWN
        elif left is not None and not line.startswith(_MESSAGE_PREFIXES):
            if left > 0:
                out.append(line)
            elif left == 0:
                out.append("    ...")
            left -= 1
        else:
            left = None
            out.append(line)
    return "\n".join(out[-MESSAGE_LINES:])


class FedProcess:
    """A child whose stdin we write: ``feed`` passes chunks through to the caller as well, and
    stops writing (without failing) if the child closed its stdin early (``pg_restore --list``
    reads only the TOC). ``finish`` closes stdin and checks the exit status; ``kill`` aborts."""

    def __init__(
        self,
        argv: list[str],
        env: Mapping[str, str],
        what: str,
        capture_stdout: bool,
        tail_lines: int = STDERR_TAIL_LINES,
        pipe_stdout: bool = False,  # the caller reads ``proc.stdout`` itself
    ) -> None:
        self.what = what
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE if capture_stdout or pipe_stdout else subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=dict(env),
            )
        except OSError as exc:
            raise SubprocessError(f"cannot start {what}: {exc.strerror}") from exc
        assert self.proc.stdin is not None and self.proc.stderr is not None
        self.tail = StderrTail(self.proc.stderr, tail_lines)
        self._stdout: bytes = b""
        self._reader: Iterator[bytes] | None = None
        self.closed_early = False
        self._thread: threading.Thread | None = None
        if capture_stdout:
            assert self.proc.stdout is not None
            out = self.proc.stdout
            self._thread = threading.Thread(target=self._read_stdout, args=(out,), daemon=True)
            self._thread.start()

    def _read_stdout(self, stream: object) -> None:
        self._stdout = stream.read()  # type: ignore[attr-defined]  # small: a TOC listing

    def write(self, chunk: bytes) -> bool:
        """Write one chunk; False once the child has stopped reading (closed its stdin)."""
        if not self.closed_early:
            assert self.proc.stdin is not None
            try:
                self.proc.stdin.write(chunk)
            except BrokenPipeError:
                self.closed_early = True
        return not self.closed_early

    def exited_ok(self) -> bool:
        return self.proc.poll() == 0

    def feed(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        stdin = self.proc.stdin
        assert stdin is not None
        for chunk in chunks:
            if not self.closed_early:
                try:
                    stdin.write(chunk)
                except BrokenPipeError:
                    self.closed_early = True
            yield chunk

    def finish(self) -> bytes:
        """Close stdin, wait, raise SubprocessError with the stderr tail on a non-zero exit."""
        with contextlib.suppress(BrokenPipeError, OSError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        code = self.proc.wait()
        if self._thread is not None:
            self._thread.join()
        if code != 0:
            text = condense_errors(self.tail.text())
            raise SubprocessError(
                f"{self.what} stopped with an error ({self.what.split()[0]} exit status {code}): "
                f"{text or 'no error output'}"
            )
        return self._stdout

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        with contextlib.suppress(BrokenPipeError, OSError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        self.proc.wait()


class TocReader:
    """Passes a plaintext dump stream through while ``pg_restore --list`` reads it from stdin
    (it stops reading after the TOC); ``toc()`` after the stream gives the parsed TOC."""

    def __init__(self, tool: Tool, env: Mapping[str, str], obj: str = "dump") -> None:
        self.obj = obj
        self._proc = FedProcess([str(tool.path), "--list"], env, "pg_restore --list", True)

    def tap(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        try:
            yield from self._proc.feed(chunks)
        except BaseException:
            self._proc.kill()
            raise

    def toc(self) -> Toc:
        try:
            listing = self._proc.finish()
        except SubprocessError as exc:
            raise IntegrityError(
                f"object {self.obj}: pg_restore cannot read the dump's table of contents "
                f"({exc.message})",
                obj=self.obj,
            ) from exc
        return parse_toc(listing.decode("utf-8", "replace"))

    def abort(self) -> None:
        self._proc.kill()
