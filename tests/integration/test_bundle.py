"""The configuration & secrets bundle (SPEC "Configuration & secrets bundle"): captured with a
backup, shown without a key, restored 0600 into a new directory, readable with age, zstd and
tar alone, authenticated, and compared with the running environment by `status`."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from drtool.crypto.keys import generate_identity
from tests.fixtures.cli import Setup
from tests.fixtures.webhook import Webhook
from tests.integration.bundle_support import configure_bundle, forms, read_env_file, secret_value
from tests.integration.test_break_glass import require
from tests.integration.test_rehearse import drill_tmp  # noqa: F401 (the fixture)
from tests.integration.test_scheduler import storage_root

BUNDLE_FILE = "bundle.tar.zst.age"


def backup(setup: Setup) -> str:
    return str(setup.run("backup").stdout.strip().splitlines()[-1])


def bundle_object(setup: Setup, backup_id: str) -> Path:
    return storage_root(setup) / "backups" / backup_id / BUNDLE_FILE


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_bundle_round_trips_files_and_values_exactly(file_setup: Setup, tmp_path: Path) -> None:
    captured = configure_bundle(file_setup, tmp_path / "host")
    backup_id = backup(file_setup)
    manifest = file_setup.run("show", backup_id, "--json").json
    assert "bundle" in [o["name"] for o in manifest["objects"]]
    assert manifest["seal"]["object"] == "dump"

    shown = file_setup.run("bundle", "show", "latest", "--json").json
    assert shown["backup_id"] == backup_id
    entries = {(e["kind"], e["name"]): e for e in shown["entries"]}
    assert set(entries) == {
        ("file", "app.env"),
        ("file", "app.env.2"),
        ("file", "näme with 'quotes' $x -.bin"),
        *(("env", name) for name in captured.env),
    }
    for name, value in captured.env.items():
        assert entries[("env", name)]["size"] == len(value.encode())
    assert shown["fingerprint"]["algorithm"] == "scrypt" and shown["fingerprint"]["salt"]
    human = file_setup.run("bundle", "show", backup_id).stdout
    assert "APP_ENCRYPTION_KEY" in human and "app.env.2" in human
    assert "bundle:      3 files, 3 variables" in file_setup.run("show", backup_id).stdout

    out = tmp_path / "restored"
    result = file_setup.run("bundle", "restore", "latest", "--out", str(out), "--json").json
    assert result["backup_id"] == backup_id
    assert mode(out) == 0o700
    restored = {p.name: p for p in out.iterdir()}
    assert set(restored) == {"app.env", "app.env.2", "näme with 'quotes' $x -.bin", "env"}
    assert all(mode(p) == 0o600 for p in restored.values())
    by_name = {"app.env": 0, "app.env.2": 1, "näme with 'quotes' $x -.bin": 2}
    contents = list(captured.files.values())
    for name, index in by_name.items():
        assert restored[name].read_bytes() == contents[index]
    assert read_env_file(restored["env"]) == captured.env
    # Nothing left beside the output (the temporary directory was renamed into place).
    assert sorted(p.name for p in out.parent.iterdir() if p.name.startswith(".")) == []
    # The hand-out is audited: which backup, where to, no value.
    [record] = [
        r for r in file_setup.run("--json", "audit").json["records"]
        if r["command"] == "bundle restore"
    ]  # fmt: skip
    assert record["items"] == [f"backup:{backup_id}"] and record["target"] == f"file:{out}"
    assert record["outcome"] == "succeeded" and record["exit_code"] == 0
    assert not any(v in json.dumps(record) for v in captured.env.values())


def test_bundle_opens_with_age_zstd_and_tar_alone(file_setup: Setup, tmp_path: Path) -> None:
    age, zstd = require("age"), require("zstd")
    captured = configure_bundle(file_setup, tmp_path / "host")
    backup_id = backup(file_setup)
    out = tmp_path / "glass"
    out.mkdir()
    # Exactly the commands docs/format.md and runbooks/restore.md give.
    command = (
        f"set -o pipefail; {age} -d -i {file_setup.identity_path} "
        f"{bundle_object(file_setup, backup_id)} | {zstd} -d | tar -x -C {out}"
    )
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    index = json.loads((out / "bundle.json").read_text())
    assert index["env"] == list(captured.env)
    assert read_env_file(out / "env") == captured.env
    contents = list(captured.files.values())
    assert (out / "files" / "app.env").read_bytes() == contents[0]
    assert (out / "files" / "app.env.2").read_bytes() == contents[1]
    assert (out / "files" / "näme with 'quotes' $x -.bin").read_bytes() == contents[2]


def test_status_breaches_bundle_drift_when_a_value_changes(
    file_setup: Setup, tmp_path: Path
) -> None:
    textfile = file_setup.dir / "drtool.prom"
    file_setup.doc["metrics"] = {"textfile": str(textfile)}
    configure_bundle(file_setup, tmp_path / "host")
    backup_id = backup(file_setup)

    same = file_setup.run("status", "--json").json
    assert same["ok"] is True, same["breaches"]
    assert {e["state"] for e in same["bundle"]["entries"]} == {"same"}
    assert 'drtool_bundle_drift{kind="env",name="APP_ENCRYPTION_KEY"} 0.0' in textfile.read_text()

    changed = file_setup.run(
        "status", expect=4, extra_env={"APP_ENCRYPTION_KEY": "rotated-by-someone"}
    )
    assert "bundle drift: env APP_ENCRYPTION_KEY differs" in changed.stdout
    assert backup_id in changed.stdout
    metrics = textfile.read_text()
    assert 'drtool_bundle_drift{kind="env",name="APP_ENCRYPTION_KEY"} 1.0' in metrics
    assert 'drtool_objective_breached{objective="bundle_drift"} 1.0' in metrics

    env = {k: v for k, v in file_setup.env.items() if k != "STRIPE_TOKEN"}
    missing = subprocess.run(
        [*_drtool(file_setup), "status", "--json"], env=env, capture_output=True, text=True
    )
    assert missing.returncode == 4
    assert any("env STRIPE_TOKEN missing" in b for b in json.loads(missing.stdout)["breaches"])

    (tmp_path / "host" / "etc" / "app.env").write_bytes(b"edited\n")
    edited = file_setup.run("status", "--json", expect=4).json
    assert any("file app.env differs" in b for b in edited["breaches"])


def _drtool(setup: Setup) -> list[str]:
    from tests.fixtures.cli import DRTOOL

    return [*DRTOOL, "--config", str(setup.config_path)]


def test_a_recipients_only_host_cannot_restore_the_bundle(
    file_setup: Setup, tmp_path: Path
) -> None:
    configure_bundle(file_setup, tmp_path / "host")
    backup_id = backup(file_setup)
    del file_setup.doc["encryption"]["identity_file"]
    file_setup.write()
    assert file_setup.run("bundle", "show", backup_id, "--json").json["entries"]
    out = tmp_path / "out"
    failed = file_setup.run("bundle", "restore", backup_id, "--out", str(out), expect=2)
    assert "encryption.identity_file" in failed.stdout + failed.stderr
    assert not out.exists()


def test_a_non_empty_out_directory_is_refused_and_left_alone(
    file_setup: Setup, tmp_path: Path
) -> None:
    configure_bundle(file_setup, tmp_path / "host")
    backup(file_setup)
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    refused = file_setup.run("bundle", "restore", "latest", "--out", str(out), expect=5)
    assert "--out" in refused.stderr and "not empty" in refused.stderr
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert (out / "keep.txt").read_text() == "mine"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no partial output
    [refusal] = file_setup.run("--json", "audit").json["records"]
    assert (refusal["command"], refusal["outcome"], refusal["exit_code"]) == (
        "bundle restore",
        "failed",
        5,
    )
    # An empty directory is fine: it becomes the restore.
    empty = tmp_path / "empty"
    empty.mkdir()
    file_setup.run("bundle", "restore", "latest", "--out", str(empty))
    assert "env" in [p.name for p in empty.iterdir()]


@pytest.mark.parametrize("missing", ["file", "env"])
def test_a_missing_file_or_variable_fails_the_backup_before_any_dump(
    file_setup: Setup, tmp_path: Path, missing: str
) -> None:
    configure_bundle(file_setup, tmp_path / "host")
    if missing == "file":
        gone = tmp_path / "host" / "nowhere.env"
        file_setup.doc["bundle"]["files"].append(str(gone))
        file_setup.write()
        failed = file_setup.run("backup", "-v", expect=2)
        assert str(gone) in failed.stderr
    else:
        file_setup.doc["bundle"]["env"].append("NOT_SET_ANYWHERE")
        file_setup.write()
        failed = file_setup.run("backup", "-v", expect=2)
        assert "NOT_SET_ANYWHERE" in failed.stderr
    assert "pg_dump" not in failed.stderr
    backups = storage_root(file_setup) / "backups"
    assert not backups.exists() or list(backups.iterdir()) == []
    assert file_setup.run("list", "--json").json["items"] == []


def test_a_tampered_bundle_exits_3_and_writes_nothing(file_setup: Setup, tmp_path: Path) -> None:
    configure_bundle(file_setup, tmp_path / "host")
    backup_id = backup(file_setup)
    obj = bundle_object(file_setup, backup_id)
    data = bytearray(obj.read_bytes())
    data[len(data) // 2] ^= 0x01
    obj.write_bytes(bytes(data))
    out = tmp_path / "out"
    failed = file_setup.run("bundle", "restore", backup_id, "--out", str(out), expect=3)
    assert "bundle" in failed.stderr
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no partial output


def test_an_escrow_only_bundle_is_verified_and_drilled_without_its_key(
    file_setup: Setup, tmp_path: Path
) -> None:
    escrow = generate_identity()
    configure_bundle(file_setup, tmp_path / "host", recipients=[escrow.recipient().encode()])
    backup_id = backup(file_setup)
    shown = file_setup.run("bundle", "show", backup_id, "--json").json
    assert shown["recipients"] == [escrow.recipient().fingerprint()]
    # The backup's own identity opens everything but the bundle; deep verify stays clean.
    assert file_setup.run("verify", backup_id, "--deep", "--json").json["items"][0]["ok"]
    failed = file_setup.run("bundle", "restore", backup_id, "--out", str(tmp_path / "o"), expect=3)
    assert "bundle" in failed.stderr


def test_bundle_show_and_restore_from_a_replica(
    s3_setup: Setup, tmp_path: Path, moto_server: Any
) -> None:
    from tests.integration.replica_support import add_replica, lose_everything

    replica = moto_server.create_bucket()
    try:
        add_replica(s3_setup, moto_server, replica)
        captured = configure_bundle(s3_setup, tmp_path / "host")
        backup_id = backup(s3_setup)
        primary = s3_setup.doc["storage"]["url"].removeprefix("s3://").split("/")[0]
        [copied] = s3_setup.run("replicate", "--json").json["replicas"]
        assert backup_id in copied["copied"]  # the bundle object travels with its backup
        lose_everything(moto_server, primary)
        shown = s3_setup.run("bundle", "show", "latest", "--from", "dr", "--json").json
        assert shown["backup_id"] == backup_id
        out = tmp_path / "from-dr"
        s3_setup.run("bundle", "restore", backup_id, "--from", "dr", "--out", str(out))
        assert read_env_file(out / "env") == captured.env
    finally:
        moto_server.empty_bucket(replica)


def test_restore_leaves_no_partial_directory_when_the_bundle_does_not_match(
    file_setup: Setup, tmp_path: Path
) -> None:
    """Another backup's bundle in its place (authentic age, other content) fails with exit 3,
    nothing written."""
    configure_bundle(file_setup, tmp_path / "host")
    first = backup(file_setup)
    file_setup.env["APP_ENCRYPTION_KEY"] = "another-value-entirely"
    second = backup(file_setup)
    shutil.copyfile(bundle_object(file_setup, second), bundle_object(file_setup, first))
    out = tmp_path / "out"
    failed = file_setup.run("bundle", "restore", first, "--out", str(out), expect=3)
    assert "bundle" in failed.stderr
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]
    assert os.listdir(tmp_path / "cfg")  # untouched


def _decrypted(setup: Setup, obj: Path) -> bytes:
    age, zstd = require("age"), require("zstd")
    command = f"set -o pipefail; {age} -d -i {setup.identity_path} {obj} | {zstd} -d"
    return subprocess.run(["bash", "-c", command], capture_output=True, check=True).stdout


def test_no_value_appears_in_output_logs_records_or_stored_bytes(
    file_setup: Setup,
    tmp_path: Path,
    drill_tmp: Path,  # noqa: F811 (the fixture)
) -> None:
    """backup, show, bundle show, status with drift, verify --deep, rehearse (with a report),
    bundle restore, all with -v: no captured value (nor the drifted one), in itself, base64 or
    hex, is in any output, any stored byte, any decrypted object but the bundle, the metrics
    textfile or the drill report. The bundle object holds them, encrypted only."""
    textfile = file_setup.dir / "drtool.prom"
    file_setup.doc["metrics"] = {"textfile": str(textfile)}
    captured = configure_bundle(file_setup, tmp_path / "host")
    rotated = secret_value("rotated")
    report = tmp_path / "drill.html"
    outputs: list[str] = []

    def run(*args: str, expect: int = 0, **kw: Any) -> None:
        done = file_setup.run("-v", *args, expect=expect, **kw)
        outputs.extend([done.stdout, done.stderr])

    run("backup")
    backup_id = file_setup.run("list", "--json").json["items"][0]["id"]
    for args in (("show", backup_id), ("bundle", "show", "latest")):
        run(*args)
        run(*args, "--json")
    run("status")
    run("status", "--json", expect=4, extra_env={"APP_ENCRYPTION_KEY": rotated})
    run("verify", backup_id, "--deep")
    run("rehearse", backup_id, "--report", str(report), extra_env={"TMPDIR": str(drill_tmp)})
    run("bundle", "restore", backup_id, "--out", str(tmp_path / "out"))
    run("bundle", "restore", backup_id, "--out", str(tmp_path / "out"), expect=5)
    run("bundle", "restore", backup_id, "--out", str(tmp_path / "o2"), "--json")

    drills = sorted((storage_root(file_setup) / "drills").glob("*.json"))
    [check] = [c for c in json.loads(drills[-1].read_text())["checks"] if c["name"] == "bundle"]
    assert check["ok"] is True and "decrypted" in check["detail"]
    assert "decrypted; 3 files and 3 variables match" in report.read_text()

    stored: dict[str, bytes] = {}
    for path in storage_root(file_setup).rglob("*"):
        if path.is_file():
            stored[str(path)] = path.read_bytes()
            if path.name.endswith(".age") and path.name != BUNDLE_FILE:
                stored[f"{path} (decrypted)"] = _decrypted(file_setup, path)
    stored["metrics textfile"] = textfile.read_bytes()
    stored["drill report"] = report.read_bytes()
    stored["output"] = "\n".join(outputs).encode()
    assert any(BUNDLE_FILE in where for where in stored)

    values = [*captured.values(), rotated.encode()]
    for value in values:
        for form in forms(value):
            leaks = [where for where, data in stored.items() if form in data]
            assert not leaks, f"a value (as {form[:6]!r}...) is in {leaks}"
    # The control: decrypted, the bundle does hold every captured value.
    plain = _decrypted(file_setup, bundle_object(file_setup, backup_id))
    assert len(set(captured.tokens())) == 5  # 3 variables, 2 distinct file markers
    assert all(token in plain for token in captured.tokens())


def test_a_drill_fails_when_the_bundle_does_not_match_its_manifest(
    file_setup: Setup,
    tmp_path: Path,
    drill_tmp: Path,  # noqa: F811 (the fixture)
) -> None:
    configure_bundle(file_setup, tmp_path / "host")
    first = backup(file_setup)
    file_setup.env["STRIPE_TOKEN"] = secret_value("other")
    second = backup(file_setup)
    # Authentic age from the same keys, but another backup's content: the manifest (its
    # SHA-256 of the object, its fingerprints) tells.
    shutil.copyfile(bundle_object(file_setup, second), bundle_object(file_setup, first))
    done = file_setup.run(
        "rehearse", first, "--json", expect=None, extra_env={"TMPDIR": str(drill_tmp)}
    )
    assert done.code == 4, done.stderr  # a completed drill with a failed check
    record = sorted((storage_root(file_setup) / "drills").glob("*.json"))[-1]
    doc = json.loads(record.read_text())
    assert doc["verdict"] == "fail"
    [check] = [c for c in doc["checks"] if c["name"] == "bundle"]
    assert check["ok"] is False and "bundle" in check["detail"]


def test_bundle_drift_is_notified_after_a_job_like_every_breach(
    file_setup: Setup, tmp_path: Path, webhook: Webhook
) -> None:
    file_setup.doc["notifications"] = {"webhook_url": webhook.url, "on": ["breach"]}
    captured = configure_bundle(file_setup, tmp_path / "host")
    backup_id = backup(file_setup)
    assert webhook.posts() == []  # the bundle was just captured: no drift
    rotated = secret_value("rotated")
    file_setup.run("verify", backup_id, extra_env={"APP_ENCRYPTION_KEY": rotated})
    [post] = webhook.posts()
    assert post["event"] == "breach"
    assert post["drtool"]["breached"] == ["bundle_drift"]
    assert "bundle drift: env APP_ENCRYPTION_KEY differs" in post["text"]
    sent = json.dumps(webhook.posts()).encode()
    assert not [v for v in [*captured.values(), rotated.encode()] if v in sent]


def test_a_backup_without_a_bundle_says_so(file_setup: Setup, tmp_path: Path) -> None:
    backup_id = backup(file_setup)
    shown = file_setup.run("bundle", "show", backup_id, expect=2)
    assert f"backup {backup_id} has no configuration & secrets bundle" in shown.stderr
    out = tmp_path / "out"
    file_setup.run("bundle", "restore", "latest", "--out", str(out), expect=2)
    assert not out.exists()
    assert file_setup.run("status", "--json").json["bundle"] is None
    unknown = file_setup.run("bundle", "show", "20990101T000000.000Z-0000", expect=2)
    assert "no complete backup" in unknown.stderr
