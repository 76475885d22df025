"""The backup capability: ``run_backup`` (run.py) writes one custom-format dump, or with
``--jobs N`` the parallel format (parallel.py)."""

from drtool.services.backup.run import BackupResult, run_backup

__all__ = ["BackupResult", "run_backup"]
