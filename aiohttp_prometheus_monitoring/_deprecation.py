"""How names of aiohttp-prometheus-monitoring 0.1.5 resolve: lazily, by a module ``__getattr__``.

A name whose meaning carried over is :class:`Renamed`: reading it returns today's object and
emits a ``DeprecationWarning`` naming the new spelling. A name whose meaning did not is
:class:`Removed`: reading it raises :class:`RemovedNameError` (an ``ImportError``, so that
``from ... import name`` shows the message) saying what to use instead.
:class:`RemovedAttribute` does the same for a class attribute, raising ``AttributeError`` as
a missing attribute does.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from .errors import MonitoringError

__all__ = [
    "OLD", "Legacy", "Removed", "RemovedAttribute", "RemovedNameError", "Renamed",
    "module_getattr", "stacklevel_outside",
]  # fmt: skip

#: how messages name the package whose names these are
OLD = "aiohttp-prometheus-monitoring 0.1.5"
_PACKAGE_DIR = Path(__file__).resolve().parent


def _in_package(filename: str) -> bool:
    return Path(filename).resolve().is_relative_to(_PACKAGE_DIR)


def stacklevel_outside() -> int:
    """The ``stacklevel`` with which the function calling this warns about the first frame
    outside this package: the user's line, however deep in the package the warning is made
    (in a coroutine run by the event loop itself, the loop's line)."""
    frame = sys._getframe(1)  # the function about to warn: stacklevel 1
    level = 1
    while frame.f_back is not None and _in_package(frame.f_code.co_filename):
        frame = frame.f_back
        level += 1
    return level


class RemovedNameError(MonitoringError, ImportError):
    """A name of 0.1.5 whose meaning did not carry over; the message says what replaces it.

    An ``ImportError`` raised when the name is read, so that ``from ... import name`` fails at
    once with that message (an ``AttributeError`` would become a bare "cannot import name").
    """


@dataclass(frozen=True, slots=True)
class Renamed:
    """A 0.1.5 name that still works: ``load()`` gives its object; ``instead`` says what to
    write now (``"use ..."``)."""

    load: Callable[[], Any]
    instead: str


@dataclass(frozen=True, slots=True)
class Removed:
    """A 0.1.5 name that cannot keep its meaning; ``instead`` says what replaces it."""

    instead: str


Legacy = Renamed | Removed


def module_getattr(module: str, names: Mapping[str, Legacy]) -> Callable[[str], Any]:
    """A PEP 562 ``__getattr__`` for ``module`` that resolves the 0.1.5 ``names``.

    Any other name raises ``AttributeError`` as usual, so that submodules still import and
    ``hasattr`` still answers.
    """

    def __getattr__(name: str) -> Any:
        legacy = names.get(name)
        if legacy is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        if isinstance(legacy, Removed):
            raise RemovedNameError(
                f"{module}.{name} ({OLD}) was removed: {legacy.instead}", name=name
            )
        warnings.warn(
            f"{module}.{name} is deprecated: {legacy.instead}",
            DeprecationWarning,
            stacklevel=2,  # the code that reads the name
        )
        return legacy.load()

    return __getattr__


class RemovedAttribute:
    """A class attribute of 0.1.5 that is gone: reading it raises ``AttributeError`` saying
    what to use instead (``hasattr`` answers False, as for any missing attribute)."""

    def __init__(self, instead: str) -> None:
        self.instead = instead
        self.where = "?"

    def __set_name__(self, owner: type, name: str) -> None:
        self.where = f"{owner.__name__}.{name}"

    def __get__(self, instance: object, owner: type | None = None) -> NoReturn:
        raise AttributeError(f"{self.where} ({OLD}) was removed: {self.instead}")
