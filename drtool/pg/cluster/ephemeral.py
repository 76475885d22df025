"""A throwaway PostgreSQL cluster (demo, tests, bench, DR drills): initdb in a temp dir, loopback
on a free port, privileges dropped to the ``postgres`` account when run as root, always removed.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from drtool.errors import DatabaseError, OperationError, UsageError
from drtool.log import get_logger
from drtool.pg.cluster.procs import (
    HOST,
)
from drtool.pg.cluster.procs import (
    alive as _alive,
)
from drtool.pg.cluster.procs import (
    children as _children,
)
from drtool.pg.cluster.procs import (
    exit_on_sigterm as _exit_on_sigterm,
)
from drtool.pg.cluster.procs import (
    free_port as _free_port,
)
from drtool.pg.cluster.procs import (
    is_postgres as _is_postgres,
)
from drtool.pg.cluster.procs import (
    wait_dead as _wait_dead,
)
from drtool.pg.tools.find import Tool, find_tool

UNPRIVILEGED_ACCOUNT = "postgres"
INITDB_TIMEOUT_SECONDS = 120
START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 15
EXIT_GRACE_SECONDS = 5
PORT_ATTEMPTS = 3
LOG_TAIL_LINES = 40
# Linux sun_path is 108 bytes; the socket file is "<dir>/.s.PGSQL.<port>".
SOCKET_DIR_MAX_BYTES = 107 - len("/.s.PGSQL.65535")

BASE_SETTINGS: dict[str, str] = {
    "listen_addresses": HOST,
    "max_connections": "50",
    "shared_buffers": "128MB",
    "timezone": "UTC",
    "log_timezone": "UTC",
    "log_line_prefix": "%m [%p] %q%u@%d ",
    "lc_messages": "C",
}
# Durability is worthless in a scratch cluster; minimal WAL also lets a load that creates and
# fills its tables in one transaction skip WAL entirely.
FAST_SETTINGS: dict[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "max_wal_size": "4GB",
}

log = get_logger("pg.cluster")


class EphemeralCluster:
    """initdb + pg_ctl in a private temp dir; use as a context manager or start()/stop()."""

    def __init__(
        self,
        *,
        base_dir: Path | None = None,
        min_major: int | None = None,
        superuser: str = "postgres",
        password: str | None = None,
        fast: bool = True,
        settings: dict[str, str] | None = None,
        log_on_failure: bool = True,
    ) -> None:
        for key, value in (settings or {}).items():
            if not key.replace("_", "").replace(".", "").isalnum() or "\n" in value:
                raise UsageError(f"invalid PostgreSQL setting for the ephemeral cluster: {key!r}")
        self._base_dir = base_dir
        self._min_major = min_major
        self._superuser = superuser
        self._password = password
        self._fast = fast
        self._settings = dict(settings or {})
        self._log_on_failure = log_on_failure
        self._root: Path | None = None  # the temp dir this cluster owns and removes
        self._port: int | None = None
        self._initdb_tool: Tool | None = None
        self._run_as: pwd.struct_passwd | None = None
        self._detached = False
        self._owner_pid = os.getpid()

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> EphemeralCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None and self._log_on_failure and self._root is not None:
            log.warning("ephemeral PostgreSQL server log (tail):\n%s", self.log_tail())
        self.stop()

    def start(self) -> EphemeralCluster:
        """initdb and start the server; raises OperationError with the server log tail."""
        if self._root is not None:
            raise UsageError("this ephemeral cluster is already started")
        tool = self._initdb_tool = find_tool("initdb", self._min_major)
        if not (tool.path.parent / "pg_ctl").is_file():
            raise OperationError(
                f"pg_ctl not found next to {tool.path}",
                hint=f"install the full server package (apt-get install postgresql-{tool.major})",
            )
        self._run_as = _unprivileged_account() if os.geteuid() == 0 else None
        self._owner_pid = os.getpid()
        atexit.register(self.stop)
        _exit_on_sigterm()
        try:
            self._make_dirs()
            self._initdb()
            self._start_server()
        except BaseException:
            self.stop()
            raise
        log.debug("ephemeral PostgreSQL %s started on %s:%s", tool.version, HOST, self._port)
        return self

    def stop(self) -> None:
        """Shut down (fast, then immediate, then SIGKILL) and remove the temp dir; idempotent."""
        root = self._root
        # A forked child exiting normally runs atexit too; only the starting process stops it.
        if root is None or self._detached or os.getpid() != self._owner_pid:
            return
        try:
            self._shutdown()
        finally:
            self._root = None
            _remove_tree(root)
            atexit.unregister(self.stop)

    def kill_hard(self) -> None:
        """SIGKILL the postmaster and its backends: a crash, for fault tests."""
        pid = self._postmaster_pid()
        if pid is None:
            return
        victims = [pid, *_children(pid)]
        for victim in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
        _wait_dead(victims, STOP_TIMEOUT_SECONDS)

    def detach(self) -> None:
        """Leave the server running and its files in place (``--keep``); see ``stop_hint``."""
        self._detached = True
        atexit.unregister(self.stop)

    # -- facts -------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        if self._port is None:
            raise UsageError("the ephemeral cluster is not started")
        return self._port

    @property
    def superuser(self) -> str:
        return self._superuser

    @property
    def password(self) -> str | None:
        return self._password

    @property
    def major(self) -> int:
        return self._tool.major

    @property
    def version(self) -> str:
        return self._tool.version

    @property
    def bin_dir(self) -> Path:
        return self._tool.path.parent

    @property
    def data_dir(self) -> Path:
        return self._home / "data"

    @property
    def log_path(self) -> Path:
        return self._home / "server.log"

    @property
    def stop_hint(self) -> str:
        """Shell command that stops a detached cluster and removes its files."""
        prefix = f"runuser -u {self._run_as.pw_name} -- " if self._run_as else ""
        pg_ctl = self.bin_dir / "pg_ctl"
        return f"{prefix}{pg_ctl} -D {self.data_dir} stop -m fast; rm -rf {self._home.parent}"

    def dsn(self, dbname: str = "postgres", user: str | None = None) -> str:
        """postgresql://user@127.0.0.1:port/db, never with the password."""
        user = quote(user or self._superuser, safe="")
        return f"postgresql://{user}@{HOST}:{self.port}/{quote(dbname, safe='')}"

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            return _tail(self.log_path.read_text(errors="replace"), lines)
        except (OSError, UsageError):
            return "(no server log)"

    # -- SQL ---------------------------------------------------------------------------------

    def connect(
        self, dbname: str = "postgres", user: str | None = None
    ) -> psycopg.Connection[TupleRow]:
        """An autocommit connection over TCP; the password goes as a parameter, not in a URL."""
        user = user or self._superuser
        try:
            return psycopg.connect(
                host=HOST,
                port=self.port,
                dbname=dbname,
                user=user,
                password=self._password,
                autocommit=True,
                connect_timeout=10,
            )
        except psycopg.Error as exc:
            raise DatabaseError(
                f"could not connect to database {dbname} as {user} on the ephemeral cluster "
                f"{HOST}:{self.port}: {exc}",
                hint=f"check the server log {self.log_path}",
            ) from exc

    def create_database(self, name: str) -> str:
        """CREATE DATABASE; returns its dsn (without password)."""
        self._execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)), f"create {name}")
        return self.dsn(name)

    def drop_database(self, name: str) -> None:
        """DROP DATABASE IF EXISTS, disconnecting its sessions first."""
        force = sql.SQL(" WITH (FORCE)") if self.major >= 13 else sql.SQL("")
        stmt = sql.SQL("DROP DATABASE IF EXISTS {}{}").format(sql.Identifier(name), force)
        self._execute(stmt, f"drop {name}")

    def _execute(self, stmt: sql.Composed, what: str) -> None:
        with self.connect() as conn:
            try:
                conn.execute(stmt)
            except psycopg.Error as exc:
                raise DatabaseError(
                    f"could not {what} on the ephemeral cluster: {exc}",
                    hint="pick another database name" if "exists" in str(exc) else None,
                ) from exc

    # -- internals ---------------------------------------------------------------------------

    @property
    def _tool(self) -> Tool:
        if self._initdb_tool is None:
            raise UsageError("the ephemeral cluster is not started")
        return self._initdb_tool

    @property
    def _home(self) -> Path:
        if self._root is None:
            raise UsageError("the ephemeral cluster is not started")
        return self._root / "pg"

    def _give_away(self, path: Path) -> None:
        if self._run_as is not None:
            os.chown(path, self._run_as.pw_uid, self._run_as.pw_gid)

    def _make_dirs(self) -> None:
        if self._base_dir is not None:
            self._base_dir.mkdir(parents=True, exist_ok=True)
        self._root = Path(tempfile.mkdtemp(prefix="drtool-pg-", dir=self._base_dir))
        self._home.mkdir(mode=0o700)
        self._give_away(self._home)
        if self._run_as is not None:
            # Root's mkdtemp dirs are 0700; 0711 lets the postgres account reach its own 0700
            # subdirectory without being able to list anything.
            self._root.chmod(0o711)
            _check_traversable(self._root, self._run_as)

    def _initdb(self) -> None:
        locale = "C.UTF-8" if Path("/usr/lib/locale/C.utf8").exists() else "C"
        argv = [str(self.bin_dir / "initdb"), f"--pgdata={self.data_dir}"]
        argv += [f"--username={self._superuser}", "--encoding=UTF8", f"--locale={locale}"]
        argv += ["--lc-messages=C", *(["--no-sync"] if self._fast else [])]
        pwfile = self._home / "initdb.pw"
        if self._password is not None:
            fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(self._password + "\n")
            self._give_away(pwfile)
            argv += ["--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}"]
        else:
            argv.append("--auth=trust")
        try:
            proc = self._run(argv, INITDB_TIMEOUT_SECONDS)
        finally:
            pwfile.unlink(missing_ok=True)
        if proc.returncode != 0:
            raise OperationError(
                f"initdb {self.version} failed (exit {proc.returncode}) in {self.data_dir}:\n"
                + _tail(proc.stdout + proc.stderr),
                hint="check disk space and that the postgres account can write to the temp dir",
            )
        with (self.data_dir / "postgresql.conf").open("a") as fh:
            fh.write("\ninclude 'drtool.conf'\n")

    def _start_server(self) -> None:
        for attempt in range(1, PORT_ATTEMPTS + 1):
            self._port = _free_port()
            self._write_settings()
            offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            argv = [str(self.bin_dir / "pg_ctl"), "start", "-D", str(self.data_dir)]
            argv += ["-l", str(self.log_path), "-w", "-t", str(START_TIMEOUT_SECONDS), "-s"]
            proc = self._run(argv, START_TIMEOUT_SECONDS + 10)
            if proc.returncode == 0:
                return
            with self.log_path.open("rb") as fh:
                fh.seek(offset)
                new_log = fh.read().decode(errors="replace")
            # Another process can take the free port between the bind test and the start.
            if "Address already in use" in new_log and attempt < PORT_ATTEMPTS:
                continue
            raise OperationError(
                f"ephemeral PostgreSQL {self.version} failed to start on {HOST}:{self._port} "
                f"(pg_ctl exit {proc.returncode}); server log tail:\n"
                + _tail(new_log or proc.stdout + proc.stderr),
                hint="see the server log above; check free memory, disk space and shared memory",
            )

    def _write_settings(self) -> None:
        settings = {**BASE_SETTINGS, "port": str(self._port)}
        # A path too long for a unix socket gets none; TCP is all the cluster needs.
        socket_dir = str(self._home)
        fits = len(socket_dir.encode()) <= SOCKET_DIR_MAX_BYTES
        settings["unix_socket_directories"] = socket_dir if fits else ""
        settings.update(FAST_SETTINGS if self._fast else {})
        settings.update(self._settings)
        path = self.data_dir / "drtool.conf"
        quoted = {k: v.replace("'", "''") for k, v in settings.items()}
        path.write_text("".join(f"{k} = '{v}'\n" for k, v in quoted.items()))
        self._give_away(path)

    def _shutdown(self) -> None:
        pid = self._postmaster_pid()
        if pid is not None:
            for mode in ("fast", "immediate"):
                argv = [str(self.bin_dir / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", mode]
                argv += ["-w", "-t", str(STOP_TIMEOUT_SECONDS), "-s"]
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._run(argv, STOP_TIMEOUT_SECONDS + 5)
                # pg_ctl returns once postmaster.pid is gone, a moment before the process exits.
                _wait_dead([pid], EXIT_GRACE_SECONDS)
                if not _alive(pid):
                    return
            log.warning("ephemeral PostgreSQL (pid %s) ignored shutdown requests; killing it", pid)
            self.kill_hard()
        self._release_shared_memory()

    def _pid_file(self) -> list[str]:
        try:
            return (self.data_dir / "postmaster.pid").read_text().splitlines()
        except (OSError, UsageError):
            return []

    def _postmaster_pid(self) -> int | None:
        """The running postmaster's pid; None if it is gone (or the pid is reused by another)."""
        lines = self._pid_file()
        pid = int(lines[0]) if lines and lines[0].strip().isdigit() else None
        return pid if pid is not None and _alive(pid) and _is_postgres(pid) else None

    def _release_shared_memory(self) -> None:
        """A killed postmaster leaves its small SysV segment behind; mark it for removal."""
        lines = self._pid_file()
        fields = lines[6].split() if len(lines) > 6 else []
        ipcrm = shutil.which("ipcrm")
        if len(fields) == 2 and fields[1].isdigit() and ipcrm:
            subprocess.run([ipcrm, "-m", fields[1]], capture_output=True, check=False, timeout=10)

    def _run(self, argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        run_as = self._run_as
        env = {"PATH": f"{self.bin_dir}{os.pathsep}{os.defpath}", "HOME": str(self._home)}
        return subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self._home,
            env={**env, "LC_ALL": "C", "TZ": "UTC"},
            user=run_as.pw_uid if run_as else None,
            group=run_as.pw_gid if run_as else None,
            extra_groups=[] if run_as else None,
        )


def _unprivileged_account() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(UNPRIVILEGED_ACCOUNT)
    except KeyError:
        raise OperationError(
            "PostgreSQL refuses to run as root and there is no 'postgres' account to run it as",
            hint="create one (useradd --system --create-home postgres) or run drtool as non-root",
        ) from None


def _check_traversable(path: Path, account: pwd.struct_passwd) -> None:
    """Every ancestor must let ``account`` search it, else initdb fails obscurely."""
    for parent in [path, *path.parents]:
        st = parent.stat()
        owner, group = st.st_uid == account.pw_uid, st.st_gid == account.pw_gid
        bit = 0o100 if owner else 0o010 if group else 0o001
        if not st.st_mode & bit:
            raise OperationError(
                f"the {account.pw_name} account cannot reach {path}: {parent} is not searchable",
                hint=f"choose a base_dir under a world-searchable directory, or chmod o+x {parent}",
            )


def _remove_tree(path: Path) -> None:
    # Backends that are still exiting can create files while the tree is being removed.
    for _ in range(5):
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            return
        time.sleep(0.2)
    log.warning("could not remove the ephemeral cluster directory %s; remove it by hand", path)


def _tail(text: str, lines: int = LOG_TAIL_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
