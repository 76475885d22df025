"""Reading a stored bundle back: decrypt, unpack the tar stream, and check every file and
value against the manifest's names, sizes and fingerprints (bundle restore and the drill)."""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, BinaryIO

from drtool.catalog.manifest import BackupManifest, BundleInfo
from drtool.crypto.fingerprint import FingerprintParams
from drtool.crypto.keys import Identity
from drtool.errors import IntegrityError
from drtool.pipeline.store import load
from drtool.services.bundle.capture import ENV_MEMBER, FILES_DIR, INDEX_MEMBER, remember_secret
from drtool.storage.base import Storage

CHUNK_BYTES = 1 << 20
MAX_ENV_BYTES = 16 << 20
# What unpacking a damaged archive can raise; read_bundle reports each as an IntegrityError.
UNREADABLE = (ValueError, tarfile.TarError, KeyError, EOFError)
_ENV_LINE = re.compile(rb"([A-Za-z_][A-Za-z0-9_]*)='((?:[^']|'\\'')*)'\n")

# Where a file's content goes: a writable binary stream for the file named, or None to only
# check it (the drill).
Sink = Callable[[str], BinaryIO | None]


class _ChunkReader(io.RawIOBase):
    """A file object over an iterator of byte chunks, for tarfile's stream mode."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = chunk
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def drain(self) -> None:
        """Read to the end: the pipeline's final size and SHA-256 checks run there."""
        for _chunk in self._chunks:
            pass


def parse_env(data: bytes) -> list[tuple[str, bytes]]:
    """The ``env`` member's ``NAME='value'`` lines back into names and exact values."""
    found: list[tuple[str, bytes]] = []
    pos = 0
    while pos < len(data):
        match = _ENV_LINE.match(data, pos)
        if match is None:
            raise ValueError(f"unreadable env line at byte {pos}")
        found.append((match.group(1).decode(), match.group(2).replace(b"'\\''", b"'")))
        pos = match.end()
    return found


@dataclass(frozen=True)
class BundleContents:
    """What a checked bundle held: file names and variable names, in the manifest's order."""

    files: list[str]
    env: list[str]
    env_text: bytes


def _safe_name(member: str) -> str:
    name = member[len(FILES_DIR) :]
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise ValueError(f"unsafe file name {name!r}")
    return name


def _copy(stream: IO[bytes], out: BinaryIO | None) -> tuple[int, bytes]:
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(CHUNK_BYTES):
        digest.update(chunk)
        size += len(chunk)
        if out is not None:
            out.write(chunk)
    return size, digest.digest()


def _unpack(
    reader: _ChunkReader, sink: Sink
) -> tuple[dict[str, tuple[int, bytes]], list[tuple[str, bytes]], bytes]:
    files: dict[str, tuple[int, bytes]] = {}
    env_text: bytes | None = None
    with tarfile.open(fileobj=reader, mode="r|") as tar:
        for member in tar:
            stream = tar.extractfile(member)
            if stream is None:
                raise ValueError(f"member {member.name!r} is not a regular file")
            if member.name == INDEX_MEMBER:
                _copy(stream, None)
            elif member.name == ENV_MEMBER:
                env_text = stream.read(MAX_ENV_BYTES + 1)
                if len(env_text) > MAX_ENV_BYTES:
                    raise ValueError("the env member is too large")
            elif member.name.startswith(FILES_DIR):
                name = _safe_name(member.name)
                if name in files:
                    raise ValueError(f"file {name!r} appears twice")
                out = sink(name)
                try:
                    files[name] = _copy(stream, out)
                finally:
                    if out is not None:
                        out.close()
            else:
                raise ValueError(f"unexpected member {member.name!r}")
    if env_text is None:
        raise ValueError("no env member")
    return files, parse_env(env_text), env_text


def _problems(
    info: BundleInfo, files: dict[str, tuple[int, bytes]], env: list[tuple[str, bytes]]
) -> list[str]:
    params = FingerprintParams.from_doc(info.fingerprint)
    expected = {(e.kind, e.name): e for e in info.entries}
    found: dict[tuple[str, str], tuple[int, bytes]] = {("file", k): v for k, v in files.items()}
    for name, value in env:
        remember_secret(value)
        found[("env", name)] = (len(value), value)
    problems = [f"{k} {n} is missing from the bundle" for k, n in expected.keys() - found]
    problems += [f"{k} {n} is not in the manifest" for k, n in found.keys() - expected]
    for key, entry in expected.items():
        if key not in found:
            continue
        size, data = found[key]
        if size != entry.size:
            problems.append(
                f"{entry.kind} {entry.name}: {size} bytes, the manifest records {entry.size}"
            )
        elif params.fingerprint(entry.kind, entry.name, data) != entry.fingerprint:
            problems.append(f"{entry.kind} {entry.name}: fingerprint differs from the manifest")
    return problems


def read_bundle(
    storage: Storage, manifest: BackupManifest, identities: Sequence[Identity], sink: Sink
) -> BundleContents:
    """Decrypt and unpack the bundle of ``manifest``, sending each file to ``sink``, and check
    everything against the manifest. IntegrityError (exit 3) on any difference."""
    info = manifest.bundle
    if info is None:
        raise ValueError(f"backup {manifest.id} has no bundle")
    entry = manifest.object(info.object)
    what = f"backup {manifest.id}: bundle"
    reader = _ChunkReader(load(storage, entry.stored(), identities))
    try:
        files, env, env_text = _unpack(reader, sink)
        reader.drain()
        problems = _problems(info, files, env)
    except UNREADABLE as exc:
        raise IntegrityError(f"{what} is unreadable: {exc}", obj=entry.name) from exc
    if problems:
        raise IntegrityError(
            f"{what} does not match the manifest: " + "; ".join(problems), obj=entry.name
        )
    order = [e.name for e in info.entries]
    return BundleContents(
        files=sorted(files, key=lambda n: order.index(n) if n in order else len(order)),
        env=[name for name, _ in env],
        env_text=env_text,
    )
