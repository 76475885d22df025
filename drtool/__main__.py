"""``python -m drtool``."""

from drtool.cli.main import main

main()
