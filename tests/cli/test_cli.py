"""The SPEC's command-line contract: exit codes, --json documents, messages, key files."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from drtool.config import load_config
from drtool.crypto.keys import parse_identity_file

ROOT = Path(__file__).resolve().parents[2]


def drtool(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DRTOOL_")}
    base["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "drtool", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**base, **(env or {})},
        check=False,
    )


def test_version_and_help() -> None:
    assert drtool("--version").returncode == 0
    out = drtool("backup", "--help")
    assert out.returncode == 0 and "--label" in out.stdout


def test_keys_generate_writes_a_0600_identity_and_prints_its_recipient(tmp_path: Path) -> None:
    key = tmp_path / "id.txt"
    out = drtool("keys", "generate", "--out", str(key))
    assert out.returncode == 0, out.stderr
    recipient = out.stdout.strip()
    assert recipient.startswith("age1")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert parse_identity_file(key)[0].recipient().encode() == recipient
    again = drtool("keys", "recipient", "--identity", str(key))
    assert again.stdout.strip() == recipient
    assert "AGE-SECRET-KEY" not in out.stdout + out.stderr


def test_keys_generate_never_overwrites(tmp_path: Path) -> None:
    key = tmp_path / "id.txt"
    key.write_text("precious\n")
    out = drtool("keys", "generate", "--out", str(key))
    assert out.returncode == 2
    assert key.read_text() == "precious\n"


def test_init_writes_a_loadable_commented_config_and_identity(tmp_path: Path) -> None:
    out = drtool("init", "--dir", str(tmp_path / "etc"))
    assert out.returncode == 0, out.stderr
    cfg_path = tmp_path / "etc" / "drtool.yaml"
    text = cfg_path.read_text()
    assert text.count("#") > 10
    cfg = load_config(cfg_path, environ={})
    assert cfg.encryption.recipients and cfg.encryption.recipients[0].startswith("age1")
    identity = tmp_path / "etc" / "drtool-identity.txt"
    assert stat.S_IMODE(identity.stat().st_mode) == 0o600
    assert "next steps" in out.stdout
    assert drtool("init", "--dir", str(tmp_path / "etc")).returncode == 2


def test_invalid_config_exits_2_listing_every_key_path(tmp_path: Path) -> None:
    cfg = tmp_path / "drtool.yaml"
    cfg.write_text("storage: {url: 'ftp://x'}\nobjectives: {rpo: tomorrow}\nbogus: 1\n")
    out = drtool("--config", str(cfg), "list")
    assert out.returncode == 2
    for path in ("storage.url", "objectives.rpo", "bogus"):
        assert path in out.stderr
    assert "Traceback" not in out.stderr


def test_json_error_document_when_no_result(tmp_path: Path) -> None:
    cfg = tmp_path / "drtool.yaml"
    cfg.write_text("storage: {url: 'ftp://x'}\n")
    for args in (
        ["--json", "--config", str(cfg), "list"],
        ["--config", str(cfg), "list", "--json"],
    ):
        out = drtool(*args)
        assert out.returncode == 2
        doc = json.loads(out.stdout)
        assert doc["ok"] is False and doc["exit_code"] == 2
        assert "storage.url" in doc["error"]["message"]


def test_unknown_command_and_option_are_usage_errors() -> None:
    assert drtool("frobnicate").returncode == 2
    assert drtool("list", "--nope").returncode == 2
    out = drtool("--json", "frobnicate")
    assert json.loads(out.stdout)["exit_code"] == 2


def test_empty_catalog_lists_nothing_and_latest_is_a_usage_error(tmp_path: Path) -> None:
    cfg = tmp_path / "drtool.yaml"
    cfg.write_text(f"storage: {{url: 'file://{tmp_path / 'store'}'}}\n")
    out = drtool("--config", str(cfg), "list", "--json")
    assert out.returncode == 0 and json.loads(out.stdout)["items"] == []
    latest = drtool("--config", str(cfg), "show", "latest")
    assert latest.returncode == 2 and "no complete backup" in latest.stderr
    unknown = drtool("--config", str(cfg), "show", "20261126T000000.000Z-abcd")
    assert (
        unknown.returncode == 2 and "no complete backup 20261126T000000.000Z-abcd" in unknown.stderr
    )
    bad = drtool("--config", str(cfg), "show", "../../etc/passwd")
    assert bad.returncode == 2 and "not a drtool id" in bad.stderr


def test_config_from_env_variable_and_missing_file(tmp_path: Path) -> None:
    out = drtool("list", cwd=tmp_path)
    assert out.returncode == 2 and "no configuration file" in out.stderr
    cfg = tmp_path / "elsewhere.yaml"
    cfg.write_text(f"storage: {{url: 'file://{tmp_path / 'store'}'}}\n")
    out = drtool("list", cwd=tmp_path, env={"DRTOOL_CONFIG": str(cfg)})
    assert out.returncode == 0, out.stderr
