"""Sphinx configuration for the aiohttp-booster documentation (MyST Markdown, furo theme)."""

from importlib.metadata import version as _version

project = "aiohttp-booster"
author = "aiohttp-booster developers"
copyright = "2026, aiohttp-booster developers"
release = _version("aiohttp-booster")
version = ".".join(release.split(".")[:2])

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
exclude_patterns = ["_build"]
html_theme = "furo"
html_title = "aiohttp-booster"
autodoc_typehints = "description"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
nitpicky = False
