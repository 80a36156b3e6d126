"""Deprecated: aioamqp-ext 0.1's serializer module; :mod:`aioamqp_ext.serializers` replaces it.

Each name works as in 2018 and warns (``DeprecationWarning``) naming its replacement;
importing the module alone does not warn.
"""

from __future__ import annotations

from typing import Any

from . import _legacy_serializer as _old
from ._legacy import moved
from .errors import DeserializationError, SerializationError

# 2018's own __all__, so that ``import *`` gives what it gave; every name is served, with a
# warning, by __getattr__
__all__ = ["JSON", "MSGPACK", "get_serializer"]  # noqa: F822

_MOVED: dict[str, tuple[object, str]] = {
    "JSON": (_old.JSON, "'json' (serializer='json')"),
    "MSGPACK": (_old.MSGPACK, "'msgpack' (serializer='msgpack')"),
    "get_serializer": (_old.get_serializer, (
        "aioamqp_ext.serializers.get_serializer(name), which returns an instance whose "
        "serialize() returns bytes")),
    "BaseSerializer": (_old.BaseSerializer, (
        "aioamqp_ext.Serializer, a protocol: content_type, serialize(payload) -> bytes and "
        "deserialize(body)")),
    "JsonSerializer": (_old.JsonSerializer, (
        "aioamqp_ext.JsonSerializer() (an instance, whose serialize() returns bytes)")),
    "MsgPackSerializer": (_old.MsgPackSerializer, "aioamqp_ext.MsgpackSerializer()"),
    "SerializeException": (SerializationError, "aioamqp_ext.SerializationError"),
    "DeserializeException": (DeserializationError, "aioamqp_ext.DeserializationError"),
}  # fmt: skip


def __getattr__(name: str) -> Any:
    """aioamqp-ext 0.1's names of this module, deprecated (PEP 562)."""
    return moved(__name__, name, _MOVED)
