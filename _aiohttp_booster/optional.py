"""Import of optional dependencies, with an error that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["require"]


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or explain which extra of aiohttp-booster brings it.

    Args:
        module: dotted name of the optional dependency, e.g. ``"aioamqp"``.
        extra: the extra that installs it, e.g. ``"amqp"``.

    Raises:
        ImportError: the module, or one it needs, is missing; the message names the missing
            module and the extra.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = _top_level(exc.name or module)  # ``module`` itself, or one it imports
        if missing == _top_level(module):
            missing = module
        raise ImportError(
            f"{missing!r} is not installed; install it with: "
            f"pip install 'aiohttp-booster[{extra}]'",
            name=missing,
        ) from exc


def _top_level(module: str) -> str:
    return module.partition(".")[0]
