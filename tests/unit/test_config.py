"""Configuration per SPEC: every problem listed with its key path, env overrides, *_FILE secrets."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from drtool.config import load_config, parse_duration
from drtool.errors import EXIT_USAGE, ConfigError, UsageError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "drtool.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", 90),
        ("30m", 1800),
        ("24h", 86400),
        ("730d", 730 * 86400),
        ("2w", 14 * 86400),
        ("0s", 0),
    ],
)
def test_durations_parse_number_and_unit(text: str, expected: int) -> None:
    assert parse_duration(text) == timedelta(seconds=expected)


@pytest.mark.parametrize("bad", ["24", "h", "1y", "-1h", "", "1.5.2h", 24])
def test_bad_durations_are_rejected(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_every_problem_is_listed_with_its_dotted_key_path(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
database: {dsn: "postgresql://u@h/db", colour: blue}
storage: {url: "ftp://nope"}
objectives: {rpo: soon}
compression: {level: 99}
unknown_section: {}
""",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    paths = sorted(p for p, _ in info.value.problems)
    assert paths == sorted(
        ["database.colour", "storage.url", "compression.level", "objectives.rpo", "unknown_section"]
    )
    assert info.value.exit_code == EXIT_USAGE
    text = str(info.value)
    assert "database.colour: unknown key" in text
    assert "objectives.rpo" in text and "24h" in text


def test_env_overrides_take_precedence_over_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "storage: {url: 'file:///a'}\nobjectives: {rpo: 24h}\n")
    cfg = load_config(
        path,
        environ={
            "DRTOOL_STORAGE__URL": "s3://bucket-x/prefix",
            "DRTOOL_OBJECTIVES__RPO": "6h",
            "DRTOOL_ENCRYPTION__RECIPIENTS": "[age1aaaa, age1bbbb]",
            "DRTOOL_STORAGE__OBJECT_LOCK__DAYS": "10",
        },
    )
    assert cfg.storage.url == "s3://bucket-x/prefix"
    assert cfg.objectives.rpo == timedelta(hours=6)
    assert cfg.encryption.recipients == ["age1aaaa", "age1bbbb"]
    assert cfg.storage.object_lock is not None and cfg.storage.object_lock.days == 10


def test_unknown_env_override_is_an_error_naming_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, "{}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={"DRTOOL_STORAGE__URLL": "file:///x"})
    assert ("storage.urll", "unknown key") in info.value.problems


def test_secret_from_file_env(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("hunter2-secret\n", encoding="utf-8")
    path = write(tmp_path, "{}\n")
    cfg = load_config(path, environ={"DRTOOL_DATABASE__PASSWORD_FILE": str(secret)})
    assert cfg.database.password is not None
    assert cfg.database.password.get_secret_value() == "hunter2-secret"
    assert "hunter2" not in repr(cfg)
    assert cfg.secrets() == ["hunter2-secret"]


def test_unreadable_secret_file_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "{}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={"DRTOOL_ENCRYPTION__KEY_FILE": str(tmp_path / "missing")})
    assert info.value.problems[0][0] == "encryption.key"


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "storage:\n  url: [unclosed\n")
    with pytest.raises(ConfigError, match="line"):
        load_config(path, environ={})


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no configuration file"):
        load_config(tmp_path / "absent.yaml", environ={})


def test_env_only_configuration_without_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_config(None, environ={"DRTOOL_STORAGE__URL": "file:///srv/drtool"})
    assert cfg.storage.url == "file:///srv/drtool"


def test_relative_paths_resolve_against_the_config_directory(tmp_path: Path) -> None:
    path = write(tmp_path, "encryption: {identity_file: keys/id.txt}\n")
    cfg = load_config(path, environ={})
    assert cfg.encryption.identity_file is not None
    assert cfg.resolve(cfg.encryption.identity_file) == tmp_path / "keys" / "id.txt"


def test_spec_example_configuration_is_valid(tmp_path: Path) -> None:
    """The configuration block of SPEC.md, as written there, loads."""
    spec = Path(__file__).resolve().parents[3] / "shared" / "SPEC.md"
    if not spec.exists():
        pytest.skip("shared/SPEC.md not beside the checkout")
    text = spec.read_text(encoding="utf-8")
    block = text.split("```yaml", 1)[1].split("```", 1)[0].replace("age1...", "age1qqqq")
    cfg = load_config(write(tmp_path, block), environ={})
    assert cfg.stream.max_slot_lag == 5 * 1000**3
    assert cfg.stream.base_backup_every == timedelta(hours=24)
    assert cfg.stream.flush_interval == timedelta(seconds=60)
    assert cfg.objectives.replica_lag == timedelta(hours=26)
    assert [r.name for r in cfg.storage.replicas] == ["dr-region"]
    assert cfg.archival.policies[1].where == {"status": ["completed"]}
    assert cfg.retention.abandoned_after == timedelta(hours=6)


def test_exports_user_columns_map_tables_to_their_user_column(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "exports: {user_columns: {public.profiles: id, storage.objects: owner_id, notes: owner}}\n",
    )
    cfg = load_config(path, environ={})
    assert cfg.exports.user_columns == {
        "public.profiles": "id",
        "storage.objects": "owner_id",
        "notes": "owner",
    }
    assert load_config(write(tmp_path, "exports: {}\n"), environ={}).exports.user_columns == {}


@pytest.mark.parametrize(
    ("block", "needle"),
    [
        ("user_columns: [public.profiles]", "dictionary"),
        ("user_columns: {.profiles: id}", "schema.table"),
        ("user_columns: {public.: id}", "schema.table"),
        ("user_columns: {public.profiles: ''}", "column"),
        ("user_columns: {auth.users: id}", "exports.users_table"),
        (
            "{exclude_tables: [public.profiles], user_columns: {profiles: id}}",
            "exports.exclude_tables",
        ),
    ],
)
def test_bad_exports_user_columns_are_named_with_their_key_path(
    tmp_path: Path, block: str, needle: str
) -> None:
    text = f"exports: {block}\n" if block.startswith("{") else f"exports: {{{block}}}\n"
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), environ={})
    assert info.value.exit_code == EXIT_USAGE
    [(key, message)] = info.value.problems
    assert key == "exports.user_columns"
    assert needle in message


def test_exports_user_columns_from_the_environment(tmp_path: Path) -> None:
    cfg = load_config(
        write(tmp_path, "exports: {}\n"),
        environ={"DRTOOL_EXPORTS__USER_COLUMNS": "{storage.objects: owner_id}"},
    )
    assert cfg.exports.user_columns == {"storage.objects": "owner_id"}


def test_a_replica_takes_the_primary_storage_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "storage:\n  url: s3://primary/prod\n  replicas:\n"
        "    - {name: dr, url: s3://dr-bucket/prod, region: us-east-1, endpoint_url: "
        "'http://127.0.0.1:9000', object_lock: {mode: compliance, days: 40}, part_size: 8MiB}\n",
    )
    cfg = load_config(path, environ={"DRTOOL_STORAGE__REPLICAS__0__SECRET_ACCESS_KEY": "s3cr3t"})
    replica = cfg.storage.replica("dr")
    assert replica.object_lock is not None and replica.object_lock.days == 40
    assert replica.part_size == 8 * 1024**2
    assert replica.secret_access_key is not None
    assert "s3cr3t" in cfg.secrets()


def test_replica_problems_are_listed_with_their_key_paths(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "storage:\n  replicas:\n    - {name: Bad Name, url: s3://bucket-b/x}\n"
        "    - {name: dr, url: ftp://nope, colour: red}\n",
    )
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    assert {p for p, _ in err.value.problems} == {
        "storage.replicas.0.name",
        "storage.replicas.1.url",
        "storage.replicas.1.colour",
    }


def test_replica_names_must_be_unique(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "storage:\n  replicas:\n    - {name: dr, url: s3://bucket-a/x}\n    - {name: dr, url: s3://bucket-b/x}\n",
    )
    with pytest.raises(ConfigError, match="dr appear"):
        load_config(path, environ={})


def test_an_unknown_replica_name_is_a_usage_error_naming_the_configured_ones(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "storage:\n  replicas:\n    - {name: dr, url: s3://bucket-a/x}\n")
    cfg = load_config(path, environ={})
    with pytest.raises(UsageError, match=r"no replica named 'eu'.*\(dr\)") as err:
        cfg.storage.replica("eu")
    assert err.value.exit_code == EXIT_USAGE


def test_replicas_can_be_given_entirely_by_environment(tmp_path: Path) -> None:
    """``DRTOOL_STORAGE__REPLICAS__<N>__KEY`` indexes the list (N = its length appends)."""
    path = write(tmp_path, "storage: {url: 'file:///srv/drtool'}\n")
    env = {
        "DRTOOL_STORAGE__REPLICAS__0__NAME": "dr",
        "DRTOOL_STORAGE__REPLICAS__0__URL": "s3://dr-bucket/prod",
        "DRTOOL_STORAGE__REPLICAS__0__REGION": "us-east-1",
    }
    cfg = load_config(path, environ=env)
    assert cfg.storage.replica("dr").region == "us-east-1"
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={**env, "DRTOOL_STORAGE__REPLICAS__5__NAME": "x"})
    assert [p for p, _ in err.value.problems] == ["storage.replicas.5.name"]
