"""The configuration & secrets bundle: captured with each backup, shown, restored, checked by
the drill, and compared with the running environment by ``status`` (docs/bundle.md)."""
