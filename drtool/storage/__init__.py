"""Object storage: the Storage protocol and its backends (local directory, S3), chosen by URL."""

from __future__ import annotations

from pathlib import Path

from drtool.config import StorageLocation
from drtool.errors import UsageError
from drtool.storage.base import ObjectInfo, PendingUpload, Storage, check_key, check_prefix
from drtool.storage.local import LocalStorage

__all__ = [
    "ObjectInfo",
    "PendingUpload",
    "Storage",
    "check_key",
    "check_prefix",
    "local_path",
    "open_storage",
]


def local_path(url: str, base_dir: Path | None = None) -> Path:
    """The directory of a ``file://`` URL; relative paths (``file://./data``) use ``base_dir``."""
    rest = url.removeprefix("file://")
    if rest.startswith("localhost/"):
        rest = rest[len("localhost") :]
    if not rest:
        raise UsageError(f"storage.url {url!r} names no directory")
    path = Path(rest).expanduser()
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    return path


def open_storage(cfg: StorageLocation, base_dir: Path | None = None) -> Storage:
    """The backend for ``cfg.url``: ``file://`` directories or ``s3://bucket/prefix``."""
    if cfg.url.startswith("file://"):
        return LocalStorage(local_path(cfg.url, base_dir))
    if cfg.url.startswith("s3://"):
        # Imported here so that local-only runs never load boto3.
        from drtool.storage.s3 import S3Storage

        return S3Storage(cfg)
    raise UsageError(f"storage.url {cfg.url!r}: expected file:///path or s3://bucket[/prefix]")
