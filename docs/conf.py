"""Sphinx configuration of the documentation site: `make docs` builds it into docs/_build/html.

Sphinx with MyST (Markdown pages) and the furo theme: Sphinx and MyST are maintained projects with regular
releases, the pages stay plain Markdown that GitHub renders too, and `--fail-on-warning` turns every broken
link, missing page or bad code block into a failed build (`make test` runs it).
"""

project = "MNIST digit recognizer (DVC pipeline)"
extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]
html_theme = "furo"
html_title = project
# Headings up to level 3 get GitHub's anchors, so that `page.md#some-heading` links work as they do there.
myst_heading_anchors = 3
# Offline: no remote intersphinx inventories, no fonts or scripts from a CDN in the theme's pages.
html_permalinks_icon = "#"
