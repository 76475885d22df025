"""The runbooks run: every command block marked ``<!-- runbook: run -->`` (runbooks/README.md) in
runbooks/*.md is executed, in the order written, with bash (``set -euo pipefail``) against a
real stack: the session's PostgreSQL with the OmniCRM sample (a logical-decoding project for
pitr.md), file storage or moto S3 (storage-setup.md), ``drtool`` on PATH as this repository's
CLI with ``DRTOOL_CONFIG`` pointing at the test configuration. The placeholders the runbooks
document (``<id>``, ``$TARGET_DSN``, ``/etc/drtool/drtool.yaml``, ...) are replaced by real
values from the stack through one explicit table, PLACEHOLDERS; a runnable block holding a
placeholder-looking token that is not in the table fails the test, and so does a command that
fails or whose exit code differs from the marker's ``expect=N``."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from drtool.config import StorageConfig
from tests.fixtures.cli import Setup, make_setup
from tests.fixtures.pg import TEST_PASSWORD
from tests.fixtures.procs import stop
from tests.fixtures.s3 import TEST_PART_SIZE_BYTES, MotoServer
from tests.fixtures.stream import StreamProject, fresh_target
from tests.fixtures.supabase import connect_app
from tests.integration.test_archive import POLICIES

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = ROOT / "runbooks"
BLOCK_TIMEOUT_S = 180

MARKER = re.compile(r"^(\s*)<!-- runbook: run(?: expect=(\d+))? -->\s*$")
FENCE = re.compile(r"^(\s*)```(\w*)\s*$")

# The placeholders the runbooks use in runnable blocks, as written there, and the name of the
# stack value each one stands for (runbooks/README.md lists them for readers). Longer
# placeholders are replaced first, so a DSN ending in `/omnicrm_recovered` is not taken for
# the one ending in `/omnicrm`.
PLACEHOLDERS: dict[str, str] = {
    "/etc/drtool/drtool.yaml": "config",
    "identity.txt": "identity",
    "<id>": "backup_id",
    "20261126T021500.123Z-7f3a": "backup_id",
    "$TARGET_DSN": "target_dsn",
    "postgresql://admin@new-db:5432/omnicrm": "target_dsn",
    "postgresql://admin@dr-db:5432/omnicrm": "dr_target_dsn",
    "$EMPTY_DSN": "empty_dsn",
    "postgresql://postgres@db.<new-ref>.supabase.co:5432/postgres": "supabase_dsn",
    "postgresql://postgres@db.internal/omnicrm_recovered": "target_dsn",
    "postgresql://drill@scratch-db:5432/postgres": "scratch_dsn",
    "postgresql://postgres@db.internal/omnicrm": "prod_dsn",
    "postgresql://admin@db:5432/omnicrm": "prod_dsn",
    "/root/omnicrm-secrets": "secrets_dir",
    "/secure/omnicrm.pgdump": "dump_file",
    "/secure/requests/REQ-1234.zip": "subject_zip",
    "3f1c...-uuid": "user_id",
    "<a user id>": "user_id",
    "20261126T033012.345Z-9a1b": "export_id",
    "2026-12-05T17:03:58Z": "before_accident",
    "2024-01-01": "archive_since",
    "2024-02-01": "archive_until",
    "omnicrm-backups": "bucket",
    "omnicrm-backups-dr": "replica_bucket",
}

# What still looks like a placeholder after the substitution: <angle words>, an ellipsis
# (`3f1c...`), an upper-case word (`ID`, `USER_ID`, `NAME`) or a `$VARIABLE` the block does not
# set itself, example hosts and the example paths of the runbooks.
PLACEHOLDER_LIKE = re.compile(
    r"<[A-Za-z][^<>\n]*>"
    r"|\S*\.\.\.\S*"
    r"|\$\{?[A-Za-z_][A-Za-z0-9_]*"
    r"|(?<![%\w-])[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*\b"
    r"|\b(?:db\.internal|new-db|scratch-db|[\w.-]*supabase\.co)\b"
    r"|(?<![\w/])/(?:etc/drtool|secure|root)/\S*"
)
# Upper-case words and variables that are not placeholders.
NOT_PLACEHOLDERS = {"AES256", "EOF", "$DRTOOL_CONFIG", "$PGPASSWORD"}
ASSIGNED = re.compile(r"(?:^|[\s;(])([A-Za-z_][A-Za-z0-9_]*)=|\bread\s+(?:-r\s+)?([\w ]+)")


@dataclass(frozen=True)
class Block:
    runbook: str
    line: int  # of the opening fence, 1-based
    code: str
    expect: int

    def where(self) -> str:
        return f"runbooks/{self.runbook}:{self.line}"


def runnable_blocks(path: Path) -> list[Block]:
    """The marked blocks of one runbook, in order. A marker must be followed by a ```sh fence."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        marker = MARKER.match(lines[i])
        if not marker:
            i += 1
            continue
        fence = FENCE.match(lines[i + 1]) if i + 1 < len(lines) else None
        if not fence or fence.group(2) != "sh":
            raise AssertionError(
                f"runbooks/{path.name}:{i + 1}: a runbook marker must be followed by a ```sh block"
            )
        indent = len(fence.group(1))
        start = i + 2
        end = start
        while end < len(lines) and not re.match(r"^\s*```\s*$", lines[end]):
            end += 1
        assert end < len(lines), f"runbooks/{path.name}:{i + 2}: unterminated block"
        code = "\n".join(line[indent:] for line in lines[start:end]) + "\n"
        blocks.append(Block(path.name, i + 2, code, int(marker.group(2) or 0)))
        i = end + 1
    return blocks


def _without_comments_and_heredocs(code: str) -> str:
    kept: list[str] = []
    heredoc_end: str | None = None
    for line in code.splitlines():
        if heredoc_end is not None:
            if line.strip() == heredoc_end:
                heredoc_end = None
            continue
        opened = re.search(r"<<-?\s*['\"]?(\w+)['\"]?", line)
        if opened:
            heredoc_end = opened.group(1)
        kept.append(re.sub(r"(?:^|\s)#.*$", "", line))
    return "\n".join(kept)


PLACEHOLDER_RE = re.compile(
    "|".join(re.escape(token) for token in sorted(PLACEHOLDERS, key=len, reverse=True))
)


def placeholders_in(code: str) -> list[str]:
    """The placeholders of PLACEHOLDERS that ``code`` uses."""
    return sorted({match.group(0) for match in PLACEHOLDER_RE.finditer(code)})


def unknown_placeholders(code: str) -> list[str]:
    """Placeholder-looking tokens of ``code`` that PLACEHOLDERS does not cover."""
    rest = PLACEHOLDER_RE.sub(" ", _without_comments_and_heredocs(code))
    assigned = {name for match in ASSIGNED.finditer(rest) for name in match.groups() if name}
    assigned = {word for names in assigned for word in names.split()}
    unknown = []
    for match in PLACEHOLDER_LIKE.finditer(rest):
        token = match.group(0)
        name = token.lstrip("${")
        if token in NOT_PLACEHOLDERS or name in assigned:
            continue
        unknown.append(token)
    return unknown


def substitute(block: Block, values: Mapping[str, str | Callable[[], str]]) -> str:
    """``block``'s code with each placeholder replaced (in one pass) by its stack value; a
    callable value is computed now, after the blocks before it ran."""

    def value(match: re.Match[str]) -> str:
        key = PLACEHOLDERS[match.group(0)]
        if key not in values:
            raise AssertionError(
                f"{block.where()}: placeholder {match.group(0)!r} ({key}) is not provided by "
                "this runbook's test stack"
            )
        found = values[key]
        return found() if callable(found) else found

    return PLACEHOLDER_RE.sub(value, block.code)


@dataclass
class Runner:
    """Runs one runbook's blocks: a bash per block, `drtool` first on PATH."""

    env: dict[str, str]
    cwd: Path

    def run_runbook(
        self,
        name: str,
        values: Mapping[str, str | Callable[[], str]],
        before: Mapping[str, Callable[[], None]] | None = None,
    ) -> list[subprocess.CompletedProcess[str]]:
        """Run the runnable blocks of runbooks/``name`` in order; ``before``: what the operator
        does by hand before the first block whose code contains the key."""
        blocks = runnable_blocks(RUNBOOKS / name)
        assert blocks, f"runbooks/{name} has no runnable block"
        pending = dict(before or {})
        done = []
        for block in blocks:
            for key in [k for k in pending if k in block.code]:
                pending.pop(key)()
            done.append(self.run_block(block, values))
        assert not pending, f"runbooks/{name}: no block for {sorted(pending)}"
        return done

    def run_block(
        self, block: Block, values: Mapping[str, str | Callable[[], str]]
    ) -> subprocess.CompletedProcess[str]:
        unknown = unknown_placeholders(block.code)
        assert not unknown, f"{block.where()}: placeholders not in PLACEHOLDERS: {unknown}"
        code = substitute(block, values)
        done = subprocess.run(
            ["bash", "-c", "set -euo pipefail\n" + code],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT_S,
            check=False,
        )
        assert done.returncode == block.expect, (
            f"{block.where()}: exit {done.returncode}, the runbook documents {block.expect}\n"
            f"--- block as run:\n{code}--- stdout:\n{done.stdout}\n--- stderr:\n{done.stderr}"
        )
        return done


def _script(path: Path, body: str) -> None:
    path.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def make_runner(
    setup: Setup, directory: Path, s3_endpoint: str | None = None, **extra_env: str
) -> Runner:
    """`drtool` on PATH (this repository's CLI, configured by DRTOOL_CONFIG), psql's password in
    PGPASSWORD as the runbooks ask, a working directory of its own; with ``s3_endpoint``,
    `aws` on PATH is the AWS CLI talking to that endpoint (moto) whatever its version."""
    bindir = directory / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    _script(bindir / "drtool", f'exec "{sys.executable}" -m drtool "$@"')
    if s3_endpoint is not None:
        require_tools("aws")
        _script(bindir / "aws", f'exec "{shutil.which("aws")}" --endpoint-url "{s3_endpoint}" "$@"')
    workdir = directory / "work"
    workdir.mkdir(parents=True, exist_ok=True)
    env = {
        **setup.env,
        "PATH": f"{bindir}{os.pathsep}{setup.env.get('PATH', os.defpath)}",
        "DRTOOL_CONFIG": str(setup.config_path),
        "PGPASSWORD": TEST_PASSWORD,
        **extra_env,
    }
    return Runner(env, workdir)


def require_tools(*names: str) -> None:
    """The standard tools a runbook uses besides drtool; missing, the test fails in CI and is
    skipped elsewhere (scripts/system-deps.sh installs them)."""
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        message = f"the runbooks need {', '.join(missing)} (scripts/system-deps.sh)"
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail(message)
        pytest.skip(message)


# -- the stack ------------------------------------------------------------------------------


APP_KEY = "app-encryption-key-for-the-runbook-tests"


@dataclass
class Shared:
    """Storage ``s3://<bucket>/prod`` on moto with a file replica ``dr-region``, holding one
    backup of the sample (with a secrets bundle), replicated; shared by the runbooks that only
    read it or add records (restore, dr-drill, alerts, compliance, user-data-request)."""

    setup: Setup
    backup_id: str
    bucket: str
    endpoint_url: str


@pytest.fixture(scope="module")
def shared(
    tmp_path_factory: pytest.TempPathFactory, sample_db: Any, moto_server: MotoServer
) -> Iterator[Shared]:
    root = tmp_path_factory.mktemp("runbooks-shared")
    bucket = moto_server.create_bucket()
    try:
        storage = moto_server.storage_config(bucket, part_size=TEST_PART_SIZE_BYTES)
        setup = make_setup(root / "cfg", sample_db.dsn, sample_db.password, storage)
        setup.doc["storage"]["url"] = f"s3://{bucket}/prod"
        setup.doc["storage"]["replicas"] = [
            {"name": "dr-region", "url": (root / "replica").as_uri()}
        ]
        setup.doc["bundle"] = {"env": ["APP_ENCRYPTION_KEY"]}
        setup.env["APP_ENCRYPTION_KEY"] = APP_KEY
        setup.write()
        backup_id = setup.run("--json", "backup", "--label", "runbooks").json["id"]
        setup.run("replicate")
        yield Shared(setup, backup_id, bucket, moto_server.endpoint_url)
    finally:
        moto_server.empty_bucket(bucket)


def shared_runner(shared: Shared, directory: Path, *tools: str) -> Runner:
    require_tools(*tools)
    return make_runner(
        shared.setup, directory, s3_endpoint=shared.endpoint_url if "aws" in tools else None
    )


ARCHIVE_POLICIES = POLICIES  # the three policies of runbooks/archive.md (as SPEC gives them)
CONTACTS_OF = "select count(*) from public.contacts where user_id = %s"


def scalar(pg_cluster: Any, dbname: str, query: str, params: Any = None) -> Any:
    with pg_cluster.connect(dbname) as conn:
        row = conn.execute(
            query, params if isinstance(params, tuple) or params is None else (params,)
        ).fetchone()
        return row[0] if row else None


@contextlib.contextmanager
def database(pg_cluster: Any, template: str | None = None) -> Iterator[str]:
    """A new database on the session's cluster, empty or a copy of ``template`` (the sample,
    which tests must not modify); dropped afterwards."""
    name = f"rb_{uuid.uuid4().hex[:10]}"
    if template is None:
        pg_cluster.create_database(name)
    else:
        with pg_cluster.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield name
    finally:
        pg_cluster.drop_database(name)


# -- the parser and the placeholder table, without a stack ------------------------------------


def test_every_runbook_has_runnable_blocks_with_known_placeholders() -> None:
    names = sorted(p.name for p in RUNBOOKS.glob("*.md") if p.name != "README.md")
    assert names == sorted(RUNBOOK_TESTS), "each runbook needs its test below"
    for name in names:
        blocks = runnable_blocks(RUNBOOKS / name)
        assert blocks, f"runbooks/{name}: no runnable block"
        for block in blocks:
            assert not unknown_placeholders(block.code), (block.where(), block.code)


def test_runbooks_readme_lists_every_placeholder() -> None:
    readme = (RUNBOOKS / "README.md").read_text(encoding="utf-8")
    missing = [token for token in PLACEHOLDERS if f"`{token}`" not in readme]
    assert not missing, f"runbooks/README.md does not explain {missing}"


def test_a_placeholder_outside_the_table_is_caught() -> None:
    assert unknown_placeholders("drtool show ID\n") == ["ID"]
    assert unknown_placeholders("drtool restore <id> --to $NEW_DSN\n") == ["$NEW_DSN"]
    assert unknown_placeholders("drtool export-user 3f1c...\n") == ["3f1c..."]
    assert unknown_placeholders('ID=$(drtool list)\necho "$ID" # NOT a placeholder\n') == []
    assert unknown_placeholders('drtool restore <id> --to "$TARGET_DSN"\n') == []


def test_a_block_fails_on_a_failing_command_or_another_exit_code(tmp_path: Path) -> None:
    runner = Runner(dict(os.environ), tmp_path)
    runner.run_block(Block("x.md", 1, "false || exit 4\n", expect=4), {})
    for code, expect in (("false\ntrue\n", 0), ("exit 0\n", 5), ("exit 3\n", 5)):
        with pytest.raises(AssertionError, match="the runbook documents"):
            runner.run_block(Block("x.md", 1, code, expect), {})


def test_markers_are_parsed(tmp_path: Path) -> None:
    path = tmp_path / "x.md"
    path.write_text(
        "text\n\n<!-- runbook: run -->\n```sh\necho one\n```\n\n```sh\nnot run\n```\n"
        "1. step\n\n   <!-- runbook: run expect=5 -->\n   ```sh\n   echo two\n   ```\n",
        encoding="utf-8",
    )
    assert runnable_blocks(path) == [
        Block("x.md", 4, "echo one\n", 0),
        Block("x.md", 14, "echo two\n", 5),
    ]
    path.write_text("<!-- runbook: run -->\n```yaml\na: 1\n```\n", encoding="utf-8")
    with pytest.raises(AssertionError, match="must be followed by a ```sh block"):
        runnable_blocks(path)


# -- one test per runbook ---------------------------------------------------------------------


def test_backup_runbook(tmp_path: Path, sample_db: Any) -> None:
    storage = StorageConfig(url=(tmp_path / "storage").as_uri())
    setup = make_setup(tmp_path / "cfg", sample_db.dsn, sample_db.password, storage)
    runner = make_runner(setup, tmp_path)
    done = runner.run_runbook("backup.md", {"config": str(setup.config_path)})
    [item] = setup.run("--json", "list").json["items"]
    assert item["label"] == "manual-before-migration" and item["id"] in done[0].stdout


def test_restore_runbook(
    tmp_path: Path, shared: Shared, sample_db: Any, pg_cluster: Any, fresh_project: Any
) -> None:
    with contextlib.ExitStack() as stack:
        target, dr_target, empty = (
            pg_cluster.dsn(stack.enter_context(database(pg_cluster))) for _ in range(3)
        )
        runner = shared_runner(shared, tmp_path, "aws", "jq", "age", "zstd", "psql")
        done = runner.run_runbook(
            "restore.md",
            {
                "backup_id": shared.backup_id,
                "identity": str(shared.setup.identity_path),
                "bucket": shared.bucket,
                "target_dsn": target,
                "dr_target_dsn": dr_target,
                "empty_dsn": empty,
                "supabase_dsn": fresh_project.dsn,
                "user_id": sample_db.info.heavy_user_id,
                "dump_file": str(tmp_path / "omnicrm.pgdump"),
                "secrets_dir": str(tmp_path / "omnicrm-secrets"),
            },
        )
    assert (tmp_path / "omnicrm-secrets" / "env").read_text().count(APP_KEY) == 1
    assert (tmp_path / "omnicrm.pgdump").stat().st_size > 0
    # step 5: the manifest's count and the target's agree
    [check] = [d for d in done if "select count(*) from auth.users" in d.args[-1]]
    assert check.stdout.split().count(str(sample_db.info.table_rows["auth.users"])) == 2


def test_dr_drill_runbook(tmp_path: Path, shared: Shared, pg_cluster: Any) -> None:
    runner = shared_runner(shared, tmp_path)
    done = runner.run_runbook(
        "dr-drill.md",
        {"backup_id": shared.backup_id, "scratch_dsn": pg_cluster.dsn("postgres")},
    )
    reports = list(runner.cwd.glob("drill-*.md"))
    assert len(reports) == 1 and "PASS" in reports[0].read_text()
    assert (runner.cwd / "dr-report.html").stat().st_size > 0
    assert "(removed)" in done[1].stdout
    with pg_cluster.connect() as conn:
        left = conn.execute("select datname from pg_database where datname like 'drtool_drill%'")
        assert left.fetchall() == []


def test_alerts_runbook(tmp_path: Path, shared: Shared) -> None:
    done = shared_runner(shared, tmp_path, "jq").run_runbook("alerts.md", {})
    assert shared.backup_id in done[0].stdout


def test_compliance_runbook(tmp_path: Path, shared: Shared, sample_db: Any) -> None:
    runner = shared_runner(shared, tmp_path, "jq")
    done = runner.run_runbook(
        "compliance.md",
        {"user_id": sample_db.info.heavy_user_id, "backup_id": shared.backup_id},
    )
    assert "audit chain ok" in done[-1].stdout


def test_user_data_request_runbook(
    tmp_path: Path, shared: Shared, sample_db: Any, pg_cluster: Any
) -> None:
    user = sample_db.info.heavy_user_id
    with database(pg_cluster, template="sample") as name:
        production = pg_cluster.dsn(name)
        before = scalar(pg_cluster, name, CONTACTS_OF, user)
        runner = shared_runner(shared, tmp_path, "jq", "unzip", "psql")

        def accident_then_newest_export(name: str = name) -> str:
            # The accident happens after the stored export: the user's contacts are deleted.
            with pg_cluster.connect(name) as conn:
                conn.execute("delete from public.contacts where user_id = %s", (user,))
            items = shared.setup.run("--json", "list", "--kind", "export").json["items"]
            return str(items[0]["id"])

        runner.run_runbook(
            "user-data-request.md",
            {
                "user_id": user,
                "subject_zip": str(tmp_path / "REQ-1234.zip"),
                "export_id": accident_then_newest_export,
                "prod_dsn": production,
            },
        )
        assert before > 0 and scalar(pg_cluster, name, CONTACTS_OF, user) == before


def test_archive_runbook(tmp_path: Path, sample_db: Any, pg_cluster: Any) -> None:
    require_tools("jq")
    with database(pg_cluster, template="sample") as name:
        storage = StorageConfig(url=(tmp_path / "storage").as_uri())
        setup = make_setup(tmp_path / "cfg", pg_cluster.dsn(name), TEST_PASSWORD, storage)
        setup.doc["archival"] = {"policies": ARCHIVE_POLICIES}
        setup.write()
        old_events = "select count(*) from public.raw_events where occurred_at < %s"
        cutoff = datetime.now(UTC) - timedelta(days=730)
        assert scalar(pg_cluster, name, old_events, cutoff) > 0
        # A month of archived events, well inside the two years before the cutoff.
        month = (cutoff - timedelta(days=180)).replace(day=1)
        until = (month + timedelta(days=32)).replace(day=1)
        in_month = (
            "select count(*) from public.raw_events where occurred_at >= %s and occurred_at < %s"
        )
        expected = scalar(pg_cluster, name, in_month, (month.date(), until.date()))
        assert expected > 0
        done = make_runner(setup, tmp_path).run_runbook(
            "archive.md",
            {
                "prod_dsn": pg_cluster.dsn(name),
                "archive_since": month.date().isoformat(),
                "archive_until": until.date().isoformat(),
            },
        )
        # Archived and deleted; the month brought back; and, as the runbook warns, archived
        # again by the next run, since the rows still match the policy.
        assert f"{expected} row" in done[3].stdout, done[3].stdout
        assert scalar(pg_cluster, name, old_events, cutoff) == 0
        finished = "select count(*) from public.jobs where status = 'completed' and updated_at < %s"
        assert scalar(pg_cluster, name, finished, datetime.now(UTC) - timedelta(days=30)) == 0


def test_operations_runbook(tmp_path: Path, sample_db: Any) -> None:
    storage = StorageConfig(url=(tmp_path / "storage").as_uri())
    setup = make_setup(tmp_path / "cfg", sample_db.dsn, sample_db.password, storage)
    setup.doc["schedule"] = {"dir": str(ROOT / "schedules")}
    setup.write()
    done = make_runner(setup, tmp_path).run_runbook("operations.md", {})
    assert "backup" in done[0].stdout + done[0].stderr


def wait_until_stored(setup: Setup, at: datetime) -> None:
    """Until the running stream reports every change committed before ``at`` as stored."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        doc = setup.run("--json", "stream", "status", expect=None).json
        through = doc.get("stored_through")
        if doc.get("running") and through and datetime.fromisoformat(through) > at:
            return
        time.sleep(0.5)
    raise AssertionError(f"the stream did not store the changes up to {at}: {doc}")


def test_pitr_runbook(
    tmp_path: Path, stream_project: StreamProject, fresh_project_cluster: Any
) -> None:
    project = stream_project
    project.setup.run("stream", "run", "--once")  # its slot and base backup
    stream = project.setup.popen("stream", "run")  # then it runs on, as in production
    try:
        notes = project.scalar("select count(*) from public.notes")
        project.write(
            "insert into public.notes (user_id, body)"
            " select user_id, 'a late note' from public.notes limit 1"
        )
        before_accident = project.write("select 1")
        accident = project.write("delete from public.notes")  # a moment later
        wait_until_stored(project.setup, accident)
        with fresh_target(fresh_project_cluster) as target:
            make_runner(project.setup, tmp_path).run_runbook(
                "pitr.md",
                {
                    "before_accident": before_accident.astimezone(UTC)
                    .isoformat()
                    .replace("+00:00", "Z"),
                    "target_dsn": target.dsn,
                },
                # `exit 5 while a stream run uses it: stop that first`
                before={"drtool stream drop": lambda: stop(stream, timeout=30)},
            )
            with connect_app(target) as conn:
                row = conn.execute("select count(*) from public.notes").fetchone()
            assert row is not None and row[0] == notes + 1
    finally:
        stop(stream, timeout=30)
    assert project.scalar("select count(*) from pg_replication_slots") == 0  # dropped


def test_storage_setup_runbook(tmp_path: Path, sample_db: Any, moto_server: MotoServer) -> None:
    require_tools("jq")
    suffix = uuid.uuid4().hex[:12]
    bucket, replica = f"rb-{suffix}", f"rb-{suffix}-dr"
    aws_config = tmp_path / "aws-config"
    profile = (
        f"aws_access_key_id = {moto_server.access_key_id}\n"
        f"aws_secret_access_key = {moto_server.secret_access_key}\n"
    )
    aws_config.write_text(
        f"[default]\n{profile}[profile prod-admin]\n{profile}[profile dr-admin]\n{profile}",
        encoding="utf-8",
    )
    lock = {"mode": "governance", "days": 35}
    storage = moto_server.storage_config(bucket, part_size=TEST_PART_SIZE_BYTES)
    setup = make_setup(tmp_path / "cfg", sample_db.dsn, sample_db.password, storage)
    setup.doc["storage"].update(url=f"s3://{bucket}/prod", region="eu-west-1", object_lock=lock)
    setup.doc["storage"]["replicas"] = [
        # the runbook's example gives the replica a compliance lock, which moto could not
        # clean up after the test
        {
            "name": "dr-region",
            "url": f"s3://{replica}/prod",
            "endpoint_url": moto_server.endpoint_url,
            "region": "us-east-1",
            "object_lock": lock,
        }
    ]
    setup.write()
    runner = make_runner(
        setup,
        tmp_path,
        s3_endpoint=moto_server.endpoint_url,
        AWS_CONFIG_FILE=str(aws_config),
    )
    try:
        done = runner.run_runbook("storage-setup.md", {"bucket": bucket, "replica_bucket": replica})
    finally:
        for name in (bucket, replica):
            with contextlib.suppress(Exception):
                moto_server.empty_bucket(name)
    assert done[0].stdout.count('"Enabled"') == 2  # versioning, Object Lock
    # the manifest locked on both buckets, the run record not
    checks = done[-1].stdout.split()[-6:]
    assert checks[:2] == ["[", '"GOVERNANCE",'] and checks[-2:] == ['"GOVERNANCE"', "null"]


RUNBOOK_TESTS = {
    "alerts.md",
    "archive.md",
    "backup.md",
    "compliance.md",
    "dr-drill.md",
    "operations.md",
    "pitr.md",
    "restore.md",
    "storage-setup.md",
    "user-data-request.md",
}
