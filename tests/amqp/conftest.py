"""Helpers for the aioamqp_ext tests: a raw aioamqp side-channel to the real broker.

The raw channel is only for set-up and inspection (what reached a queue, how many messages
wait in it); the code under test always talks to the broker through aioamqp_ext.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.conftest import amqp_connect


@dataclass
class RawMessage:
    """A message as it sits in a queue: body, properties and routing key."""

    body: bytes
    properties: Any
    routing_key: str

    @property
    def headers(self) -> dict[str, Any]:
        return dict(self.properties.headers or {})


@dataclass
class Broker:
    """A raw aioamqp connection to the test broker."""

    url: str
    protocol: Any
    transport: Any
    channel: Any = field(default=None)

    async def declare(
        self, *, exchange: str = "", queue: str = "", routing_key: str = "", **queue_kw: Any
    ) -> None:
        """Declare a durable topic exchange and/or a durable queue bound to it."""
        if exchange:
            await self.channel.exchange_declare(exchange, "topic", durable=True)
        if queue:
            await self.channel.queue_declare(queue, durable=True, **queue_kw)
        if exchange and queue:
            await self.channel.queue_bind(queue, exchange, routing_key)

    async def message_count(self, queue: str) -> int:
        """Ready messages in ``queue`` (a passive declare: the queue must exist)."""
        result = await self.channel.queue_declare(queue, passive=True)
        return int(result["message_count"])

    async def get(self, queue: str) -> RawMessage | None:
        """Take one message out of ``queue`` (acked), or None when it is empty."""
        import aioamqp

        try:
            data = await self.channel.basic_get(queue, no_ack=True)
        except aioamqp.EmptyQueue:
            return None
        return RawMessage(data["message"], data["properties"], data["routing_key"])

    async def take(self, queue: str, count: int, timeout: float = 15.0) -> list[RawMessage]:
        """Consume exactly ``count`` messages from ``queue`` (waiting for them), acked."""
        got: list[RawMessage] = []
        enough = asyncio.Event()

        async def on_message(channel: Any, body: bytes, envelope: Any, properties: Any) -> None:
            got.append(RawMessage(body, properties, envelope.routing_key))
            await channel.basic_client_ack(envelope.delivery_tag)
            if len(got) >= count:
                enough.set()

        result = await self.channel.basic_consume(on_message, queue_name=queue)
        try:
            await asyncio.wait_for(enough.wait(), timeout)
        finally:
            await self.channel.basic_cancel(result["consumer_tag"])
        return got


@pytest.fixture
async def broker(amqp_url: str) -> AsyncIterator[Broker]:
    """A raw connection to the broker for set-up and inspection, closed afterwards."""
    transport, protocol = await amqp_connect(amqp_url)
    try:
        broker = Broker(amqp_url, protocol, transport)
        broker.channel = await protocol.channel()
        yield broker
    finally:
        await protocol.close()
        transport.close()


class Proxy:
    """A TCP proxy between client and broker that can hold traffic and cut connections."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.held = asyncio.Event()  # set when client bytes arrive while traffic is held

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.writers.update((writer, up_writer))
        for source, sink, from_client in ((reader, up_writer, True), (up_reader, writer, False)):
            task = asyncio.create_task(self._pipe(source, sink, from_client))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _pipe(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, from_client: bool
    ) -> None:
        try:
            while data := await source.read(65536):
                if not self.flowing.is_set() and from_client:
                    self.held.set()
                await self.flowing.wait()
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            sink.close()

    def hold(self) -> None:
        """Stop forwarding (a stalled network): bytes wait in the proxy."""
        self.held.clear()
        self.flowing.clear()

    def cut(self) -> None:
        """Drop every open connection at once, and let new ones flow normally."""
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()
        self.flowing.set()

    async def close(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


@pytest.fixture
async def proxy(amqp_url: str) -> AsyncIterator[tuple[Proxy, str]]:
    """A fault-injecting proxy to the broker, and the URL that goes through it."""
    from urllib.parse import urlsplit

    parts = urlsplit(amqp_url)
    proxy = Proxy(parts.hostname or "127.0.0.1", parts.port or 5672)
    port = await proxy.start()
    netloc = parts.netloc.rsplit("@", 1)
    auth = f"{netloc[0]}@" if len(netloc) == 2 else ""
    try:
        yield proxy, parts._replace(netloc=f"{auth}127.0.0.1:{port}").geturl()
    finally:
        await proxy.close()
