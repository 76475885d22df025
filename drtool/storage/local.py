"""Local-directory storage: write to a hidden temp file, fsync, rename into place, fsync the
directory. Files are 0600 and directories 0700 because backups are sensitive."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from drtool.errors import NotFoundInStorage, StorageError, UsageError
from drtool.storage.base import (
    READ_CHUNK_BYTES,
    DerivedReads,
    ObjectInfo,
    PendingUpload,
    check_key,
    check_prefix,
    close_quietly,
)

# Uploads in progress live in <root>/.drtool-tmp/<upload_id>/<key>, so a leftover names its key
# and is never confused with a complete object. Conditional writes serialise on a lock file
# per key in <root>/.drtool-tmp/locks/ (never removed: removing a lock file races its users).
TEMP_DIR_NAME = ".drtool-tmp"
LOCKS_DIR_NAME = "locks"
_UPLOAD_ID = re.compile(r"^[0-9a-f]{16,64}$")
FILE_MODE = 0o600
DIR_MODE = 0o700


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)


def _etag(data: bytes) -> str:
    """The local backend's ETag: a content hash, as S3's is for a single-part object."""
    return hashlib.sha256(data).hexdigest()[:32]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalStorage(DerivedReads):
    """A directory tree; object keys are relative paths under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root.absolute()
        self.description = self.root.as_uri()
        self._temp_root = self.root / TEMP_DIR_NAME

    # -- paths ------------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        check_key(key)
        if key.split("/", 1)[0] == TEMP_DIR_NAME:
            raise UsageError(f"invalid storage key {key!r}: {TEMP_DIR_NAME} is reserved")
        return self.root / key

    def _makedirs(self, directory: Path, *, durable: bool = True) -> None:
        """Create missing directories 0700; ``durable`` fsyncs each new entry's parent."""
        missing: list[Path] = []
        current = directory
        while not current.is_dir():
            missing.append(current)
            current = current.parent
        for path in reversed(missing):
            try:
                path.mkdir(mode=DIR_MODE)
            except FileExistsError:
                continue
            if durable:
                _fsync_dir(path.parent)

    def _error(self, action: str, key: str, exc: OSError) -> StorageError:
        reason = exc.strerror or type(exc).__name__
        return StorageError(f"{self.description}: cannot {action} {key}: {reason}")

    # -- writes -----------------------------------------------------------------------------

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        target = self._path(key)
        upload_dir = self._temp_root / secrets.token_hex(8)
        try:
            temp, size = self._stage(upload_dir, key, chunks)
            self._publish(temp, target, key)
        except BaseException:
            close_quietly(chunks)
            shutil.rmtree(upload_dir, ignore_errors=True)
            raise
        shutil.rmtree(upload_dir, ignore_errors=True)
        return size

    def _stage(self, upload_dir: Path, key: str, chunks: Iterable[bytes]) -> tuple[Path, int]:
        """Write ``chunks`` to a synced temp file under ``upload_dir``: (its path, size)."""
        temp = upload_dir / key
        try:
            self._makedirs(temp.parent, durable=False)  # a crash may lose temp files
            handle = open(temp, "xb", opener=_private_opener)  # noqa: SIM115 - closed below
        except OSError as exc:
            raise self._error("write", key, exc) from exc
        with handle:
            size = 0
            for chunk in chunks:  # a producer's own exception propagates unchanged
                size += len(chunk)
                self._write(handle, chunk, key)
            self._sync(handle, key)
        return temp, size

    def put_if(self, key: str, data: bytes, *, etag: str | None) -> str | None:
        target = self._path(key)
        upload_dir = self._temp_root / secrets.token_hex(8)
        try:
            temp, _size = self._stage(upload_dir, key, [data])
            with self._key_lock(key):
                if etag is None:
                    if not self._link(temp, target, key):
                        return None
                else:
                    current = self._read_current(target, key)
                    if current is None or _etag(current) != etag:
                        return None
                    self._publish(temp, target, key)
        finally:
            shutil.rmtree(upload_dir, ignore_errors=True)
        return _etag(data)

    @contextlib.contextmanager
    def _key_lock(self, key: str) -> Iterator[None]:
        """An exclusive flock on ``key``'s lock file: across threads and processes."""
        locks = self._temp_root / LOCKS_DIR_NAME
        name = hashlib.sha256(key.encode()).hexdigest()[:32]
        try:
            self._makedirs(locks, durable=False)
            fd = os.open(locks / name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        except OSError as exc:
            raise self._error("lock", key, exc) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the flock

    def _link(self, temp: Path, target: Path, key: str) -> bool:
        """Publish ``temp`` as ``target`` only if nothing is there (link(2) is O_EXCL)."""
        return self._place(os.link, temp, target, key)

    def _read_current(self, target: Path, key: str) -> bytes | None:
        try:
            return target.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        except OSError as exc:
            raise self._error("read", key, exc) from exc

    def _write(self, handle: BinaryIO, chunk: bytes, key: str) -> None:
        try:
            handle.write(chunk)
        except OSError as exc:
            raise self._error("write", key, exc) from exc

    def _sync(self, handle: BinaryIO, key: str) -> None:
        try:
            handle.flush()
            os.fsync(handle.fileno())
        except OSError as exc:
            raise self._error("write", key, exc) from exc

    def _publish(self, temp: Path, target: Path, key: str) -> None:
        self._place(os.replace, temp, target, key)

    def _place(self, op: Callable[[Path, Path], None], temp: Path, target: Path, key: str) -> bool:
        """``op(temp, target)`` (rename or link) and a durable directory entry; False when
        ``op`` is a link and ``target`` exists."""
        try:
            # A concurrent delete may prune the directory we just made: make it again once.
            for attempt in (1, 2):
                self._makedirs(target.parent)
                try:
                    op(temp, target)
                    break
                except FileExistsError:
                    return False
                except FileNotFoundError:
                    if attempt == 2 or not temp.exists():
                        raise
            _fsync_dir(target.parent)
        except OSError as exc:
            raise self._error("write", key, exc) from exc
        return True

    def put_bytes(self, key: str, data: bytes) -> None:
        self.put(key, [data])

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return
        except OSError as exc:
            raise self._error("delete", key, exc) from exc
        # Empty directories are an artefact of this backend; S3 has none.
        parent = path.parent
        while parent != self.root:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    # -- reads ------------------------------------------------------------------------------

    def get(self, key: str) -> Iterator[bytes]:
        path = self._path(key)
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed by the generator
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise NotFoundInStorage(f"{self.description}: no object {key}") from exc
        except OSError as exc:
            raise self._error("read", key, exc) from exc
        return self._read(handle, key)

    def _read(self, handle: BinaryIO, key: str) -> Iterator[bytes]:
        with handle:
            while True:
                try:
                    chunk = handle.read(READ_CHUNK_BYTES)
                except OSError as exc:
                    raise self._error("read", key, exc) from exc
                if not chunk:
                    return
                yield chunk

    def get_tagged(self, key: str) -> tuple[bytes, str]:
        # Objects are replaced by rename: one read sees one whole version.
        data = self.get_bytes(key)
        return data, _etag(data)

    def stat(self, key: str) -> ObjectInfo:
        path = self._path(key)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise NotFoundInStorage(f"{self.description}: no object {key}") from exc
        except OSError as exc:
            raise self._error("stat", key, exc) from exc
        if not path.is_file():
            raise NotFoundInStorage(f"{self.description}: no object {key}")
        return ObjectInfo(key=key, size=st.st_size, modified=_utc(st.st_mtime))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        check_prefix(prefix)
        # Walk only the deepest directory the prefix pins down, then filter as S3 does.
        start = self.root / prefix[: prefix.rfind("/") + 1]
        found = [
            info
            for info in self._walk(start, start.relative_to(self.root).as_posix())
            if info.key.startswith(prefix)
        ]
        found.sort(key=lambda info: info.key)
        return iter(found)

    def _walk(self, directory: Path, rel: str) -> Iterator[ObjectInfo]:
        base = "" if rel == "." else rel + "/"
        try:
            entries = list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            raise self._error("list", base or "/", exc) from exc
        for entry in entries:
            key = base + entry.name
            if entry.is_dir(follow_symlinks=False):
                if key != TEMP_DIR_NAME:
                    yield from self._walk(Path(entry.path), key)
            elif entry.is_file(follow_symlinks=False):
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # deleted while listing
                yield ObjectInfo(key=key, size=st.st_size, modified=_utc(st.st_mtime))

    # -- leftovers --------------------------------------------------------------------------

    def pending_uploads(self, prefix: str) -> Iterator[PendingUpload]:
        check_prefix(prefix)
        uploads: list[PendingUpload] = []
        try:
            upload_dirs = list(os.scandir(self._temp_root))
        except FileNotFoundError:
            return iter(())
        except OSError as exc:
            raise self._error("list", TEMP_DIR_NAME, exc) from exc
        for upload_dir in upload_dirs:
            if not _UPLOAD_ID.match(upload_dir.name):
                continue
            for info in self._walk(Path(upload_dir.path), "."):
                if info.key.startswith(prefix):
                    uploads.append(PendingUpload(info.key, upload_dir.name, info.modified))
        uploads.sort(key=lambda upload: (upload.key, upload.started))
        return iter(uploads)

    def abort_upload(self, upload: PendingUpload) -> None:
        check_key(upload.key)
        if not _UPLOAD_ID.match(upload.upload_id):
            raise UsageError(f"invalid upload id {upload.upload_id!r} for {self.description}")
        try:
            shutil.rmtree(self._temp_root / upload.upload_id)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise self._error("abort upload of", upload.key, exc) from exc


def _private_opener(path: str, flags: int) -> int:
    return os.open(path, flags, FILE_MODE)
