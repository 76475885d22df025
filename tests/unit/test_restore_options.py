"""Restore options checked before anything is read: --role-map and its combinations."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from drtool.errors import EXIT_USAGE, UsageError
from drtool.services.restore.request import RestoreRequest, check_request, parse_role_map


def test_role_map_pairs_parse_and_bad_ones_are_usage_errors() -> None:
    assert parse_role_map(("supabase_admin=postgres", "Odd Role=x")) == {
        "supabase_admin": "postgres",
        "Odd Role": "x",
    }
    assert parse_role_map(("a=b", "a=b")) == {"a": "b"}
    for bad in (("a",), ("=b",), ("a=",), ("a=b", "a=c")):
        with pytest.raises(UsageError) as err:
            parse_role_map(bad)
        assert err.value.exit_code == EXIT_USAGE and "--role-map" in err.value.message


def test_ownership_options_apply_to_database_targets_only(tmp_path: Path) -> None:
    base = RestoreRequest(ref="latest", to_file=tmp_path / "dump")
    for req in (
        replace(base, role_map=("a=b",)),
        replace(base, no_privileges=True),
        replace(base, no_owner=True),
    ):
        with pytest.raises(UsageError) as err:
            check_request(req)
        assert "apply to --to only" in err.value.message
    bad = RestoreRequest(ref="latest", to_dsn="postgresql://x@127.0.0.1/db", role_map=("x",))
    with pytest.raises(UsageError):
        check_request(bad)
