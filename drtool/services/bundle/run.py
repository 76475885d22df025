"""The ``bundle show`` and ``bundle restore`` use cases, and the drill's bundle check."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from drtool.catalog.manifest import BackupManifest, BundleInfo, expect_kind
from drtool.crypto.keys import Identity
from drtool.errors import EXIT_OK, DrtoolError, OperationError, RefusedError, UsageError
from drtool.log import get_logger
from drtool.services.bundle.read import BundleContents, read_bundle
from drtool.services.context import Context
from drtool.services.keys import configured_identities

ENV_FILE = "env"

log = get_logger("bundle")


@dataclass(frozen=True)
class BundleShowResult:
    backup_id: str
    bundle: BundleInfo
    exit_code = EXIT_OK


@dataclass(frozen=True)
class BundleRestoreResult:
    backup_id: str
    out: str
    files: list[str]
    env: list[str]
    seconds: float
    exit_code = EXIT_OK


def bundle_of(ctx: Context, ref: str) -> tuple[BackupManifest, BundleInfo]:
    """The backup ``ref`` (an id or ``latest``) and its bundle; exit 2 when it has none."""
    manifest = expect_kind(ctx.catalog.resolve(ref, "backup"), BackupManifest)
    if manifest.bundle is None:
        raise UsageError(
            f"backup {manifest.id} has no configuration & secrets bundle",
            hint="configure `bundle` (docs/bundle.md); backups taken since then have one",
        )
    return manifest, manifest.bundle


def show_bundle(ctx: Context, ref: str) -> BundleShowResult:
    """Names, sizes, fingerprints and capture time from the manifest: no key, no object read."""
    manifest, info = bundle_of(ctx, ref)
    return BundleShowResult(manifest.id, info)


def _check_out(out: Path) -> None:
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise RefusedError(
            f"--out {out} exists and is not a directory: nothing was written",
            hint="choose a new (or empty) directory for --out",
        )
    if out.is_dir() and any(out.iterdir()):
        raise RefusedError(
            f"--out {out} is not empty: nothing was written",
            hint="choose a new (or empty) directory for --out; nothing is ever overwritten",
        )
    if not out.parent.is_dir():
        raise UsageError(
            f"--out {out}: its parent directory does not exist", hint="create it first"
        )


def _move_into_place(tmp: Path, out: Path) -> None:
    """rename(2) replaces an empty directory and refuses a non-empty one, atomically: a
    directory filled meanwhile is never written into."""
    try:
        os.rename(tmp, out)
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
            raise RefusedError(
                f"--out {out} was filled while the bundle was decrypted: nothing was written",
                hint="choose a new (or empty) directory for --out",
            ) from exc
        raise OperationError(f"--out {out}: cannot create it ({exc.strerror})") from exc


def _new_file(path: Path) -> BinaryIO:
    """Created 0600, never over an existing file or through a symlink."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    return os.fdopen(fd, "wb")


def restore_bundle(ctx: Context, ref: str, out: Path) -> BundleRestoreResult:
    """Decrypt the bundle into a new directory ``out`` (0700): each file by its name in the
    bundle and an ``env`` file, all 0600. Written into a temporary directory beside ``out``
    and renamed into place once everything was checked: a failure leaves nothing."""
    started = time.monotonic()
    manifest, _info = bundle_of(ctx, ref)
    identities = configured_identities(ctx.config)
    out = out.expanduser().absolute()
    _check_out(out)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        contents = _read_into(ctx, manifest, identities, tmp)
        os.chmod(tmp, 0o700)
        _move_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("bundle of backup %s restored into %s", manifest.id, out)
    return BundleRestoreResult(
        backup_id=manifest.id,
        out=str(out),
        files=contents.files,
        env=contents.env,
        seconds=round(time.monotonic() - started, 3),
    )


def _read_into(
    ctx: Context, manifest: BackupManifest, identities: list[Identity], tmp: Path
) -> BundleContents:
    contents = read_bundle(ctx.storage, manifest, identities, lambda name: _new_file(tmp / name))
    with _new_file(tmp / ENV_FILE) as env:
        env.write(contents.env_text)
    return contents


@dataclass(frozen=True)
class BundleCheck:
    """The drill's check of a backup's bundle."""

    ok: bool
    detail: str


def check_bundle(ctx: Context, manifest: BackupManifest) -> BundleCheck | None:
    """Decrypt the bundle and check it against the manifest (None: the backup has none). A
    bundle encrypted only to keys this host does not hold (an escrow key) cannot be decrypted
    here: its stored bytes are checked and the detail says so."""
    info = manifest.bundle
    if info is None:
        return None
    identities = configured_identities(ctx.config, required=False)
    ours = {i.recipient().fingerprint() for i in identities}
    if info.recipients and not ours & set(info.recipients):
        return BundleCheck(
            True,
            f"{len(info.entries)} entries; not decrypted: encrypted only to bundle.recipients "
            "this host holds no identity for (check it where the escrow key is)",
        )
    try:
        contents = read_bundle(ctx.storage, manifest, identities, lambda _name: None)
    except DrtoolError as exc:
        return BundleCheck(False, exc.message)
    return BundleCheck(
        True,
        f"decrypted; {len(contents.files)} files and {len(contents.env)} variables match the "
        "manifest's names, sizes and fingerprints",
    )
