"""Sphinx configuration for the aiohttp-booster documentation (MyST Markdown, furo theme)."""

import sys
from importlib.metadata import version as _version
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.ext.napoleon.docstring import GoogleDocstring
from sphinx.util import logging

sys.path.insert(0, str(Path(__file__).parent))
import _api_coverage  # docs/ is on the path now

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
# The API reference (docs/api/): what a module's ``__all__`` lists, in the order of the source;
# a module that does not import is a warning, so an error under -W.
autodoc_typehints = "description"
autodoc_member_order = "bysource"
autodoc_preserve_defaults = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False
nitpicky = False


def _check_api_coverage(app: Sphinx, env: BuildEnvironment) -> None:
    """Warn for each public name that has no entry in the API reference."""
    documented = env.get_domain("py").objects  # type: ignore[attr-defined]
    for name in _api_coverage.missing(documented):
        logging.getLogger(__name__).warning(
            "API reference: the public name %s has no entry (docs/api/)", name,
            type="api", subtype="missing",
        )  # fmt: skip


def _check_inline_type(
    app: Sphinx, what: str, name: str, obj: object, options: object, lines: list[str]
) -> None:
    """Warn when napoleon would read the start of an attribute's docstring as its type.

    A Google-style attribute docstring may open with ``type: description``; ours never do
    (the annotation gives the type), so a first line with a colon in it, such as ``The group's
    URL: <url>/metrics/...``, would be shown with "The group's URL" as the type. Rephrase it.
    """
    if what not in ("attribute", "data", "property") or not lines:
        return
    if name.partition(".")[0] not in _api_coverage.PACKAGES:
        return
    parsed = GoogleDocstring(lines[:1], app.config, app, "attribute", name).lines()
    typed = [line for line in parsed if line.startswith(":type:")]
    if typed:
        logging.getLogger(__name__).warning(
            "API reference: the docstring of %s opens with %r, which napoleon reads as the "
            "type %r; rephrase its first line without a colon", name, lines[0],
            typed[0].removeprefix(":type:").strip(), type="api", subtype="inline-type",
        )  # fmt: skip


def _public_bases(app: Sphinx, name: str, obj: object, options: object, bases: list[type]) -> None:
    """Leave private bases (the 2018 compatibility mixin) out of "Bases:"."""
    bases[:] = [base for base in bases if not base.__name__.startswith(("_", "Compat"))]


def setup(app: Sphinx) -> None:
    app.connect("env-check-consistency", _check_api_coverage)
    app.connect("autodoc-process-bases", _public_bases)
    # before napoleon (priority 500) rewrites the docstring
    app.connect("autodoc-process-docstring", _check_inline_type, priority=400)
