"""Bundle drift for ``status``: the configured variables (and files, where readable) in this
process's environment, fingerprinted with the newest bundle's salt and parameters and compared
with its manifest. Reads nothing but the manifest already in hand."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from drtool.catalog.manifest import BackupManifest
from drtool.config import Config
from drtool.crypto.fingerprint import FingerprintParams
from drtool.services.bundle.capture import READ_BYTES, env_value, remember_secret


@dataclass(frozen=True)
class DriftEntry:
    kind: str
    name: str
    state: str  # "same", "differs", "missing"

    @property
    def drifted(self) -> bool:
        return self.state != "same"


@dataclass(frozen=True)
class BundleDrift:
    backup_id: str
    captured_at: str
    entries: list[DriftEntry] = field(default_factory=list)

    @property
    def drifted(self) -> list[DriftEntry]:
        return [e for e in self.entries if e.drifted]


def _file_digest(path: str) -> bytes | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(READ_BYTES):
                digest.update(chunk)
    except OSError:
        return None
    return digest.digest()


def bundle_drift(config: Config, manifest: BackupManifest | None) -> BundleDrift | None:
    """None when no bundle is configured or the newest backup has none. Variables configured
    now and captured in the bundle are compared (a missing one drifts); files whose configured
    path is readable here are compared (an unreadable one is not judged: status may run on
    another host)."""
    if not config.bundle.enabled or manifest is None or manifest.bundle is None:
        return None
    info = manifest.bundle
    try:
        params = FingerprintParams.from_doc(info.fingerprint)
    except (ValueError, KeyError):
        return BundleDrift(manifest.id, info.captured_at.isoformat())
    wanted = set(config.bundle.env)
    entries: list[DriftEntry] = []
    for entry in info.entries:
        if entry.kind == "env" and entry.name in wanted:
            value = env_value(entry.name)
            if value is None:
                entries.append(DriftEntry("env", entry.name, "missing"))
                continue
            remember_secret(value)
            same = params.fingerprint("env", entry.name, value) == entry.fingerprint
            entries.append(DriftEntry("env", entry.name, "same" if same else "differs"))
        elif entry.kind == "file" and entry.path is not None:
            digest = _file_digest(entry.path)
            if digest is None:
                continue
            same = params.fingerprint("file", entry.name, digest) == entry.fingerprint
            entries.append(DriftEntry("file", entry.name, "same" if same else "differs"))
    return BundleDrift(manifest.id, info.captured_at.isoformat(), entries)


def drift_breach(drift: BundleDrift | None) -> str | None:
    """The `bundle drift` breach text, or None."""
    if drift is None or not drift.drifted:
        return None
    parts = [f"{e.kind} {e.name} {e.state}" for e in drift.drifted]
    return (
        f"bundle drift: {', '.join(parts)} since backup {drift.backup_id}'s bundle "
        f"(captured {drift.captured_at}): a restore would bring back values the running app "
        "no longer uses; take a backup now (`drtool backup`) once the change is intended"
    )
