"""Self-contained HTML pages (the `report` command's and `rehearse --report *.html`): one
Jinja2 environment over the package's templates, SVG chart geometry, atomic file writes."""
