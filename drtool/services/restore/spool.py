"""Spooling a decrypted dump to disk: a 0600 temporary file, free space checked first; the
whole object is authenticated and hash-checked before anyone reads the file."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from drtool.crypto.keys import Identity
from drtool.errors import OperationError, UsageError
from drtool.pipeline.stages import ProgressFn
from drtool.pipeline.store import StoredObject, load
from drtool.storage.base import Storage

# Room left for everything else on the filesystem while a spool file fills it.
SPOOL_MARGIN_BYTES = 256 * 1024 * 1024
SPOOL_PREFIX = "drtool-restore-"


def spool_dir(configured: Path | None) -> Path:
    directory = configured or Path(tempfile.gettempdir())
    if not directory.is_dir():
        raise UsageError(
            f"restore.spool_dir {directory} is not a directory",
            hint="create it, or set restore.spool_dir to a directory with room for the dump",
        )
    return directory


def check_space(directory: Path, plain_size: int, setting: str) -> None:
    """OperationError (exit 1) unless ``directory`` has room for the dump plus a margin."""
    free = shutil.disk_usage(directory).free
    needed = plain_size + SPOOL_MARGIN_BYTES
    if free < needed:
        raise OperationError(
            f"{directory} has {free // 2**20} MiB free; the decrypted dump needs "
            f"{needed // 2**20} MiB (dump plus a {SPOOL_MARGIN_BYTES // 2**20} MiB margin)",
            hint=f"point {setting} at a filesystem with more room (or use --jobs 1, which "
            "streams without a spool file)",
        )


def write_spool(
    storage: Storage,
    obj: StoredObject,
    identities: Sequence[Identity],
    directory: Path,
    progress: ProgressFn | None = None,
    prefix: str = SPOOL_PREFIX,
) -> Path:
    """Decrypt ``obj`` into a new 0600 file in ``directory``; the file exists only if every
    chunk authenticated and the sizes and SHA-256 matched (it is removed otherwise)."""
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=".pgdump", dir=directory)
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in load(storage, obj, identities, progress=progress):
                handle.write(chunk)
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise OperationError(
            f"writing the spool file {path} failed: {exc.strerror}",
            hint="check restore.spool_dir: free space and permissions",
        ) from exc
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


@contextlib.contextmanager
def spooled(
    storage: Storage,
    obj: StoredObject,
    identities: Sequence[Identity],
    directory: Path,
    progress: ProgressFn | None = None,
) -> Iterator[Path]:
    """A verified spool file for the duration of the block; always removed afterwards."""
    check_space(directory, obj.plain_size, "restore.spool_dir")
    path = write_spool(storage, obj, identities, directory, progress)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def publish(path: Path, destination: Path) -> None:
    """Give a finished spool file its final name without ever replacing an existing file
    (a hard link fails if the name exists), mode 0600."""
    os.chmod(path, 0o600)
    try:
        os.link(path, destination)
    except FileExistsError:
        raise UsageError(f"{destination} already exists; refusing to overwrite it") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV):
            raise OperationError(f"cannot create {destination}: {exc.strerror}") from exc
        # No hard links here (some network/FUSE filesystems): check, then rename.
        if destination.exists():
            raise UsageError(f"{destination} already exists; refusing to overwrite it") from None
        os.rename(path, destination)
        return
    path.unlink(missing_ok=True)
