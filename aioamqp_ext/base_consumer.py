"""Deprecated: aioamqp-ext 0.1's module of ``BaseConsumer``; import it from :mod:`aioamqp_ext`.

``BaseConsumer`` here is today's, and warns (``DeprecationWarning``); importing the module alone
does not warn.
"""

from __future__ import annotations

from typing import Any

from ._legacy import moved
from .consumer import BaseConsumer as _BaseConsumer

__all__ = ["BaseConsumer"]  # noqa: F822 (served by __getattr__, with a warning)

_MOVED: dict[str, tuple[object, str]] = {
    "BaseConsumer": (_BaseConsumer, "aioamqp_ext.BaseConsumer"),
}


def __getattr__(name: str) -> Any:
    """aioamqp-ext 0.1's names of this module, deprecated (PEP 562)."""
    return moved(__name__, name, _MOVED)
