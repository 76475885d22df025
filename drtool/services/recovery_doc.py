"""RECOVERY.md: the plain, keyless page stored beside every backup saying what it holds, the
break-glass commands for its own objects with standard tools, what it does not cover and how to
check it. Rendered from the manifest's fields (never a secret), stored before the manifest and
listed in it, so the seal authenticates it."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from urllib.parse import unquote, urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined

from drtool.catalog.catalog import BUNDLE_OBJECT, DUMP_OBJECT, GLOBALS_OBJECT
from drtool.catalog.manifest import BackupManifest, ObjectEntry
from drtool.catalog.writer import ItemWriter
from drtool.errors import DrtoolError
from drtool.log import get_logger
from drtool.pg.dump.sizes import table_sizes
from drtool.services.context import Context
from drtool.services.html.page import human_size

RECOVERY_OBJECT = "recovery"
RECOVERY_FILE = "RECOVERY.md"
TEMPLATES = "services/templates"
TEMPLATE = "RECOVERY.md.j2"

# What the reader substitutes; nothing else in a command block is to be changed.
IDENTITY = "<IDENTITY_FILE>"
BUNDLE_IDENTITY = "<BUNDLE_IDENTITY_FILE>"
WORK = "<WORK_DIR>"
TARGET = "<TARGET_DSN>"
PLACEHOLDERS = (IDENTITY, BUNDLE_IDENTITY, WORK, TARGET)

log = get_logger("backup")


@dataclass(frozen=True)
class Location:
    """Where the backup is stored, as an operator reaches it without drtool: a storage URL
    (``s3://bucket/prefix`` or ``file:///dir``) and, for S3-compatible stores, the endpoint."""

    url: str
    endpoint_url: str | None = None


@dataclass(frozen=True)
class Table:
    name: str
    rows: int
    size: int | None
    data_excluded: bool


def _file(entry: ObjectEntry) -> str:
    return entry.key.rsplit("/", 1)[-1]


def _in_work(entry: ObjectEntry) -> str:
    return f'"{WORK}/{_file(entry)}"'


def _decrypt(entry: ObjectEntry, identity: str = IDENTITY) -> str:
    return f'age -d -i "{identity}" {_in_work(entry)} | zstd -d'


def _custom_restore(dump: ObjectEntry) -> list[str]:
    """``dump_format: custom``: one pg_dump -Fc archive, streamed into pg_restore."""
    return [
        f'{_decrypt(dump)} | pg_restore --no-owner --exit-on-error -d "{TARGET}"',
    ]


def _parallel_restore(manifest: BackupManifest) -> list[str]:
    """``dump_format: parallel`` (``backup --jobs N``): the schema, every table's COPY script,
    then indexes and constraints (docs/format.md, "The parallel format")."""
    pre, post = manifest.object("pre-data"), manifest.object("post-data")
    data = [o for o in manifest.objects if o.name.startswith("data-")]
    lines = [
        "# 1. the schema (and sequence values, large objects), in one transaction",
        f"{_decrypt(pre)} | pg_restore --no-owner --exit-on-error --single-transaction"
        f' -d "{TARGET}"',
        f"# 2. the rows: {len(data)} COPY script(s), in any order (or several at once)",
    ]
    lines += [
        f'{_decrypt(o)} | psql -X -q -v ON_ERROR_STOP=1 --single-transaction -d "{TARGET}" -f -'
        for o in data
    ]
    lines += [
        "# 3. indexes, constraints, triggers, policies (pg_restore -j needs a file)",
        f'{_decrypt(post)} > "{WORK}/post-data.pgdump"',
        f'pg_restore --no-owner --exit-on-error -j 4 -d "{TARGET}" "{WORK}/post-data.pgdump"',
    ]
    return lines


# The commands that restore a backup's dump, per ``dump_format``: a new format adds its own.
DUMP_COMMANDS: dict[str, Callable[[BackupManifest], list[str]]] = {
    "custom": lambda m: _custom_restore(m.object(DUMP_OBJECT)),
    "parallel": _parallel_restore,
}


def copy_command(location: Location, item_id: str) -> str:
    """Copy the backup's folder to ``<WORK_DIR>`` with a standard tool."""
    if location.url.startswith("s3://"):
        source = f"{location.url.rstrip('/')}/backups/{item_id}/"
        endpoint = (
            f" --endpoint-url {shlex.quote(location.endpoint_url)}" if location.endpoint_url else ""
        )
        return f'aws s3 cp {shlex.quote(source)} "{WORK}/" --recursive{endpoint}'
    url = location.url
    root = unquote(urlsplit(url).path) if url.startswith("file:") else url
    folder = f"{root.rstrip('/')}/backups/{item_id}/."
    return f'cp -R {shlex.quote(folder)} "{WORK}/"'


def _tables(manifest: BackupManifest, sizes: dict[str, int]) -> list[Table]:
    return [
        Table(name, rows, sizes.get(name), name in manifest.excluded_table_data)
        for name, rows in sorted(manifest.tables.items())
    ]


@cache
def environment() -> Environment:
    # Markdown, not HTML: no autoescape. Only manifest fields are rendered, never a secret.
    env = Environment(
        loader=PackageLoader("drtool", TEMPLATES),
        autoescape=False,  # noqa: S701 - Markdown for a terminal or an editor, not HTML
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["size"] = human_size
    return env


def render_recovery(
    manifest: BackupManifest,
    location: Location,
    *,
    sizes: dict[str, int] | None = None,
    stream_slot: str | None = None,
) -> str:
    """RECOVERY.md for ``manifest`` (listing the objects stored so far). ``sizes``: tables'
    bytes on disk, where known; ``stream_slot``: the change stream's slot when continuous
    archiving covers this backup."""
    names = {o.name for o in manifest.objects}
    dump_commands = DUMP_COMMANDS.get(manifest.dump_format)
    bundle = manifest.bundle
    recipients = [str(r) for r in manifest.encryption.get("recipients", [])]
    bundle_recipients = list(bundle.recipients) if bundle else []
    bundle_identity = (
        IDENTITY
        if not bundle_recipients or set(bundle_recipients) & set(recipients)
        else BUNDLE_IDENTITY
    )
    objects = [o for o in manifest.objects if o.encrypted]
    values = {
        "m": manifest,
        "objects": objects,
        "files": {o.name: _file(o) for o in objects},
        "total_size": sum(o.size for o in objects),
        "tables": _tables(manifest, sizes or {}),
        "sizes_known": bool(sizes),
        "recipients": recipients,
        "bundle_recipients": bundle_recipients,
        "bundle_identity": bundle_identity,
        "location": location,
        "copy": copy_command(location, manifest.id),
        "globals_stored": GLOBALS_OBJECT in names,
        "globals_status": (manifest.globals or {}).get("status", "not recorded"),
        "globals_commands": (
            [
                f'{_decrypt(manifest.object(GLOBALS_OBJECT))} > "{WORK}/globals.sql"',
                f'psql "{TARGET}" -f "{WORK}/globals.sql"',
            ]
            if GLOBALS_OBJECT in names
            else []
        ),
        "dump_commands": dump_commands(manifest) if dump_commands else None,
        "bundle_commands": (
            [
                f'mkdir -m 700 "{WORK}/secrets"',
                f"{_decrypt(manifest.object(BUNDLE_OBJECT), bundle_identity)} "
                f'| tar -x -C "{WORK}/secrets"',
            ]
            if bundle is not None and BUNDLE_OBJECT in names
            else []
        ),
        "supabase": manifest.platform == "supabase" or "storage.objects" in manifest.tables,
        "stream_slot": stream_slot if manifest.stream is not None else None,
        "IDENTITY": IDENTITY,
        "BUNDLE_IDENTITY": BUNDLE_IDENTITY,
        "WORK": WORK,
        "TARGET": TARGET,
    }
    return environment().get_template(TEMPLATE).render(**values)


def store_recovery_doc(ctx: Context, item: ItemWriter, manifest: BackupManifest) -> BackupManifest:
    """Render RECOVERY.md from ``manifest`` (its objects: everything stored so far), store it
    unencrypted as object ``recovery``, and return the manifest listing it too: to be
    committed next, so the seal covers its size and SHA-256."""
    sizes: dict[str, int] = {}
    try:
        sizes = table_sizes(ctx.database(), list(manifest.tables))
    except DrtoolError as exc:
        log.warning("backup %s: RECOVERY.md without table sizes: %s", manifest.id, exc.message)
    cfg = ctx.config
    location = Location(ctx.storage.description, cfg.storage.endpoint_url)
    text = render_recovery(
        manifest,
        location,
        sizes=sizes,
        stream_slot=cfg.stream.slot if cfg.stream.enabled else None,
    )
    item.store_plain(RECOVERY_OBJECT, RECOVERY_FILE, text.encode("utf-8"))
    # The manifest's order of objects stays (a parallel backup lists them as a restore uses
    # them); RECOVERY.md comes last.
    added = [e for e in item.entries() if e.name == RECOVERY_OBJECT]
    return manifest.model_copy(update={"objects": [*manifest.objects, *added]})
