"""The version of the installed ``aiohttp-booster`` distribution, and the version checks of
the fences around our dependencies' internals."""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__", "release", "within"]

try:
    __version__ = version("aiohttp-booster")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

# A final release: numbers, an optional .postN and an optional +local tag; no a/b/rc/dev.
_RELEASE = re.compile(r"(\d+(?:\.\d+)*)(?:\.post\d+)?(?:\+[0-9A-Za-z.]+)?")


def release(text: str) -> tuple[int, ...] | None:
    """The numbers of a final release's version (``"3.10.2"`` -> ``(3, 10, 2)``); None for a
    pre-release, a development version or anything unparsable, which no test has seen."""
    match = _RELEASE.fullmatch(text.strip())
    if match is None:
        return None
    return tuple(int(part) for part in match.group(1).split("."))


def within(text: str, low: tuple[int, ...], high: tuple[int, ...]) -> bool:
    """Whether version ``text`` is a final release in ``[low, high)``, compared as numbers
    (``3.10`` is newer than ``3.9``, which a string comparison gets wrong)."""
    numbers = release(text)
    return numbers is not None and low <= numbers < high
