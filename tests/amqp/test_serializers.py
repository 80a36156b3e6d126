"""Serializers: the built-in ones, custom objects, and choosing by content type."""

from __future__ import annotations

import pytest

from aioamqp_ext import (
    DeserializationError,
    JsonSerializer,
    MsgpackSerializer,
    RawSerializer,
    SerializationError,
    Serializer,
)
from aioamqp_ext.serializers import get_serializer, serializer_for


class Rot13:
    """A custom serializer: any object with content_type, serialize and deserialize."""

    content_type = "text/x-rot13"

    def serialize(self, payload: str) -> bytes:
        return payload.translate(_ROT13).encode()

    def deserialize(self, body: bytes) -> str:
        return body.decode().translate(_ROT13)


_ROT13 = str.maketrans("abcdefghijklmnopqrstuvwxyz", "nopqrstuvwxyzabcdefghijklm")


@pytest.mark.parametrize("name", ["json", "msgpack"])
def test_builtin_serializers_round_trip(name: str) -> None:
    """What a producer serializes, a consumer must get back unchanged."""
    serializer = get_serializer(name)
    payload = {"id": 7, "tags": ["a", "é"], "nested": {"ok": True}}
    assert serializer.deserialize(serializer.serialize(payload)) == payload


def test_raw_serializer_passes_bytes_and_refuses_the_rest() -> None:
    """Raw mode must never guess an encoding for non-bytes payloads."""
    raw = get_serializer("raw")
    assert raw.serialize(bytearray(b"\x00\xff")) == b"\x00\xff"
    assert get_serializer(bytes).deserialize(b"\x01") == b"\x01"
    with pytest.raises(SerializationError, match="raw serializer publishes bytes, got str"):
        raw.serialize("text")


def test_custom_serializer_object_is_accepted() -> None:
    """Plug-in serializers only need the small Serializer protocol."""
    custom = Rot13()
    assert isinstance(custom, Serializer)
    assert get_serializer(custom) is custom


def test_json_errors_are_typed_and_do_not_quote_the_body() -> None:
    """Poison bodies must be reported without echoing their (possibly sensitive) content."""
    with pytest.raises(DeserializationError, match="not valid JSON") as info:
        JsonSerializer().deserialize(b'{"secret": ')
    assert "secret" not in str(info.value)
    with pytest.raises(DeserializationError, match="not UTF-8"):
        JsonSerializer().deserialize(b"\xff\xfe")
    with pytest.raises(SerializationError, match="not JSON serializable"):
        JsonSerializer().serialize(object())


def test_content_type_picks_the_deserializer() -> None:
    """A consumer must read a msgpack message even when it publishes JSON itself."""
    default = JsonSerializer()
    assert serializer_for(None, default) is default
    assert serializer_for("application/json; charset=utf-8", default) is default
    assert isinstance(serializer_for("application/x-msgpack", default), MsgpackSerializer)
    assert isinstance(serializer_for("application/octet-stream", default), RawSerializer)
    custom = Rot13()
    assert serializer_for("text/x-rot13", custom) is custom
    with pytest.raises(DeserializationError, match="unknown content type 'image/png'"):
        serializer_for("image/png", default)
