"""Outgoing frames: encoded with pamqp, queued, and written once per event-loop iteration.

Writing each publish or ack on its own costs a system call per message; queueing them and
writing everything a loop iteration produced in one go keeps throughput close to the broker's.
"""

from __future__ import annotations

import asyncio
import math
import struct
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import pamqp.body
import pamqp.commands
import pamqp.encode
import pamqp.frame
import pamqp.header

from ..errors import ConfigurationError

_FRAME_OVERHEAD = 8  # frame header (7 bytes) and frame-end octet
_METHOD_CACHE_SIZE = 256  # encoded basic.publish frames kept, one per destination
Destination = tuple[str, str, bool]  # where a publish goes: exchange, routing key, mandatory
# basic.ack and basic.reject, encoded by hand (pamqp takes ~15 us a frame; this ~0.3 us):
# frame type 1 (method), channel, payload size 13, class 60, method 80 (ack) or 90 (reject),
# delivery tag, one octet of flags (multiple / requeue), frame end 0xCE.
_SETTLE = struct.Struct(">BHIHHQBB")
_FRAME_METHOD, _FRAME_END, _BASIC, _ACK, _REJECT = 1, 0xCE, 60, 80, 90
# A content header of the properties every publish of ours carries, encoded by hand (pamqp
# validates and encodes property by property: ~20 us a message). Anything else goes to pamqp.
_HEADER_START = struct.Struct(">BHIHHQH")  # frame type 2, channel, size, class, weight, size, flags
_BODY_START = struct.Struct(">BHI")  # frame type 3, channel, size
_END = b"\xce"
_QUICK_FLAGS = {"content_type": 0x8000, "delivery_mode": 0x1000, "message_id": 0x0080,
                "timestamp": 0x0040}  # fmt: skip  # in the order AMQP encodes them


_SHORT_STRINGS = ("content_type", "content_encoding", "correlation_id", "reply_to", "expiration",
                  "message_id", "message_type", "user_id", "app_id", "cluster_id")  # fmt: skip
_KNOWN = (*_SHORT_STRINGS, "headers", "delivery_mode", "priority", "timestamp")
# seconds from 1970: AMQP has 64 bits, but readers (pamqp, so aioamqp and aio-pika) take a
# value past 2**32 - 1 (February 2106) for milliseconds
_MAX_TIMESTAMP = 2**32 - 1


def properties_problem(properties: Mapping[str, Any]) -> str | None:
    """What keeps ``properties`` from being sent as AMQP basic properties (naming the
    property), or None: checked before a frame is written, so a bad one sends nothing."""
    for name, value in properties.items():
        if value is None:
            continue
        if name in _SHORT_STRINGS:
            if not isinstance(value, str):
                return f"{name}: expected a str, got {type(value).__name__}"
            try:
                size = len(value.encode())
            except UnicodeEncodeError:
                return f"{name}: expected text UTF-8 can encode (no lone surrogates)"
            if size > 255:
                return f"{name}: expected at most 255 bytes in UTF-8, got {size}"
            if name == "expiration" and value and not (value.isascii() and value.isdigit()):
                # RabbitMQ closes the channel over any other expiration
                return f"expiration: expected milliseconds as a str of digits, got {value!r:.40}"
        elif name == "delivery_mode":
            if type(value) is not int or value not in (1, 2):
                return f"delivery_mode: expected 1 (transient) or 2 (persistent), got {value!r:.40}"
        elif name == "priority":
            if type(value) is not int or not 0 <= value <= 255:
                return f"priority: expected an integer from 0 to 255, got {value!r:.40}"
        elif name == "timestamp":
            if not isinstance(value, datetime):
                return f"timestamp: expected a datetime, got {type(value).__name__}"
            aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
            if not 0 <= aware.timestamp() <= _MAX_TIMESTAMP:
                return f"timestamp: expected 1970 to 2106, got {value.isoformat()}"
        elif name == "headers":
            if not isinstance(value, Mapping):
                return f"headers: expected a dict, got {type(value).__name__}"
            if (problem := table_problem(value)) is not None:
                return f"headers: {problem}"
        elif name not in _KNOWN:
            return f"unknown property {name!r:.60} (known: {', '.join(_KNOWN)})"
    return None


def table_problem(table: Mapping[str, Any]) -> str | None:
    """What keeps ``table`` (queue arguments, headers) from being encoded as an AMQP table as
    given, or None: pamqp would cut a key past 128 bytes, and refuses what it cannot encode."""
    if (problem := _keys_problem(table, depth=0)) is not None:
        return problem
    try:
        pamqp.encode.field_table(dict(table))
    except RecursionError:
        return "nested too deeply for an AMQP table"
    except Exception as exc:  # pamqp raises TypeError, ValueError, struct.error ...
        return f"cannot be encoded as an AMQP table ({type(exc).__name__}: {exc!s:.80})"
    return None


_FLOAT = struct.Struct(">f")
_MAX_DEPTH = 32  # tables within tables (and arrays) an AMQP table of ours may nest


def _keys_problem(value: Any, depth: int) -> str | None:
    if depth > _MAX_DEPTH:
        return f"nested more than {_MAX_DEPTH} levels deep"
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"expected str keys, got {type(key).__name__}"
            try:
                size = len(key.encode())
            except UnicodeEncodeError:
                return "expected keys UTF-8 can encode (no lone surrogates)"
            if size > 128:
                return f"a key of {size} bytes: at most 128 (AMQP field names)"
            if (problem := _keys_problem(item, depth + 1)) is not None:
                return problem
    elif isinstance(value, list | tuple):
        for item in value:
            if (problem := _keys_problem(item, depth + 1)) is not None:
                return problem
    elif isinstance(value, float) and not math.isfinite(value):
        # RabbitMQ cannot hold it: it closes the connection (541), and a retried publish again
        return f"the float {value!r} cannot be sent: RabbitMQ closes the connection over it"
    elif isinstance(value, float) and not _single(value):
        return (
            f"the float {value!r:.30} would arrive changed: pamqp sends floats in 32 bits; "
            "send a decimal.Decimal or a str"
        )
    return None


def _single(value: float) -> bool:
    """Whether ``value`` survives pamqp's 32-bit encoding of a float unchanged."""
    try:
        return bool(_FLOAT.unpack(_FLOAT.pack(value))[0] == value)
    except OverflowError:
        return False


def _quick_header(channel_id: int, body_size: int, properties: Mapping[str, Any]) -> bytes | None:
    """The content header frame of ``properties`` when it holds only the usual properties with
    plainly valid values (byte for byte what pamqp would send); else None."""
    if not all(name in _QUICK_FLAGS for name in properties):
        return None
    flags = 0
    parts: list[bytes] = []
    for name, flag in _QUICK_FLAGS.items():
        value = properties.get(name)
        if value is None or value == "":  # pamqp leaves both out
            continue
        if name == "delivery_mode":
            if type(value) is not int or value not in (1, 2):
                return None
            parts.append(b"\x01" if value == 1 else b"\x02")
        elif name == "timestamp":
            if type(value) is not datetime:
                return None
            if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
                value = value.replace(tzinfo=UTC)
            parts.append(int(value.timestamp()).to_bytes(8, "big"))
        else:
            if type(value) is not str:
                return None
            encoded = value.encode()
            if len(encoded) > 255:
                return None
            parts += (bytes((len(encoded),)), encoded)
        flags |= flag
    payload = b"".join(parts)
    start = _HEADER_START.pack(2, channel_id, 14 + len(payload), _BASIC, 0, body_size, flags)
    return b"".join((start, payload, _END))


class Outbox:
    """Frames of one channel waiting for the next flush.

    Args:
        channel_id: the AMQP channel the frames belong to.
        write: writes a list of encoded frames to the socket, in order.
        frame_max: the negotiated maximum frame size (0: no limit).
    """

    def __init__(
        self, channel_id: int, write: Callable[[list[bytes]], None], frame_max: int
    ) -> None:
        self.channel_id = channel_id
        self._write = write
        self._chunk = max(frame_max - _FRAME_OVERHEAD, 0)
        self._frame_max = frame_max
        self._pending: list[bytes] = []
        self._methods: dict[Destination, bytes] = {}
        self.closed = False

    def publish(
        self, body: bytes, properties: Mapping[str, Any], to: Destination, *, now: bool = False
    ) -> None:
        """Queue a publish of ``body`` to ``to`` (exchange, routing key, mandatory): every frame
        is encoded first, so a bad property queues nothing.

        With ``now`` and nothing else queued, the frames are written at once.

        Raises:
            ConfigurationError: ``properties`` holds an unknown or ill-typed property.
        """
        problem = properties_problem(properties)
        if problem is not None:
            raise ConfigurationError(f"publish_message: properties: {problem}")
        chunk = self._chunk or len(body) or 1
        try:
            method = self._method(to)
        except Exception as exc:  # pamqp validates names (length, type)
            raise ConfigurationError(f"publish_message: exchange/routing_key: {exc}") from None
        header = _quick_header(self.channel_id, len(body), properties)
        if header is None:
            try:
                props = pamqp.commands.Basic.Properties(**properties)
                content = pamqp.header.ContentHeader(body_size=len(body), properties=props)
                header = pamqp.frame.marshal(content, self.channel_id)
            except Exception as exc:  # pamqp raises TypeError, ValueError, struct.error ...
                raise ConfigurationError(f"publish_message: properties: {exc}") from None
        if self._frame_max and len(header) > self._frame_max:  # the broker would close us
            raise ConfigurationError(
                f"publish_message: properties: {len(header)} bytes encoded (headers included), "
                f"more than a frame the broker takes ({self._frame_max} bytes)"
            )
        if len(body) <= chunk:  # one body frame: the usual case
            start = _BODY_START.pack(3, self.channel_id, len(body))
            data = [method, header, start, body, _END] if body else [method, header]
        else:
            data = [method, header]
            for i in range(0, len(body), chunk):
                piece = body[i : i + chunk]
                data += (_BODY_START.pack(3, self.channel_id, len(piece)), piece, _END)
        if now and not self._pending and not self.closed:
            self._write(data)
        else:
            self._append(data)

    def _method(self, to: Destination) -> bytes:
        """The encoded basic.publish frame; the same few destinations recur, so it is cached."""
        method = self._methods.get(to)
        if method is None:
            if len(self._methods) >= _METHOD_CACHE_SIZE:
                self._methods.clear()
            exchange, routing_key, mandatory = to
            publish = pamqp.commands.Basic.Publish(
                exchange=exchange, routing_key=routing_key, mandatory=mandatory
            )
            method = self._methods[to] = pamqp.frame.marshal(publish, self.channel_id)
        return method

    def ack(self, delivery_tag: int, *, now: bool = False) -> None:
        """Queue a basic.ack of one delivery; ``now``: write it at once if nothing is queued."""
        frame = _SETTLE.pack(
            _FRAME_METHOD, self.channel_id, 13, _BASIC, _ACK, delivery_tag, 0, _FRAME_END
        )
        if now and not self._pending and not self.closed:
            self._write([frame])
        else:
            self._append([frame])

    def reject(self, delivery_tag: int, *, requeue: bool) -> None:
        """Queue a basic.reject of one delivery."""
        flags = int(requeue)
        frame = _SETTLE.pack(
            _FRAME_METHOD, self.channel_id, 13, _BASIC, _REJECT, delivery_tag, flags, _FRAME_END
        )
        self._append([frame])

    def _append(self, data: list[bytes]) -> None:
        if not self._pending:
            asyncio.get_running_loop().call_soon(self.flush)
        self._pending.extend(data)

    def flush(self) -> None:
        """Write what is queued now (also called before any other frame must follow it)."""
        pending, self._pending = self._pending, []
        if pending and not self.closed:
            self._write(pending)
