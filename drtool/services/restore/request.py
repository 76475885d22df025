"""A restore request as the service receives it (``restore ID|latest (--to DSN | --to-file
PATH) ...``), and the checks of its options that need nothing read yet (exit 2)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from drtool.errors import UsageError
from drtool.pg.conn import Target, parse_target
from drtool.pg.restore.run import Selection


@dataclass(frozen=True)
class RestoreRequest:
    """``restore ID|latest (--to DSN | --to-file PATH) ...`` as the service receives it."""

    ref: str
    to_dsn: str | None = None
    to_file: Path | None = None
    jobs: int = 1
    tables: tuple[str, ...] = ()
    schema_only: bool = False
    data_only: bool = False
    force: bool = False
    no_owner: bool = False
    no_privileges: bool = False
    role_map: tuple[str, ...] = ()  # "FROM=TO"
    dry_run: bool = False
    # drtool's own throwaway cluster (a drill): every role the backup needs is created,
    # superuser ones included, NOLOGIN, bare where the globals lack them.
    scratch_owned: bool = False
    # ``--until TIME``: point-in-time recovery from a base backup and the change stream.
    until: datetime | None = None

    def selection(self) -> Selection:
        """The part of the dump to restore (``--table``, ``--schema-only``, ``--data-only``)."""
        pairs = tuple(dict.fromkeys(parse_table(t) for t in self.tables))
        return Selection(pairs, self.schema_only, self.data_only)


def _name_parts(text: str) -> list[str] | None:
    """Split ``text`` at the dots outside double quotes; a quoted part is taken SQL-style
    (``""`` for a quote), an unquoted one as written (spaces kept, case kept). None when a
    quote is not closed, a part is empty or a quoted part runs into other text."""
    parts: list[str] = []
    i, n = 0, len(text)
    while True:
        if i < n and text[i] == '"':
            name, i = "", i + 1
            while True:
                close = text.find('"', i)
                if close < 0:
                    return None
                name += text[i:close]
                if text.startswith('""', close):
                    name, i = name + '"', close + 2
                    continue
                i = close + 1
                break
            if i < n and text[i] != ".":
                return None
        else:
            end = text.find(".", i)
            end = n if end < 0 else end
            name = text[i:end]
            if '"' in name or not name.strip():
                return None
            i = end
        if not name:
            return None
        parts.append(name)
        if i >= n:
            return parts
        i += 1  # the dot
        if i >= n:
            return None


def parse_table(text: str) -> tuple[str, str]:
    """``schema.table`` or ``table`` (schema ``public``); either part may be double-quoted
    SQL-style (``"my schema"."my.table"``, ``""`` for a quote), which a name holding a dot
    needs; unquoted names are taken as written, spaces and case included."""
    parts = _name_parts(text) if "\x00" not in text else None
    if parts is None or len(parts) > 2:
        raise UsageError(
            f"--table {text!r}: expected schema.table or table",
            hint='double-quote a name that holds a dot or a quote: "my schema"."my.table"',
        )
    if len(parts) == 1:
        return "public", parts[0]
    return parts[0], parts[1]


def check_request(req: RestoreRequest) -> Selection:
    """Option combinations; nothing has been read yet (exit 2)."""
    if (req.to_dsn is None) == (req.to_file is None):
        raise UsageError("restore needs exactly one of --to DSN or --to-file PATH")
    if req.schema_only and req.data_only:
        raise UsageError("--schema-only and --data-only exclude each other")
    if req.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if req.to_file is not None:
        extra = [
            flag
            for flag, on in (
                ("--table", bool(req.tables)),
                ("--schema-only", req.schema_only),
                ("--data-only", req.data_only),
                ("--force", req.force),
                ("--no-owner", req.no_owner),
                ("--no-privileges", req.no_privileges),
                ("--role-map", bool(req.role_map)),
                ("--jobs", req.jobs != 1),
            )
            if on
        ]
        if extra:
            raise UsageError(
                f"--to-file writes the whole dump; {', '.join(extra)} apply to --to only",
                hint="pass those options to pg_restore when you restore the file",
            )
        if req.to_file.exists():
            raise UsageError(f"{req.to_file} already exists; refusing to overwrite it")
        if not req.to_file.parent.is_dir():
            raise UsageError(f"{req.to_file.parent} is not a directory")
    parse_role_map(req.role_map)
    return req.selection()


def parse_role_map(items: tuple[str, ...]) -> dict[str, str]:
    """``--role-map FROM=TO`` (repeatable) as a mapping; malformed or repeated FROM: exit 2."""
    mapping: dict[str, str] = {}
    for item in items:
        source, eq, dest = item.partition("=")
        if not eq or not source or not dest or "\x00" in item:
            raise UsageError(f"--role-map {item!r}: expected FROM=TO (two role names)")
        if source in mapping and mapping[source] != dest:
            raise UsageError(f"--role-map maps {source} twice")
        mapping[source] = dest
    return mapping


def parse_to(dsn: str) -> Target:
    try:
        return parse_target(dsn)
    except UsageError:
        raise UsageError("--to is not a valid PostgreSQL connection string") from None
