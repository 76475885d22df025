"""drtool: backup and disaster recovery for PostgreSQL."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    # ``__version__`` is read from the package metadata on first use: importlib.metadata costs
    # tens of milliseconds at start-up, which `drtool status` and `--help` do not need.
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        value = version("drtool")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        value = "0.0.0+source"
    globals()["__version__"] = value
    return value
