"""The 2018 distributions installed beside ours: one warning, naming the exact commands.

Each test runs a fresh interpreter whose ``sys.path`` holds fake ``*.dist-info`` directories,
which ``importlib.metadata`` finds like installed distributions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Imports both libraries (in the order given) and prints every warning raised meanwhile.
IMPORT_BOTH = """
import importlib, json, sys, warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for name in sys.argv[1:]:
        importlib.import_module(name)
print(json.dumps([
    {"category": w.category.__name__, "bases": [c.__name__ for c in w.category.__mro__],
     "message": str(w.message), "filename": w.filename}
    for w in caught
]))
"""
PACKAGES = ["aioamqp_ext", "aiohttp_prometheus_monitoring"]


def fake_distribution(site: Path, name: str, version: str) -> None:
    """What pip leaves for an installed distribution, as far as importlib.metadata reads it."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


def warnings_on_import(site: Path, order: list[str]) -> list[dict[str, object]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_BOTH, *order],
        capture_output=True, text=True, check=True, env=env, cwd=site, timeout=60,
    )  # fmt: skip
    result: list[dict[str, object]] = json.loads(out.stdout)
    return result


@pytest.mark.parametrize("order", [PACKAGES, PACKAGES[::-1]])
def test_both_old_distributions_warn_once_with_the_commands(
    tmp_path: Path, order: list[str]
) -> None:
    """Whichever package comes first, one warning per process names both, the uninstall
    first and then the reinstall of our own release."""
    fake_distribution(tmp_path, "aioamqp-ext", "0.3.2")
    fake_distribution(tmp_path, "aiohttp-prometheus-monitoring", "0.1.4")
    (warning,) = warnings_on_import(tmp_path, order)
    assert warning["category"] == "LegacyDistributionWarning"
    assert "UserWarning" in warning["bases"]  # type: ignore[operator]
    message = str(warning["message"])
    assert message.startswith(
        "aioamqp-ext 0.3.2 and aiohttp-prometheus-monitoring 0.1.4, from 2018, are installed "
        "beside aiohttp-booster and own the same import packages, aioamqp_ext and "
        "aiohttp_prometheus_monitoring:"
    )
    uninstall = "`pip uninstall -y aioamqp-ext aiohttp-prometheus-monitoring`"
    reinstall = (
        f"`pip install --force-reinstall --no-deps aiohttp-booster=={version('aiohttp-booster')}`"
    )
    assert uninstall in message
    assert reinstall in message
    assert message.index(uninstall) < message.index(reinstall)
    assert "migration.html" in message
    # shown where the user's import of the package happened, not inside our helper
    assert str(warning["filename"]).endswith(f"{order[0]}/__init__.py")


@pytest.mark.parametrize("name", ["aioamqp-ext", "aiohttp-prometheus-monitoring"])
def test_one_old_distribution_names_only_itself(tmp_path: Path, name: str) -> None:
    """The command to run uninstalls what is there and nothing else."""
    fake_distribution(tmp_path, name, "0.2.0")
    (warning,) = warnings_on_import(tmp_path, PACKAGES)
    message = str(warning["message"])
    package = name.replace("-", "_")
    assert message.startswith(
        f"{name} 0.2.0, from 2018, is installed beside aiohttp-booster and owns the same "
        f"import package, {package}:"
    )
    assert f"`pip uninstall -y {name}`" in message
    other = next(
        other for other in ("aioamqp-ext", "aiohttp-prometheus-monitoring") if other != name
    )
    assert other not in message


def test_no_old_distribution_no_warning(tmp_path: Path) -> None:
    """A clean environment imports both libraries without a word."""
    fake_distribution(tmp_path, "aioamqp-extras", "1.0")  # a name alike is not theirs
    assert warnings_on_import(tmp_path, PACKAGES) == []
