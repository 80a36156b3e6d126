"""Deprecated: aioamqp-ext 0.1's module of ``BaseProducer``; import it from :mod:`aioamqp_ext`.

``BaseProducer`` here is today's, and warns (``DeprecationWarning``); importing the module alone
does not warn.
"""

from __future__ import annotations

from typing import Any

from ._legacy import moved
from .producer import BaseProducer as _BaseProducer

__all__ = ["BaseProducer"]  # noqa: F822 (served by __getattr__, with a warning)

_MOVED: dict[str, tuple[object, str]] = {
    "BaseProducer": (_BaseProducer, "aioamqp_ext.BaseProducer"),
}


def __getattr__(name: str) -> Any:
    """aioamqp-ext 0.1's names of this module, deprecated (PEP 562)."""
    return moved(__name__, name, _MOVED)
