"""Local-directory guarantees: leftovers of killed writers are reported, never listed, and
removable; everything written is private to its owner; conditional writes are atomic across
processes."""

from __future__ import annotations

import multiprocessing
import os
import signal
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from drtool.config import StorageConfig
from drtool.errors import StorageError, UsageError
from drtool.storage import open_storage
from drtool.storage.base import PendingUpload
from drtool.storage.local import TEMP_DIR_NAME, LocalStorage
from tests.storage.turns import race_put_if

REPO_ROOT = Path(__file__).resolve().parents[2]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_killed_writer_leaves_a_pending_upload_that_is_never_listed(tmp_path: Path) -> None:
    root = tmp_path / "storage"
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from drtool.storage.local import LocalStorage

        def producer():
            yield b"x" * 100_000
            print("writing", flush=True)
            time.sleep(60)
            yield b"never"

        LocalStorage(Path({str(root)!r})).put("backups/1/dump", producer())
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "writing"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    storage = LocalStorage(root)
    storage.put_bytes("backups/0/manifest.json", b"{}")
    assert [i.key for i in storage.list("")] == ["backups/0/manifest.json"]
    assert not storage.exists("backups/1/dump")
    pending = list(storage.pending_uploads("backups/"))
    assert [p.key for p in pending] == ["backups/1/dump"]
    assert abs(pending[0].started - datetime.now(UTC)) < timedelta(minutes=1)
    assert list(storage.pending_uploads("exports/")) == []
    storage.abort_upload(pending[0])
    storage.abort_upload(pending[0])  # idempotent
    assert list(storage.pending_uploads("")) == []
    assert [i.key for i in storage.list("")] == ["backups/0/manifest.json"]


def test_upload_in_progress_is_pending_and_invisible(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "s")
    observed: list[object] = []

    def producer() -> Iterator[bytes]:
        yield b"a" * 1000
        observed.append([i.key for i in storage.list("")])
        observed.append([p.key for p in storage.pending_uploads("")])
        observed.append(storage.exists("k"))
        yield b"b"

    assert storage.put("k", producer()) == 1001
    assert observed == [[], ["k"], False]
    assert list(storage.pending_uploads("")) == []
    assert not (tmp_path / "s" / TEMP_DIR_NAME).exists() or not any(
        (tmp_path / "s" / TEMP_DIR_NAME).iterdir()
    )


def test_files_are_0600_and_directories_0700(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        root = tmp_path / "new-root"
        storage = LocalStorage(root)
        storage.put("backups/1/dump", [b"secret rows"])
        storage.put_bytes("backups/1/manifest.json", b"{}")
    finally:
        os.umask(old_umask)
    assert mode(root / "backups/1/dump") == 0o600
    assert mode(root / "backups/1/manifest.json") == 0o600
    for directory in (root, root / "backups", root / "backups/1"):
        assert mode(directory) == 0o700


def test_temp_directory_name_and_bad_upload_ids_are_refused(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    with pytest.raises(UsageError, match="reserved"):
        storage.put_bytes(f"{TEMP_DIR_NAME}/x", b"x")
    with pytest.raises(UsageError, match="upload id"):
        storage.abort_upload(PendingUpload("k", "../../etc", datetime.now(UTC)))


def test_delete_removes_emptied_directories(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.put_bytes("a/b/c", b"x")
    storage.put_bytes("a/d", b"x")
    storage.delete("a/b/c")
    assert not (tmp_path / "a/b").exists()
    assert (tmp_path / "a/d").exists()


def test_relative_file_url_resolves_against_base_dir(tmp_path: Path) -> None:
    storage = open_storage(StorageConfig(url="file://./data"), base_dir=tmp_path)
    storage.put_bytes("k", b"x")
    assert (tmp_path / "data/k").read_bytes() == b"x"
    assert storage.description == (tmp_path / "data").as_uri()


def test_write_error_names_key_and_directory(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.put_bytes("a", b"x")
    # "a" is a file, so "a/b" cannot be created: an OS error, translated.
    with pytest.raises(StorageError) as caught:
        storage.put_bytes("a/b", b"x")
    assert "a/b" in str(caught.value) and tmp_path.as_uri() in str(caught.value)
    assert isinstance(caught.value.__cause__, OSError)
    assert list(storage.pending_uploads("")) == []


@pytest.mark.parametrize("replace", [False, True], ids=["create", "replace"])
def test_racing_processes_conditional_writes_exactly_one_lands(
    tmp_path: Path, replace: bool
) -> None:
    """No wrapper: real processes released at once on one key; link(2) and the flock decide."""
    storage = LocalStorage(tmp_path / "s")
    etag = storage.put_if("scheduler/job.json", b"free", etag=None) if replace else None
    spawn = multiprocessing.get_context("spawn")
    start, results = spawn.Event(), spawn.Queue()
    args = (str(storage.root), "scheduler/job.json", etag, start, results)
    children = [spawn.Process(target=race_put_if, args=args) for _ in range(8)]
    for child in children:
        child.start()
    start.set()
    etags = [results.get(timeout=120) for _ in children]
    for child in children:
        child.join()
    landed = [tag for tag in etags if tag is not None]
    assert len(landed) == 1
    data, stored = storage.get_tagged("scheduler/job.json")
    assert stored == landed[0] and data != b"free"
