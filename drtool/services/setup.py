"""``init``: a commented starter configuration and a new identity, never overwriting anything."""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from drtool.errors import UsageError
from drtool.services.keys import generate_key

CONFIG_NAME = "drtool.yaml"
IDENTITY_NAME = "drtool-identity.txt"


@dataclass(frozen=True)
class InitResult:
    config_file: str
    identity_file: str
    recipient: str


def config_template(recipient: str, identity_file: str, **overrides: str) -> str:
    text = resources.files("drtool.services").joinpath("templates/drtool.yaml").read_text("utf-8")
    rendered = text.format(recipient=recipient, identity_file=identity_file)
    for old, new in overrides.items():
        rendered = rendered.replace(old, new)
    return rendered


def init_project(directory: Path) -> InitResult:
    config_file = directory / CONFIG_NAME
    identity_file = directory / IDENTITY_NAME
    for path in (config_file, identity_file):
        if path.exists():
            raise UsageError(f"{path} already exists; init never overwrites", hint="use --dir DIR")
    directory.mkdir(parents=True, exist_ok=True)
    key = generate_key(identity_file)
    text = config_template(key.recipient, str(identity_file.resolve()))
    fd = os.open(config_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    return InitResult(str(config_file), str(identity_file), key.recipient)
