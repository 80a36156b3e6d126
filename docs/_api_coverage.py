"""The API reference covers every public name: a check at the end of each docs build.

A public module is one of the two packages or any module below them whose dotted name has no
part starting with ``_``, except the deprecated 2018 modules (their docstring starts with
"Deprecated"), which the migration guide covers. Every name in a public module's ``__all__``
must have an entry in the reference: under its own dotted name, or, for a name re-exported
from another public module, under any name of the same object (``aioamqp_ext.BaseConsumer``
covers ``aioamqp_ext.consumer.BaseConsumer``). A plain value (a string, a number, a tuple)
counts only under its own name, since equal values may be shared by chance. Each missing name
is a warning, which ``sphinx-build -W`` makes an error.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from types import ModuleType
from typing import Any

PACKAGES = ("aioamqp_ext", "aiohttp_prometheus_monitoring")
# values that may be equal (even identical) by chance: they are covered by their own name only
_PLAIN = (str, bytes, int, float, bool, tuple, frozenset, type(None))


def is_deprecated(module: ModuleType) -> bool:
    """A 2018 module kept for old imports: documented by the migration guide only."""
    return (module.__doc__ or "").lstrip().startswith("Deprecated")


def public_modules() -> list[ModuleType]:
    """Every public module of both packages, imported, in a stable order."""
    found = []
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        names = [package_name] + [
            info.name for info in pkgutil.walk_packages(package.__path__, f"{package_name}.")
        ]
        for name in sorted(names):
            parts = name.split(".")
            if any(part.startswith("_") for part in parts):
                continue
            module = importlib.import_module(name)
            if not is_deprecated(module):
                found.append(module)
    return found


def public_names() -> dict[str, Any]:
    """Each public dotted name (``module.name`` for each name of a module's ``__all__``) and
    the object it names."""
    return {
        f"{module.__name__}.{name}": getattr(module, name)
        for module in public_modules()
        for name in getattr(module, "__all__", ())
    }


def _resolve(dotted: str) -> Any:
    """The object a documented dotted name refers to (a module attribute or a class member)."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            obj = getattr(obj, attribute)
        return obj
    raise LookupError(dotted)


def missing(documented: Iterable[str]) -> list[str]:
    """The public names that have no entry among the ``documented`` dotted names."""
    documented = set(documented)
    same_objects = set()
    for dotted in documented:
        if dotted.partition(".")[0] not in PACKAGES:
            continue
        try:
            obj = _resolve(dotted)
        except (LookupError, AttributeError):
            continue
        if not isinstance(obj, _PLAIN):
            same_objects.add(id(obj))
    return [
        dotted
        for dotted, obj in public_names().items()
        if dotted not in documented and (isinstance(obj, _PLAIN) or id(obj) not in same_objects)
    ]
