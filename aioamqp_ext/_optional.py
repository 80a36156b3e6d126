"""Import of optional dependencies, with an error that names the extra to install."""

import importlib
from types import ModuleType


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or explain which extra of aiohttp-booster brings it.

    Args:
        module: dotted name of the optional dependency, e.g. ``"aioamqp"``.
        extra: the extra that installs it, e.g. ``"amqp"``.

    Raises:
        ImportError: the module is missing; the message names the extra.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{module!r} is not installed; install it with: pip install 'aiohttp-booster[{extra}]'",
            name=module,
        ) from exc
