"""Stream stages over byte chunks: hash taps, zstd compression and decompression, counting."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import zstandard

from drtool.errors import IntegrityError

ProgressFn = Callable[[int], None]


@dataclass
class Digest:
    """Running size and SHA-256 of the bytes that passed a tap."""

    size: int = 0
    _hash: hashlib._Hash = field(default_factory=hashlib.sha256)

    def update(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self._hash.update(chunk)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def hash_tap(
    chunks: Iterable[bytes], digest: Digest, progress: ProgressFn | None = None
) -> Iterator[bytes]:
    """Pass chunks through unchanged, hashing and counting them."""
    for chunk in chunks:
        digest.update(chunk)
        if progress is not None:
            progress(len(chunk))
        yield chunk


def compress(chunks: Iterable[bytes], level: int, threads: int = 0) -> Iterator[bytes]:
    """One zstd frame (readable by ``zstd -d``) over the whole stream, emitted as it fills."""
    compressor = zstandard.ZstdCompressor(level=level, threads=threads, write_checksum=True)
    cobj = compressor.compressobj()
    for chunk in chunks:
        out = cobj.compress(chunk)
        if out:
            yield out
    tail = cobj.flush()
    if tail:
        yield tail


def decompress(chunks: Iterable[bytes], what: str = "object") -> Iterator[bytes]:
    """Decompress one or more zstd frames; a truncated, corrupt or empty stream is an
    IntegrityError (zstd's frame checksum is verified too)."""
    decompressor = zstandard.ZstdDecompressor()
    dobj = decompressor.decompressobj()
    frames_done = 0
    in_frame = False
    try:
        for chunk in chunks:
            while chunk:
                in_frame = True
                out = dobj.decompress(chunk)
                if out:
                    yield out
                if not dobj.eof:
                    break
                # Concatenated frames are valid zstd: continue with the rest in a new frame.
                frames_done += 1
                in_frame = False
                chunk = dobj.unused_data
                dobj = decompressor.decompressobj()
    except zstandard.ZstdError as exc:
        raise IntegrityError(f"{what}: compressed data is corrupt ({exc})", obj=what) from exc
    if in_frame or frames_done == 0:
        raise IntegrityError(f"{what}: compressed stream is truncated", obj=what)


def rechunk(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """Re-cut a stream into pieces of exactly ``size`` bytes (the last may be shorter)."""
    buf = bytearray()
    for chunk in chunks:
        buf += chunk
        while len(buf) >= size:
            yield bytes(buf[:size])
            del buf[:size]
    if buf:
        yield bytes(buf)
