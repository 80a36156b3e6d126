"""Outgoing frames: encoded with pamqp, queued, and written once per event-loop iteration.

Writing each publish or ack on its own costs a system call per message; queueing them and
writing everything a loop iteration produced in one go keeps throughput close to the broker's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import pamqp.body
import pamqp.commands
import pamqp.frame
import pamqp.header

from .errors import ConfigurationError

_FRAME_OVERHEAD = 8  # frame header (7 bytes) and frame-end octet
_METHOD_CACHE_SIZE = 256  # encoded basic.publish frames kept, one per destination


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
        self._pending: list[bytes] = []
        self._methods: dict[tuple[str, str, bool], bytes] = {}
        self.closed = False

    def publish(
        self,
        body: bytes,
        *,
        exchange: str,
        routing_key: str,
        properties: Mapping[str, Any],
        mandatory: bool,
    ) -> None:
        """Queue a publish: every frame is encoded first, so a bad property queues nothing.

        Raises:
            ConfigurationError: ``properties`` holds an unknown or ill-typed property.
        """
        chunk = self._chunk or len(body) or 1
        try:
            method = self._method(exchange, routing_key, mandatory)
        except Exception as exc:  # pamqp validates names (length, type)
            raise ConfigurationError(f"publish_message: exchange/routing_key: {exc}") from None
        try:
            props = pamqp.commands.Basic.Properties(**properties)
            header = pamqp.header.ContentHeader(body_size=len(body), properties=props)
            data = [method, pamqp.frame.marshal(header, self.channel_id)]
        except Exception as exc:  # pamqp raises TypeError, ValueError, struct.error ...
            raise ConfigurationError(f"publish_message: properties: {exc}") from None
        data.extend(
            pamqp.frame.marshal(pamqp.body.ContentBody(body[i : i + chunk]), self.channel_id)
            for i in range(0, len(body), chunk)
        )
        self._append(data)

    def _method(self, exchange: str, routing_key: str, mandatory: bool) -> bytes:
        """The encoded basic.publish frame; the same few destinations recur, so it is cached."""
        key = (exchange, routing_key, mandatory)
        method = self._methods.get(key)
        if method is None:
            if len(self._methods) >= _METHOD_CACHE_SIZE:
                self._methods.clear()
            publish = pamqp.commands.Basic.Publish(
                exchange=exchange, routing_key=routing_key, mandatory=mandatory
            )
            method = self._methods[key] = pamqp.frame.marshal(publish, self.channel_id)
        return method

    def ack(self, delivery_tag: int) -> None:
        """Queue a basic.ack of one delivery."""
        self._queue([pamqp.commands.Basic.Ack(delivery_tag)])

    def reject(self, delivery_tag: int, *, requeue: bool) -> None:
        """Queue a basic.reject of one delivery."""
        self._queue([pamqp.commands.Basic.Reject(delivery_tag, requeue)])

    def _queue(self, frames: list[Any]) -> None:
        self._append([pamqp.frame.marshal(frame, self.channel_id) for frame in frames])

    def _append(self, data: list[bytes]) -> None:
        if not self._pending:
            asyncio.get_running_loop().call_soon(self.flush)
        self._pending.extend(data)

    def flush(self) -> None:
        """Write what is queued now (also called before any other frame must follow it)."""
        pending, self._pending = self._pending, []
        if pending and not self.closed:
            self._write(pending)
