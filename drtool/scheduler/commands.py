"""What a schedule file's ``command:`` becomes: a job call, parsed by the parser the caller
passes in (the CLI's click command tree: an option exists once), run by the runner."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from drtool.services.context import Context
from drtool.services.jobs.job import Outcome


@dataclass(frozen=True)
class JobCall:
    """One parsed command line: which service call to make, with which arguments."""

    # The top-level command (backup, verify, archive, ...): the job its runs are recorded as.
    command: str
    argv: tuple[str, ...]
    run: Callable[[Context], Outcome] = field(compare=False)
    # The parsed parameters, by the command's parameter names (for listings and tests).
    params: Mapping[str, Any] = field(default_factory=dict, compare=False)


# argv -> JobCall; raises UsageError with the parser's message for an unknown command, a
# command a schedule may not run, or a bad argument.
CommandParser = Callable[[Sequence[str]], JobCall]
