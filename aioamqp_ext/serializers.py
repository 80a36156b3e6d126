"""Serializers: how payloads become message bodies and back.

A serializer is any object with a ``content_type`` and ``serialize``/``deserialize`` methods
(the :class:`Serializer` protocol). Built in: JSON (the default), msgpack (needs the ``msgpack``
extra), raw bytes and, for reading only, UTF-8 text. A consumer picks the deserializer from a
message's ``content_type`` when it names a known one, and uses its own serializer otherwise.

JSON and msgpack send a ``datetime`` in a payload as aioamqp-ext 0.1 did, as seconds since
the epoch in local time, with a DeprecationWarning (see :func:`._legacy.legacy_datetime`).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from _aiohttp_booster.optional import require
from _aiohttp_booster.redact import one_line, shown

from ._legacy import legacy_datetime
from .errors import ConfigurationError, DeserializationError, SerializationError

__all__ = [
    "JsonSerializer",
    "MsgpackSerializer",
    "RawSerializer",
    "Serializer",
    "TextSerializer",
    "get_serializer",
]


@runtime_checkable
class Serializer(Protocol):
    """What a serializer provides; pass any such object as ``serializer=``."""

    content_type: str

    def serialize(self, payload: Any) -> bytes:
        """Turn a payload into a message body; raise on payloads it cannot encode."""
        ...

    def deserialize(self, body: bytes) -> Any:
        """Turn a message body back into a payload; raise on bodies it cannot decode."""
        ...


class JsonSerializer:
    """JSON in UTF-8, ``application/json``; the default."""

    content_type = "application/json"

    def serialize(self, payload: Any) -> bytes:
        """Encode ``payload`` as compact JSON (a datetime as 2018 did: deprecated, it warns)."""
        try:
            return json.dumps(
                payload, separators=(",", ":"), ensure_ascii=False, default=_json_default
            ).encode()
        except RecursionError:
            raise SerializationError("payload is nested too deeply (or refers to itself)") from None
        except (TypeError, ValueError) as exc:  # also a lone surrogate, an int too long
            raise SerializationError(f"payload is not JSON serializable: {_short(exc)}") from None

    def deserialize(self, body: bytes) -> Any:
        """Decode a UTF-8 JSON body."""
        try:
            return json.loads(body.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise DeserializationError(f"body is not UTF-8 ({exc.reason})") from None
        except json.JSONDecodeError as exc:
            raise DeserializationError(f"body is not valid JSON ({exc.msg})") from None
        except RecursionError:
            raise DeserializationError("body is JSON nested too deeply") from None
        except ValueError as exc:  # an integer past Python's digit limit
            raise DeserializationError(f"body is not readable JSON ({_short(exc)})") from None


class MsgpackSerializer:
    """MessagePack, ``application/msgpack``; needs ``pip install 'aiohttp-booster[msgpack]'``."""

    content_type = "application/msgpack"

    def __init__(self) -> None:
        self._msgpack = require("msgpack", "msgpack")

    def serialize(self, payload: Any) -> bytes:
        """Encode ``payload`` with msgpack (a datetime as 2018 did: deprecated, it warns)."""
        try:
            body: bytes = self._msgpack.packb(payload, use_bin_type=True, default=_msgpack_default)
        except (TypeError, ValueError, OverflowError) as exc:
            raise SerializationError(f"payload is not msgpack serializable: {exc}") from exc
        return body

    def deserialize(self, body: bytes) -> Any:
        """Decode a msgpack body."""
        try:
            return self._msgpack.unpackb(body, raw=False)
        except Exception as exc:  # msgpack raises several unrelated types on bad input
            raise DeserializationError(
                f"body is not valid msgpack ({type(exc).__name__})"
            ) from None


class RawSerializer:
    """Bytes as they are, ``application/octet-stream``."""

    content_type = "application/octet-stream"

    def serialize(self, payload: Any) -> bytes:
        """Pass bytes-like payloads through; anything else is an error."""
        if isinstance(payload, bytes | bytearray | memoryview):
            return bytes(payload)
        raise SerializationError(
            f"the raw serializer publishes bytes, got {type(payload).__name__}"
        )

    def deserialize(self, body: bytes) -> bytes:
        """Return the body unchanged."""
        return body


class TextSerializer:
    """UTF-8 text, ``text/plain``: ``str`` payloads in, ``str`` out."""

    content_type = "text/plain"

    def serialize(self, payload: Any) -> bytes:
        """Encode a ``str`` payload as UTF-8."""
        if isinstance(payload, str):
            try:
                return payload.encode()
            except UnicodeEncodeError:
                raise SerializationError("payload is not text UTF-8 can encode") from None
        raise SerializationError(f"the text serializer publishes str, got {type(payload).__name__}")

    def deserialize(self, body: bytes) -> str:
        """Decode a UTF-8 body."""
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DeserializationError(f"body is not UTF-8 ({exc.reason})") from None


_BY_NAME: dict[str, type[Serializer]] = {
    "json": JsonSerializer,
    "msgpack": MsgpackSerializer,
    "raw": RawSerializer,
    "bytes": RawSerializer,
    "text": TextSerializer,
}

_BY_CONTENT_TYPE: dict[str, type[Serializer]] = {
    "application/json": JsonSerializer,
    "application/msgpack": MsgpackSerializer,
    "application/x-msgpack": MsgpackSerializer,
    "application/octet-stream": RawSerializer,
    "text/plain": TextSerializer,
}


def get_serializer(
    spec: str | Serializer | type[bytes], *, where: str = "serializer"
) -> Serializer:
    """Resolve ``serializer=``: a name, ``bytes`` (raw) or a serializer object.

    Args:
        spec: ``'json'``, ``'msgpack'``, ``'raw'`` (also ``'bytes'`` or the type ``bytes``),
            ``'text'``, or an object with ``content_type``, ``serialize`` and ``deserialize``.
        where: prefix of error messages, naming the caller.

    Raises:
        ConfigurationError: unknown name or an object missing part of the protocol.
        ImportError: ``'msgpack'`` without the ``msgpack`` extra installed.
    """
    if spec is bytes:
        return RawSerializer()
    if isinstance(spec, str):
        factory = _BY_NAME.get(spec.lower())
        if factory is None:
            names = ", ".join(repr(name) for name in _BY_NAME)
            raise ConfigurationError(
                f"{where}: serializer: unknown serializer {shown(spec)} "
                f"(use one of {names}, or an object with content_type, serialize and deserialize)"
            )
        return factory()
    if isinstance(spec, type):
        raise ConfigurationError(
            f"{where}: serializer: expected an instance, got the class {spec.__name__!r} "
            f"(pass {spec.__name__}() instead)"
        )
    if isinstance(spec, Serializer) and isinstance(spec.content_type, str) and spec.content_type:
        return spec
    raise ConfigurationError(
        f"{where}: serializer: expected a name or an object with content_type (a non-empty str), "
        f"serialize and deserialize, got {shown(spec)}"
    )


def _json_default(value: Any) -> Any:
    """What JSON cannot encode: a datetime as aioamqp-ext 0.1 sent it; anything else refused."""
    if isinstance(value, datetime):
        return legacy_datetime(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _msgpack_default(value: Any) -> Any:
    """What msgpack cannot encode: a datetime as aioamqp-ext 0.1 sent it; the rest refused."""
    if isinstance(value, datetime):
        return legacy_datetime(value)
    raise TypeError(f"can not serialize {type(value).__name__!r} object")


def _short(exc: Exception) -> str:
    return one_line(str(exc), limit=120)


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def serializer_for(content_type: str | None, default: Serializer) -> Serializer:
    """The serializer for a received message's ``content_type``.

    Args:
        content_type: the message's content type, or None when it has none.
        default: the consumer's own serializer, used when the message names no content type
            or names the default's own.

    Raises:
        DeserializationError: the content type is one no known serializer reads.
    """
    if not content_type:
        return default
    media_type = _media_type(content_type)
    if media_type == _media_type(default.content_type):
        return default
    factory = _BY_CONTENT_TYPE.get(media_type)
    if factory is None:
        raise DeserializationError(f"unknown content type {shown(content_type)}")
    try:
        return factory()
    except ImportError as exc:
        raise DeserializationError(f"cannot read content type {content_type!r}: {exc}") from None
