"""PostgreSQL binary discovery: find pg_dump, initdb and friends and read their major versions."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from drtool.errors import OperationError

BINDIR_ENV = "DRTOOL_PG_BINDIR"
DEBIAN_PG_ROOT = Path("/usr/lib/postgresql")
VERSION_TIMEOUT_SECONDS = 10

# "pg_dump (PostgreSQL) 15.13 (Debian 15.13-1.pgdg120+1)", "initdb (PostgreSQL) 17beta1"
_VERSION_RE = re.compile(r"\(PostgreSQL\)\s+(?P<version>(?P<major>\d+)(?:\.\d+)*\S*)")
_SERVER_TOOLS = frozenset({"initdb", "pg_ctl", "postgres", "postmaster", "pg_controldata"})
_DUMP_TOOLS = frozenset({"pg_dump", "pg_dumpall"})


@dataclass(frozen=True)
class Tool:
    """One PostgreSQL program: its resolved path and version."""

    name: str
    path: Path
    major: int
    version: str


def tool_version(path: Path | str) -> tuple[int, str]:
    """Run ``<tool> --version`` and return (major, version string such as "15.13")."""
    try:
        proc = subprocess.run(
            [str(path), "--version"],
            capture_output=True,
            text=True,
            timeout=VERSION_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise OperationError(
            f"could not run {path} --version: {exc}",
            hint=f"check that {path} is a working PostgreSQL program",
        ) from exc
    match = _VERSION_RE.search(proc.stdout)
    if proc.returncode != 0 or match is None:
        output = (proc.stdout + proc.stderr).strip()[-200:]
        raise OperationError(
            f"could not read the version of {path} (exit {proc.returncode}): {output!r}",
            hint=f"check that {path} is a working PostgreSQL program",
        )
    return int(match.group("major")), match.group("version")


def find_tool(name: str, min_major: int | None = None) -> Tool:
    """The highest installed version of PostgreSQL program ``name`` (DRTOOL_PG_BINDIR wins).

    With ``min_major``, raises OperationError when that version is older than ``min_major``.
    """
    override = os.environ.get(BINDIR_ENV)
    if override:
        path = Path(override) / name
        if not _is_executable(path):
            raise OperationError(
                f"{name} not found in {BINDIR_ENV}={override}",
                hint=f"point {BINDIR_ENV} at a PostgreSQL bin directory, or unset it",
            )
        tool = _tool_at(name, path)
        _check_major(tool, min_major, source=f"{BINDIR_ENV}={override}")
        return tool

    best: Tool | None = None
    for path in _candidates(name):
        tool = _tool_at(name, path)
        if best is None or tool.major > best.major:
            best = tool
    if best is None:
        raise OperationError(
            f"PostgreSQL program {name} not found in {DEBIAN_PG_ROOT}/*/bin nor on PATH",
            hint=f"install it (apt-get install {_package(name, min_major)}) "
            f"or set {BINDIR_ENV} to its bin directory",
        )
    _check_major(best, min_major, source=None)
    return best


def _candidates(name: str) -> list[Path]:
    """Real binaries named ``name``: versioned Debian dirs (newest first), then PATH."""
    found: list[Path] = []
    versioned = sorted(
        (d for d in DEBIAN_PG_ROOT.glob("*/bin") if d.parent.name.isdigit()),
        key=lambda d: int(d.parent.name),
        reverse=True,
    )
    for bin_dir in versioned:
        path = bin_dir / name
        if _is_executable(path):
            found.append(path.resolve())
            # Older versioned dirs can only lose against this one; skip their --version runs.
            break
    for entry in os.environ.get("PATH", os.defpath).split(os.pathsep):
        path = Path(entry or ".") / name
        if not _is_executable(path):
            continue
        real = path.resolve()
        # Debian's pg_wrapper picks a version from cluster config, not the newest one.
        if real.name == "pg_wrapper" or "postgresql-common" in real.parts:
            continue
        if real not in found:
            found.append(real)
    return found


def _tool_at(name: str, path: Path) -> Tool:
    major, version = tool_version(path)
    return Tool(name=name, path=path, major=major, version=version)


def _check_major(tool: Tool, min_major: int | None, source: str | None) -> None:
    if min_major is None or tool.major >= min_major:
        return
    if tool.name in _DUMP_TOOLS:
        what = f"{tool.name} {tool.major} cannot dump a PostgreSQL {min_major} server"
    else:
        what = f"{tool.name} {tool.major} is too old: PostgreSQL {min_major} or newer is needed"
    where = f" (from {source})" if source else f" ({tool.path} is the newest installed)"
    raise OperationError(
        what + where,
        hint=f"install {_package(tool.name, min_major)} or newer "
        f"(e.g. apt-get install {_package(tool.name, min_major)}), "
        f"or set {BINDIR_ENV} to a newer PostgreSQL bin directory",
    )


def _package(name: str, major: int | None) -> str:
    base = "postgresql" if name in _SERVER_TOOLS else "postgresql-client"
    return f"{base}-{major}" if major else base


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)
