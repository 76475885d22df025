"""Rendering a page from the package's templates (``services/templates/html``, autoescaped) and
writing it atomically: a temp file in the same directory, fsynced, renamed into place."""

from __future__ import annotations

import contextlib
import os
import tempfile
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from drtool import units
from drtool.errors import OperationError, UsageError

TEMPLATES = "services/templates/html"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"


def human_size(n: int | None) -> str:
    return "-" if n is None else units.human_size(n)


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("drtool", TEMPLATES),
        autoescape=select_autoescape(["html", "j2"], default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["size"] = human_size
    return env


def render_page(template: str, **values: Any) -> str:
    return environment().get_template(template).render(**values)


def check_out_path(path: Path, option: str) -> None:
    """Refuse a path that cannot be written before any work starts (exit 2)."""
    if path.is_dir():
        raise UsageError(f"{option} {path} is a directory; give a file name")
    if not path.parent.is_dir():
        raise UsageError(f"{option} {path}: directory {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):
        raise UsageError(f"{option} {path}: directory {path.parent} is not writable")


def write_page(path: Path, text: str, what: str, hint: str | None = None) -> Path:
    """Write ``text`` to ``path`` atomically, mode 0644; OperationError naming ``what``."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        raise OperationError(f"could not write {what} {path}: {exc.strerror}", hint=hint) from exc
    return path
