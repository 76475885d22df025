"""Helpers for the bundle tests: a configuration with files (binary content, odd names, a base
name collision) and variables (quotes, newlines, dollars), and readers of what is stored."""

from __future__ import annotations

import base64
import re
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.fixtures.cli import Setup

TOKEN = re.compile(r"[a-z]+-[0-9a-f]{40}")
ENV_NAMES = ("APP_ENCRYPTION_KEY", "GOOGLE_CLIENT_SECRET", "STRIPE_TOKEN")


@dataclass
class Captured:
    """What a bundle test configured: variables (name -> value) and files (path -> bytes)."""

    env: dict[str, str]
    files: dict[Path, bytes]

    def values(self) -> list[bytes]:
        """Every secret a test must never find outside the bundle object (and the restore)."""
        found = [v.encode() for v in self.env.values()]
        # The random part alone too: a value cut at its quote or newline still leaks it.
        found += [t.encode() for v in self.env.values() for t in TOKEN.findall(v)]
        found += [f"FILE-SECRET-{p.name}".encode() for p in self.files]
        return found

    def tokens(self) -> list[bytes]:
        """The values' random parts and the files' markers: each is in the decrypted bundle."""
        return [
            v
            for v in self.values()
            if TOKEN.fullmatch(v.decode(errors="replace")) or v.startswith(b"FILE-SECRET-")
        ]


def secret_value(tag: str) -> str:
    # Distinct, long and random: no chance of appearing by accident in other stored bytes.
    return f"{tag}-{secrets.token_hex(20)}"


def configure_bundle(setup: Setup, where: Path, **bundle: object) -> Captured:
    """Bundle two files sharing a base name, one binary file with an odd name, and three
    variables whose values need quoting."""
    env = {
        "APP_ENCRYPTION_KEY": secret_value("aek"),
        "GOOGLE_CLIENT_SECRET": secret_value("gcs") + '\' "$HOME" `x`\nsecond line',
        "STRIPE_TOKEN": secret_value("stripe"),
    }
    first = where / "etc" / "app.env"
    second = where / "other" / "app.env"
    odd = where / "odd" / "näme with 'quotes' $x -.bin"
    files = {
        first: b"DATABASE_URL=x\nFILE-SECRET-app.env\n",
        second: b"FILE-SECRET-app.env\nsecond copy\n",
        odd: bytes(range(256)) * 8 + b"FILE-SECRET-" + odd.name.encode() + b"\0\xff",
    }
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    setup.doc["bundle"] = {"files": [str(p) for p in files], "env": list(env), **bundle}
    setup.env.update(env)
    setup.write()
    return Captured(env, files)


def forms(value: bytes) -> list[bytes]:
    """A value as it could leak: itself, base64 (standard, urlsafe) and hex (both cases)."""
    b64 = base64.b64encode(value)
    return [
        value,
        b64.rstrip(b"="),
        base64.urlsafe_b64encode(value).rstrip(b"="),
        value.hex().encode(),
        value.hex().upper().encode(),
    ]


def read_env_file(path: Path) -> dict[str, str]:
    """Load an `env` file the way the docs say (`set -a; . ./env`) and read the values back
    exactly, NUL-separated."""
    names = [line.split("=", 1)[0] for line in path.read_text().splitlines() if "='" in line]
    script = 'set -a; . "$1"; set +a; for n in "${@:2}"; do printf "%s\\0" "${!n}"; done'
    done = subprocess.run(
        ["bash", "-c", script, "bash", str(path), *names],
        capture_output=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    values = done.stdout.split(b"\0")[:-1]
    return {n: v.decode() for n, v in zip(names, values, strict=True)}
