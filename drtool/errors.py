"""Error classes carrying the SPEC exit codes; one CLI handler turns them into messages."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTEGRITY = 3
EXIT_OBJECTIVE = 4
EXIT_REFUSED = 5


class DrtoolError(Exception):
    """Base class: a message saying what failed, an optional hint saying what to do."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class OperationError(DrtoolError):
    """The operation failed: database, storage, subprocess or environment (exit 1)."""

    exit_code = EXIT_FAILED


class StorageError(OperationError):
    """A storage backend could not complete a request."""


class NotFoundInStorage(StorageError):
    """The requested object does not exist."""


class DatabaseError(OperationError):
    """PostgreSQL refused or failed a request."""


class SubprocessError(OperationError):
    """A child process (pg_dump, pg_restore, ...) failed."""


class UsageError(DrtoolError):
    """Usage error or invalid input; nothing was changed (exit 2)."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """Invalid configuration: carries every problem with its dotted key path."""

    def __init__(self, problems: list[tuple[str, str]], source: str = "configuration") -> None:
        self.problems = problems
        lines = [f"invalid {source}: {len(problems)} problem(s)"]
        lines += [f"  {path}: {msg}" for path, msg in problems]
        super().__init__("\n".join(lines), hint="fix the keys listed above; nothing was changed")


class KeyMissingError(UsageError):
    """A decryption identity is needed and not configured (exit 2)."""


class IntegrityError(DrtoolError):
    """Missing, truncated, corrupted or tampered data, or a wrong key (exit 3)."""

    exit_code = EXIT_INTEGRITY

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        obj: str | None = None,
        chunk: int | None = None,
    ) -> None:
        super().__init__(message, hint)
        self.obj = obj
        self.chunk = chunk


class ObjectiveError(DrtoolError):
    """An objective or validation check failed (exit 4)."""

    exit_code = EXIT_OBJECTIVE


class RefusedError(DrtoolError):
    """Refused for safety: non-empty target, lock held (exit 5)."""

    exit_code = EXIT_REFUSED
