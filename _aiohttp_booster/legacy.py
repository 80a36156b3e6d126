"""The 2018 distributions installed beside aiohttp-booster: a warning with the commands to fix it.

``aioamqp-ext`` and ``aiohttp-prometheus-monitoring``, the two distributions of 2018, own the
very import packages aiohttp-booster ships (``aioamqp_ext``, ``aiohttp_prometheus_monitoring``).
pip does not notice the overlap: installing aiohttp-booster beside them writes our files over
theirs, and uninstalling them afterwards deletes every file their records list, ours by then.
Both libraries call :func:`warn_legacy_distributions` when imported; it warns once per process,
naming the commands that repair the installation, in the order they must run.
"""

from __future__ import annotations

import warnings
from importlib.metadata import PackageNotFoundError, distribution

from .version import __version__

__all__ = ["LEGACY_DISTRIBUTIONS", "LegacyDistributionWarning", "warn_legacy_distributions"]

#: The 2018 distributions, and the import package each owns as we do.
LEGACY_DISTRIBUTIONS = {
    "aioamqp-ext": "aioamqp_ext",
    "aiohttp-prometheus-monitoring": "aiohttp_prometheus_monitoring",
}
MIGRATION_URL = (
    "https://aiohttp-booster.readthedocs.io/en/stable/migration.html"
    "#installing-beside-the-old-distributions"
)

_warned = False


class LegacyDistributionWarning(UserWarning):
    """A 2018 distribution owning our import packages is installed beside aiohttp-booster.

    A ``UserWarning``: shown by default (a ``DeprecationWarning`` or ``ImportWarning`` would be
    hidden outside tests) and it asks the user to act on their installation, which is not a
    doubtful runtime behaviour of the code (``RuntimeWarning``). A subclass of its own, so that
    a program can single it out (``warnings.filterwarnings(category=...)``).
    """


def installed_legacy() -> list[tuple[str, str]]:
    """The 2018 distributions installed in this environment, as (name, version) pairs."""
    found = []
    for name in LEGACY_DISTRIBUTIONS:
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue
        found.append((name, dist.version or "?"))
    return found


def legacy_message(found: list[tuple[str, str]]) -> str:
    """The warning's text for the installed 2018 distributions ``found``."""
    one = len(found) == 1
    listed = " and ".join(f"{name} {version}" for name, version in found)
    packages = " and ".join(LEGACY_DISTRIBUTIONS[name] for name, _ in found)
    names = " ".join(name for name, _ in found)
    ours = "aiohttp-booster" if __version__ == "0+unknown" else f"aiohttp-booster=={__version__}"
    return (
        f"{listed}, from 2018, {'is' if one else 'are'} installed beside aiohttp-booster and "
        f"{'owns the same import package' if one else 'own the same import packages'}, "
        f"{packages}: the files imported may be a mix of both releases, and uninstalling "
        f"{'it' if one else 'them'} later deletes aiohttp-booster's files. Run, in this order: "
        f"`pip uninstall -y {names}`, then `pip install --force-reinstall --no-deps {ours}` "
        "(the uninstall removes the shared files; the reinstall puts ours back). See "
        f"{MIGRATION_URL}"
    )


def warn_legacy_distributions() -> None:
    """Warn, once per process, when a 2018 distribution is installed beside ours."""
    global _warned  # once per process, whichever package is imported first
    if _warned:
        return
    _warned = True
    found = installed_legacy()
    if found:
        # stacklevel 2: the line of the package's __init__ that called us
        warnings.warn(legacy_message(found), LegacyDistributionWarning, stacklevel=2)
