"""Configuration per SPEC: YAML validated by pydantic, ``DRTOOL_<SECTION>__<KEY>`` overrides,
``*_FILE`` secrets, durations like ``24h``; every problem reported with its dotted key path."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from drtool.errors import ConfigError, UsageError

ENV_PREFIX = "DRTOOL_"
CONFIG_ENV = "DRTOOL_CONFIG"
DEFAULT_CONFIG_NAME = "drtool.yaml"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_DURATION_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"^\s*(\d+)\s*(B|KB|MB|GB|KiB|MiB|GiB)?\s*$", re.I)
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}


def parse_duration(value: Any) -> timedelta:
    """``90s``, ``30m``, ``24h``, ``730d``, ``2w`` (a number and a unit) into a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return timedelta(seconds=float(match.group(1)) * _DURATION_UNITS_S[match.group(2)])
    raise ValueError(
        f"invalid duration {value!r}: expected a number and a unit s, m, h, d or w (e.g. 24h)"
    )


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def parse_size(value: Any) -> int:
    """A byte size: an integer or ``16MiB`` / ``64MB``."""
    if isinstance(value, bool):
        raise ValueError("invalid size: expected bytes or e.g. 16MiB")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match:
            return int(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()]
    raise ValueError(f"invalid size {value!r}: expected bytes or e.g. 16MiB")


Duration = Annotated[
    timedelta, BeforeValidator(parse_duration), PlainSerializer(format_duration, return_type=str)
]
Size = Annotated[int, BeforeValidator(parse_size)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class DatabaseConfig(Section):
    dsn: str = "postgresql:///postgres"
    password: SecretStr | None = None
    lock_wait_timeout: Duration = timedelta(seconds=30)

    @field_validator("dsn")
    @classmethod
    def _dsn_scheme(cls, value: str) -> str:
        if not re.match(r"^(postgres|postgresql)://", value) and "=" not in value:
            raise ValueError("expected a postgresql:// URL or a libpq key=value string")
        return value


class ObjectLockConfig(Section):
    mode: Literal["governance", "compliance"] = "governance"
    days: int = Field(default=35, ge=1)


class StorageLocation(Section):
    """Where and how to reach one storage: the primary (``storage``) or a replica; a replica
    takes every key the primary does (SPEC "Replication")."""

    url: str = "file://./drtool-data"
    endpoint_url: str | None = None
    region: str | None = None
    # Credentials: optional; boto3's default chain (env, profile, instance role) otherwise.
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    object_lock: ObjectLockConfig | None = None
    # S3 multipart: every non-final part is exactly part_size (R2 requires equal parts).
    part_size: Size = Field(default=16 * 1024**2, ge=5 * 1024**2, le=5 * 1024**3)
    max_parts: int = Field(default=10000, ge=1, le=10000)
    upload_concurrency: int = Field(default=2, ge=1, le=16)
    download_part_size: Size = Field(default=16 * 1024**2, ge=64 * 1024)
    download_concurrency: int = Field(default=1, ge=1, le=16)
    retry_mode: Literal["standard", "adaptive"] = "standard"
    max_attempts: int = Field(default=5, ge=1, le=20)
    # boto3 >= 1.36 sends CRC checksums by default, which several S3-compatible stores reject.
    request_checksum_calculation: Literal["when_supported", "when_required"] = "when_required"
    response_checksum_validation: Literal["when_supported", "when_required"] = "when_required"
    addressing_style: Literal["auto", "path", "virtual"] = "auto"

    @field_validator("url")
    @classmethod
    def _url_scheme(cls, value: str) -> str:
        if not (
            value.startswith("file://")
            or re.match(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", value)
        ):
            raise ValueError("expected file:///path or s3://bucket[/prefix]")
        return value


# A replica's name: used in `--from NAME`, `--to NAME`, metrics labels and run records.
REPLICA_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class ReplicaConfig(StorageLocation):
    name: str
    url: str  # required for a replica (the primary has the embedded default)

    @field_validator("name")
    @classmethod
    def _name_shape(cls, value: str) -> str:
        if not REPLICA_NAME.match(value):
            raise ValueError(
                f"{value!r}: a replica name is lower-case letters, digits, '-' and '_' "
                "(at most 63, starting with a letter or digit)"
            )
        return value


class StorageConfig(StorageLocation):
    replicas: list[ReplicaConfig] = Field(default_factory=list)

    @field_validator("replicas")
    @classmethod
    def _unique_names(cls, value: list[ReplicaConfig]) -> list[ReplicaConfig]:
        names = [r.name for r in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"replica names must be unique: {', '.join(twice)} appear twice")
        return value

    def replica(self, name: str) -> ReplicaConfig:
        """The replica called ``name``; UsageError naming the configured ones otherwise."""
        for replica in self.replicas:
            if replica.name == name:
                return replica
        known = ", ".join(r.name for r in self.replicas) or "none is configured"
        raise UsageError(
            f"no replica named {name!r} in storage.replicas ({known})",
            hint="add it under storage.replicas, or name a configured one",
        )


def _age_recipients(value: list[str]) -> list[str]:
    for item in value:
        if not item.startswith("age1"):
            raise ValueError(f"recipient {item[:12]!r}... is not an age X25519 recipient (age1...)")
    return value


class EncryptionConfig(Section):
    recipients: list[str] = Field(default_factory=list)
    identity_file: Path | None = None
    key: SecretStr | None = None

    @field_validator("recipients")
    @classmethod
    def _recipients_shape(cls, value: list[str]) -> list[str]:
        return _age_recipients(value)


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class BundleConfig(Section):
    """Configuration & secrets stored with every backup (docs/bundle.md)."""

    files: list[Path] = Field(default_factory=list)
    env: list[str] = Field(default_factory=list)
    recipients: list[str] = Field(default_factory=list)  # empty: encryption.recipients

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _ENV_NAME.match(name):
                raise ValueError(f"{name!r} is not an environment variable name")
        if len(set(value)) != len(value):
            raise ValueError("a variable is listed twice")
        return value

    @field_validator("recipients")
    @classmethod
    def _bundle_recipients(cls, value: list[str]) -> list[str]:
        return _age_recipients(value)

    @property
    def enabled(self) -> bool:
        return bool(self.files or self.env)


class BackupConfig(Section):
    exclude_schemas: list[str] = Field(default_factory=list)
    exclude_table_data: list[str] = Field(default_factory=list)
    globals: bool = True
    # 1: one custom-format pg_dump stream; N > 1: the parallel format (N COPY streams over
    # one exported snapshot; docs/format.md).
    jobs: int = Field(default=1, ge=1, le=64)
    # The parallel format cuts a table larger than this into ctid ranges of about this size.
    split_table_size: Size = Field(default=256 * 1024**2, ge=8192)


class CompressionConfig(Section):
    algorithm: Literal["zstd"] = "zstd"
    level: int = Field(default=2, ge=1, le=19)
    threads: int = Field(default=0, ge=0, le=8)


class ObjectivesConfig(Section):
    rpo: Duration = timedelta(hours=24)
    rto: Duration = timedelta(hours=1)
    drill_max_age: Duration | None = None
    replica_lag: Duration | None = None  # a replica further behind the primary: breach


class RetentionConfig(Section):
    keep_last: int = Field(default=3, ge=0)
    keep_daily: int = Field(default=7, ge=0)
    keep_weekly: int = Field(default=4, ge=0)
    keep_monthly: int = Field(default=12, ge=0)
    keep_yearly: int = Field(default=2, ge=0)
    exports_max_age: Duration = timedelta(days=30)
    abandoned_after: Duration = timedelta(hours=6)


def _table_key(name: str) -> str:
    """``schema.table`` (or ``table``: schema public) as discovery reads it."""
    schema, dot, table = name.partition(".")
    return f"{schema}.{table}" if dot else f"public.{name}"


class ExportsConfig(Section):
    user_id_column: str = Field(default="user_id", min_length=1)
    users_table: str = "auth.users"
    exclude_tables: list[str] = Field(default_factory=list)
    redact_columns: list[str] = Field(default_factory=list)
    # Tables whose user column is not user_id_column (uuid or text), e.g. Supabase's
    # {public.profiles: id, storage.objects: owner_id}.
    user_columns: dict[str, str] = Field(default_factory=dict)

    @field_validator("user_columns")
    @classmethod
    def _user_columns(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        users = _table_key(str(info.data.get("users_table", "")))
        excluded = {_table_key(t) for t in info.data.get("exclude_tables") or []}
        for table, column in value.items():
            schema, dot, name = table.partition(".")
            if not schema or (dot and not name):
                raise ValueError(f"{table!r}: expected schema.table (or table, in public)")
            if not column.strip():
                raise ValueError(f"{table}: expected a column name")
            if _table_key(table) == users:
                raise ValueError(
                    f"{table} is exports.users_table (its primary key is the user id); remove it"
                )
            if _table_key(table) in excluded:
                raise ValueError(
                    f"{table} is also in exports.exclude_tables: a table is either exported "
                    "or excluded"
                )
        return value


class ArchivalPolicy(Section):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    table: str = Field(pattern=r"^[^.]+(\.[^.]+)?$")  # table, or schema.table (no dots in names)
    time_column: str = Field(min_length=1)
    older_than: Duration
    where: dict[str, list[str | int | bool]] = Field(default_factory=dict)
    action: Literal["archive", "purge"] = "archive"

    @field_validator("where")
    @classmethod
    def _where_values(
        cls, value: dict[str, list[str | int | bool]]
    ) -> dict[str, list[str | int | bool]]:
        for column, values in value.items():
            if not values:
                raise ValueError(f"where.{column}: list at least one value")
        return value


class ArchivalConfig(Section):
    policies: list[ArchivalPolicy] = Field(default_factory=list)
    batch_size: int = Field(default=5000, ge=1)
    lock_timeout: Duration = timedelta(seconds=2)
    statement_timeout: Duration = timedelta(seconds=30)

    @field_validator("policies")
    @classmethod
    def _unique_names(cls, value: list[ArchivalPolicy]) -> list[ArchivalPolicy]:
        names = [p.name for p in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"policy names must be unique: {', '.join(dupes)} repeated")
        return value


class RehearsalCheck(Section):
    name: str
    sql: str


class RehearsalConfig(Section):
    scratch: str = "ephemeral"
    checks: list[RehearsalCheck] = Field(default_factory=list)


class RestoreConfig(Section):
    # Where `restore --jobs N` (and --data-only --force) decrypts the dump before pg_restore
    # reads it; None = the system temp directory ($TMPDIR, else /tmp).
    spool_dir: Path | None = None


NotifyEvent = Literal["failure", "breach", "drill", "success"]


def _default_events() -> list[NotifyEvent]:
    return ["failure", "breach", "drill"]


class NotificationsConfig(Section):
    webhook_url: SecretStr | None = None
    on: list[NotifyEvent] = Field(default_factory=_default_events)

    @field_validator("webhook_url")
    @classmethod
    def _webhook_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        # The URL is a secret (Slack's are): the message must not echo it.
        if value is not None and not value.get_secret_value().lower().startswith(
            ("http://", "https://")
        ):
            raise ValueError("expected an http:// or https:// URL")
        return value


_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class StreamConfig(Section):
    """Continuous archiving (``stream run``): a logical replication slot with ``pgoutput``."""

    enabled: bool = False
    slot: str = "drtool"
    publication: str = "drtool"
    # None: every table the connected role may publish; else only these (schema.table).
    tables: list[str] | None = None
    flush_interval: Duration = timedelta(seconds=60)
    max_slot_lag: Size = 5 * 1000**3
    base_backup_every: Duration = timedelta(hours=24)
    # A segment holds at most about this many changes (whole transactions; a bigger one is
    # streamed into one segment of its own).
    segment_max_changes: int = Field(default=200_000, ge=100)

    @field_validator("slot", "publication")
    @classmethod
    def _identifier(cls, value: str) -> str:
        # Slot names allow only lower-case letters, digits and underscores; the publication
        # follows the same rule so both are safe as names of storage keys too.
        if not _IDENT.match(value):
            raise ValueError(
                "expected 1-63 lower-case letters, digits or underscores, not starting with a digit"
            )
        return value

    @field_validator("tables")
    @classmethod
    def _qualified(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            bad = [t for t in value if t.count(".") != 1 or not all(t.split("."))]
            if bad:
                raise ValueError(f"expected schema.table names: {', '.join(bad)}")
        return value

    @field_validator("flush_interval")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value.total_seconds() < 1:
            raise ValueError("must be at least 1s")
        return value


class MetricsConfig(Section):
    listen: str = "0.0.0.0:9187"
    textfile: Path | None = None


class ScheduleConfig(Section):
    dir: Path = Path("schedules")


class Config(Section):
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    encryption: EncryptionConfig = Field(default_factory=EncryptionConfig)
    backup: BackupConfig = Field(default_factory=BackupConfig)
    compression: CompressionConfig = Field(default_factory=CompressionConfig)
    objectives: ObjectivesConfig = Field(default_factory=ObjectivesConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    exports: ExportsConfig = Field(default_factory=ExportsConfig)
    archival: ArchivalConfig = Field(default_factory=ArchivalConfig)
    rehearsal: RehearsalConfig = Field(default_factory=RehearsalConfig)
    restore: RestoreConfig = Field(default_factory=RestoreConfig)
    notifications: NotificationsConfig = Field(default_factory=NotificationsConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    bundle: BundleConfig = Field(default_factory=BundleConfig)
    stream: StreamConfig = Field(default_factory=StreamConfig)
    # Where the file was read from: relative paths resolve against its directory.
    base_dir: Path = Field(default=Path("."), exclude=True)

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else (self.base_dir / path)

    def secrets(self) -> list[str]:
        """Every secret value in this config, for the log redactor."""
        values = [
            self.database.password,
            self.storage.access_key_id,
            self.storage.secret_access_key,
            *(r.access_key_id for r in self.storage.replicas),
            *(r.secret_access_key for r in self.storage.replicas),
            self.encryption.key,
            self.notifications.webhook_url,
        ]
        return [v.get_secret_value() for v in values if v is not None]


class _Yaml12Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false. Under YAML 1.1 the SPEC's ``on:`` key would be True."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Yaml12Loader)  # noqa: S506 - a SafeLoader subclass


def _set_path(tree: dict[str, Any], path: list[str], value: Any) -> None:
    """Set ``value`` at ``path``; a number indexes a list (``STORAGE__REPLICAS__0__URL``), one
    past its end appends."""
    node: Any = tree
    for depth, part in enumerate(path):
        last = depth == len(path) - 1
        if isinstance(node, list) and part.isdigit() and int(part) <= len(node):
            index = int(part)
            if index == len(node):
                node.append({})
            if last:
                node[index] = value
                return
            if not isinstance(node[index], dict | list):
                node[index] = {}
            node = node[index]
            continue
        if not isinstance(node, dict):
            raise ValueError(f"{part!r} is not an index of that list (0 to {len(node)})")
        if last:
            node[part] = value
            return
        child = node.get(part)
        if not isinstance(child, dict | list):
            child = [] if path[depth + 1].isdigit() else {}
            node[part] = child
        node = child


def _env_value(raw: str) -> Any:
    """Structured values (lists, maps) are YAML; everything else stays a raw string for pydantic."""
    stripped = raw.strip()
    if stripped.startswith(("[", "{")):
        return load_yaml(stripped)
    return raw


def _env_overrides(
    environ: Mapping[str, str], problems: list[tuple[str, str]]
) -> list[tuple[list[str], Any, str]]:
    overrides: list[tuple[list[str], Any, str]] = []
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        is_file = name.endswith("_FILE")
        base = name[: -len("_FILE")] if is_file else name
        path = [p.lower() for p in base[len(ENV_PREFIX) :].split("__")]
        dotted = ".".join(path)
        if is_file:
            try:
                value: Any = Path(environ[name]).read_text(encoding="utf-8").strip()
            except OSError as exc:
                problems.append((dotted, f"cannot read {name}: {exc.strerror}"))
                continue
        else:
            try:
                value = _env_value(environ[name])
            except yaml.YAMLError:
                problems.append((dotted, f"{name} is not valid YAML"))
                continue
        overrides.append((path, value, name))
    return overrides


def _dotted(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc)


def load_config(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read YAML at ``path`` (or ``$DRTOOL_CONFIG``, ``./drtool.yaml``), apply env overrides,
    validate. Raises ConfigError listing every problem; reading config never changes anything."""
    env = os.environ if environ is None else environ
    problems: list[tuple[str, str]] = []
    explicit = path is not None or bool(env.get(CONFIG_ENV))
    cfg_path = path or Path(env.get(CONFIG_ENV) or DEFAULT_CONFIG_NAME)
    tree: dict[str, Any] = {}
    overrides = _env_overrides(env, problems)
    if cfg_path.exists():
        try:
            loaded = load_yaml(cfg_path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise ConfigError([("<file>", f"{cfg_path} is not valid YAML{where}")]) from exc
        except OSError as exc:
            raise ConfigError([("<file>", f"cannot read {cfg_path}: {exc.strerror}")]) from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError([("<file>", f"{cfg_path} must be a mapping of sections")])
        tree = loaded
    elif explicit or not overrides:
        raise ConfigError(
            [("<file>", f"no configuration file at {cfg_path}")],
        )
    for key_path, value, name in overrides:
        try:
            _set_path(tree, key_path, value)
        except ValueError as exc:
            problems.append((".".join(key_path), f"{name}: {exc}"))
    if "base_dir" in tree:
        problems.append(("base_dir", "unknown key"))
        tree.pop("base_dir")
    tree["base_dir"] = cfg_path.resolve().parent
    try:
        config = Config.model_validate(tree)
    except ValidationError as exc:
        for err in exc.errors():
            loc = _dotted(err["loc"])
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append((loc, msg.removeprefix("Value error, ")))
        raise ConfigError(problems) from None
    if problems:
        raise ConfigError(problems)
    return config
