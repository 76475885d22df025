"""The ``report`` use case: the facts ``status`` reads (manifests and small records, never a
data object, no key) over a period, as a typed view model rendered to one self-contained HTML
file (inline CSS and SVG, no scripts, nothing fetched)."""
