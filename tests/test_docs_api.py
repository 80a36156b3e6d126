"""The API reference (docs/api/) has an entry for every public name, and the docs build says
so: a public module without a page, a name without an entry, a module that does not import or
a docstring Sphinx cannot read fails ``sphinx-build -W``."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def load_coverage() -> ModuleType:
    """docs/_api_coverage.py, the check conf.py runs at the end of each build."""
    spec = importlib.util.spec_from_file_location("_api_coverage", DOCS / "_api_coverage.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


coverage = load_coverage()
PAGES = "\n".join(path.read_text(encoding="utf-8") for path in (DOCS / "api").glob("*.md"))
AUTOMODULES = set(re.findall(r"^\.\. automodule:: (\S+)$", PAGES, re.M))


def test_every_public_module_has_a_section_in_the_reference() -> None:
    """A new public module shows up in the reference, or this names it."""
    public = {module.__name__ for module in coverage.public_modules()}
    assert {"aioamqp_ext", "aioamqp_ext.testing", "aiohttp_prometheus_monitoring.worker"} <= public
    assert sorted(public - AUTOMODULES) == []
    assert sorted(AUTOMODULES - public) == []  # nothing private, nothing deprecated


def test_the_deprecated_2018_modules_are_left_to_the_migration_guide() -> None:
    """Their docstring starts with "Deprecated": the reference names them in one line only."""
    old = ModuleType("aiohttp_prometheus_monitoring.views", "Deprecated: the views of 2018.")
    assert coverage.is_deprecated(old)
    assert not coverage.is_deprecated(ModuleType("x", "Deprecation warnings, explained."))
    for module in coverage.public_modules():
        assert not coverage.is_deprecated(module)
        assert f".. automodule:: {module.__name__}\n" in PAGES


def test_the_check_names_what_has_no_entry() -> None:
    """Given the build's documented names minus one, the check reports exactly that one; a
    re-exported class is covered by its entry under the package."""
    names = coverage.public_names()
    assert "aioamqp_ext.consumer.BaseConsumer" in names
    documented = set(names) - {"aioamqp_ext.consumer.BaseConsumer", "aioamqp_ext.BaseConsumer"}
    assert coverage.missing(documented | {"aioamqp_ext.BaseConsumer"}) == []
    assert coverage.missing(documented) == [
        "aioamqp_ext.BaseConsumer", "aioamqp_ext.consumer.BaseConsumer"
    ]  # fmt: skip
    # a plain value is covered by its own name only, whatever else shares it
    assert coverage.missing(set(names) - {"aioamqp_ext.__version__"}) == ["aioamqp_ext.__version__"]


def test_the_docs_build_with_warnings_as_errors(tmp_path: Path) -> None:
    """What CI runs (scripts/test): autodoc imports every module, each public name has an
    entry, every docstring parses (the dummy builder reads everything and writes nothing)."""
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-q", "-W", "--keep-going", "-E", "-b", "dummy",
         DOCS, tmp_path / "out"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
