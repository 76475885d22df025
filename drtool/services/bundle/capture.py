"""Capturing the bundle at backup time: the configured files and environment values, checked
before any dump starts, streamed as one tar archive (docs/format.md, "The bundle"), and their
fingerprints for the manifest."""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from drtool.catalog.catalog import BUNDLE_OBJECT
from drtool.catalog.manifest import BundleEntry, BundleInfo
from drtool.config import Config
from drtool.crypto.fingerprint import FingerprintParams
from drtool.errors import OperationError, UsageError
from drtool.log import REDACTOR

if TYPE_CHECKING:
    # Key parsing (cryptography) is imported when a bundle is written; `status` reads its
    # drift only.
    from drtool.crypto.keys import Recipient

BUNDLE_FORMAT = "tar"
INDEX_MEMBER = "bundle.json"
ENV_MEMBER = "env"
FILES_DIR = "files/"
# Names a captured file may not take in a restore directory (the env file is written there).
RESERVED_NAMES = frozenset({ENV_MEMBER, INDEX_MEMBER})
READ_BYTES = 1 << 20
BLOCK = tarfile.BLOCKSIZE
RECORD = tarfile.RECORDSIZE


def bundle_recipients(config: Config) -> list[Recipient]:
    """``bundle.recipients``, or the backup's own recipients when none are listed."""
    from drtool.crypto.keys import parse_recipient
    from drtool.services.keys import configured_recipients

    if config.bundle.recipients:
        return [parse_recipient(text) for text in config.bundle.recipients]
    return configured_recipients(config)


def quote_env(name: str, value: bytes) -> bytes:
    """``NAME='value'``: POSIX shell single quotes (a ``'`` becomes ``'\\''``), so any value,
    newlines included, reads back exactly with ``set -a; . ./env; set +a``."""
    return name.encode() + b"='" + value.replace(b"'", b"'\\''") + b"'\n"


def unique_names(paths: list[Path]) -> list[str]:
    """Each file's name in the bundle: its base name, ``NAME.2``, ``NAME.3``... on a collision
    (or where it would be ``env``)."""
    taken: set[str] = set(RESERVED_NAMES)
    names: list[str] = []
    for path in paths:
        base = path.name
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}.{n}"
        taken.add(name)
        names.append(name)
    return names


@dataclass
class _File:
    path: Path
    name: str
    handle: BinaryIO
    size: int
    digest: bytes = b""


def _member(name: str, size: int, mtime: float) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o600
    info.mtime = int(mtime)
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _padding(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)


@dataclass
class Capture:
    """What one backup captures: open files and read values, held until the archive is
    streamed. ``close()`` releases the files."""

    files: list[_File]
    env: list[tuple[str, bytes]]
    captured_at: datetime
    params: FingerprintParams = field(default_factory=FingerprintParams.new)

    def close(self) -> None:
        for f in self.files:
            f.handle.close()

    def index(self) -> bytes:
        doc = {
            "format": "drtool-bundle",
            "version": 1,
            "captured_at": self.captured_at.isoformat(),
            "files": [{"name": f.name, "path": str(f.path), "size": f.size} for f in self.files],
            "env": [name for name, _ in self.env],
        }
        return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")

    def stream(self) -> Iterator[bytes]:
        """The tar archive: ``bundle.json``, ``env``, then ``files/<name>`` for each file, its
        content read in fixed chunks and hashed on the way (for its fingerprint)."""
        mtime = self.captured_at.timestamp()
        total = 0
        index = self.index()
        env = b"".join(quote_env(name, value) for name, value in self.env)
        for name, data in ((INDEX_MEMBER, index), (ENV_MEMBER, env)):
            piece = _member(name, len(data), mtime) + data + _padding(len(data))
            total += len(piece)
            yield piece
        for f in self.files:
            header = _member(FILES_DIR + f.name, f.size, mtime)
            total += len(header)
            yield header
            digest = hashlib.sha256()
            left = f.size
            while left > 0:
                chunk = f.handle.read(min(READ_BYTES, left))
                if not chunk:
                    raise OperationError(
                        f"bundle.files: {f.path} shrank while it was read",
                        hint="run the backup again once the file is no longer being rewritten",
                    )
                digest.update(chunk)
                left -= len(chunk)
                yield chunk
            f.digest = digest.digest()
            pad = _padding(f.size)
            total += f.size + len(pad)
            yield pad
        end = b"\0" * (2 * BLOCK)
        total += len(end)
        yield end + b"\0" * (-total % RECORD)

    def info(self, recipients: list[Recipient]) -> BundleInfo:
        """The manifest's ``bundle``, once the archive was streamed: fingerprints, never values."""
        entries = [
            BundleEntry(
                kind="file",
                name=f.name,
                size=f.size,
                fingerprint=self.params.fingerprint("file", f.name, f.digest),
                path=str(f.path),
            )
            for f in self.files
        ]
        entries += [
            BundleEntry(
                kind="env",
                name=name,
                size=len(value),
                fingerprint=self.params.fingerprint("env", name, value),
            )
            for name, value in self.env
        ]
        return BundleInfo(
            object=BUNDLE_OBJECT,
            format=BUNDLE_FORMAT,
            captured_at=self.captured_at,
            fingerprint=self.params.to_doc(),
            recipients=[r.fingerprint() for r in recipients],
            entries=entries,
        )


def env_value(name: str) -> bytes | None:
    """A variable's value in this process's environment, as bytes; None when unset."""
    return os.environb.get(name.encode()) if os.name == "posix" else _str_env(name)


def _str_env(name: str) -> bytes | None:  # pragma: no cover - drtool runs on POSIX
    value = os.environ.get(name)
    return value.encode("utf-8", "surrogateescape") if value is not None else None


def remember_secret(value: bytes) -> None:
    """Keep a captured value out of every log line."""
    REDACTOR.add(value.decode("utf-8", "replace").strip())


def open_capture(config: Config, captured_at: datetime) -> Capture | None:
    """Open every configured file and read every configured variable now, before any dump
    starts: anything missing is a UsageError (exit 2) naming it. None when no bundle is
    configured."""
    cfg = config.bundle
    if not cfg.enabled:
        return None
    problems: list[str] = []
    env: list[tuple[str, bytes]] = []
    for name in cfg.env:
        value = env_value(name)
        if value is None:
            problems.append(f"bundle.env: {name} is not set in drtool's environment")
        else:
            remember_secret(value)
            env.append((name, value))
    paths = [config.resolve(p) for p in cfg.files]
    files: list[_File] = []
    for path, name in zip(paths, unique_names(paths), strict=True):
        if path.exists() and not path.is_file():
            # Checked before opening: opening a FIFO would block the backup.
            problems.append(f"bundle.files: {path} is not a regular file")
            continue
        try:
            handle = open(path, "rb")  # noqa: SIM115 - held until the archive is streamed
        except OSError as exc:
            problems.append(f"bundle.files: {path} cannot be read ({exc.strerror or exc})")
            continue
        files.append(_File(path, name, handle, os.fstat(handle.fileno()).st_size))
    if problems:
        for f in files:
            f.handle.close()
        raise UsageError(
            "the bundle cannot be captured, nothing was backed up:\n  " + "\n  ".join(problems),
            hint="fix bundle.files / bundle.env, or the host's files and environment",
        )
    return Capture(files, env, captured_at)
