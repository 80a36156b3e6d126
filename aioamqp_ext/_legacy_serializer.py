"""The serializers of aioamqp-ext 0.1, behind the deprecated ``aioamqp_ext.serializer``.

They behave as in 2018: classes of static methods, JSON serialized to ``str``, msgpack without
the bin type, datetimes converted by :meth:`BaseSerializer.datetime_converter`, and
:func:`get_serializer` returning a class. Their errors are today's ``SerializationError`` and
``DeserializationError``, which the 2018 names ``SerializeException`` and
``DeserializeException`` now stand for. The constructors' ``serializer=`` takes today's
serializers (``'json'``, ``'msgpack'`` or an instance), not these.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any

from _aiohttp_booster.optional import require

from .errors import DeserializationError, SerializationError

__all__ = ["JSON", "MSGPACK", "BaseSerializer", "JsonSerializer", "MsgPackSerializer",
           "get_serializer"]  # fmt: skip

JSON = "json"
MSGPACK = "msgpack"


class BaseSerializer(ABC):
    """aioamqp-ext 0.1's serializer base: static ``serialize`` and ``deserialize``."""

    @staticmethod
    @abstractmethod
    def serialize(data: Any) -> Any:
        """Encode ``data``."""

    @staticmethod
    @abstractmethod
    def deserialize(data: Any) -> Any:
        """Decode ``data``."""

    @staticmethod
    def datetime_converter(obj: Any) -> Any:
        """A datetime as seconds since the epoch, read as local time; anything else as it is."""
        if isinstance(obj, datetime):
            return time.mktime(obj.timetuple())
        return obj


class MsgPackSerializer(BaseSerializer):
    """msgpack as aioamqp-ext 0.1 wrote it (strings as raw, no bin type); needs the extra."""

    @staticmethod
    def deserialize(data: Any) -> Any:
        """Decode a msgpack body, strings as ``str``."""
        msgpack = require("msgpack", "msgpack")
        try:
            return msgpack.unpackb(data, raw=False)
        except Exception as exc:  # msgpack raises several unrelated types on bad input
            raise DeserializationError(str(exc)) from None

    @staticmethod
    def serialize(data: Any) -> bytes:
        """Encode ``data`` with msgpack."""
        msgpack = require("msgpack", "msgpack")
        try:
            body: bytes = msgpack.packb(
                data, use_bin_type=False, default=MsgPackSerializer.datetime_converter
            )
        except (TypeError, ValueError, OverflowError) as exc:
            raise SerializationError(str(exc)) from None
        return body


class JsonSerializer(BaseSerializer):
    """JSON as aioamqp-ext 0.1 wrote it: ``json.dumps`` with its default separators, a str."""

    @staticmethod
    def deserialize(data: Any) -> Any:
        """Decode a JSON ``str`` or ``bytes``."""
        try:
            return json.loads(data)
        except json.JSONDecodeError as exc:
            raise DeserializationError(str(exc)) from None

    @staticmethod
    def serialize(data: Any) -> str:
        """Encode ``data`` as JSON text."""
        try:
            return json.dumps(data, default=JsonSerializer.datetime_converter)
        except (TypeError, ValueError) as exc:
            raise SerializationError(str(exc)) from None


def get_serializer(serializer: str = JSON) -> type[BaseSerializer]:
    """The serializer class of a name, ``'json'`` or ``'msgpack'``.

    Raises:
        LookupError: any other name.
    """
    try:
        return {JSON: JsonSerializer, MSGPACK: MsgPackSerializer}[serializer]
    except KeyError:
        raise LookupError(f"Unknown serializer: {serializer}") from None
