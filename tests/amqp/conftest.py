"""Helpers for the aioamqp_ext tests: a raw aioamqp side-channel to the real broker.

The raw channel is only for set-up and inspection (what reached a queue, how many messages
wait in it); the code under test always talks to the broker through aioamqp_ext.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from aioamqp_ext import AmqpExtError, BaseProducer
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


async def broker_answers(url: str) -> bool:
    """Whether the broker at ``url`` completes an AMQP handshake within 2 s right now."""
    try:
        transport, protocol = await asyncio.wait_for(amqp_connect(url), timeout=2)
    except Exception:  # anything but a working handshake means: not yet
        return False
    await protocol.close()
    transport.close()
    return True


async def wait_for_broker(url: str, timeout: float) -> None:
    """Wait until the broker at ``url`` answers (polling every 0.1 s); fail after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await broker_answers(url):
        assert loop.time() < deadline, f"the broker did not answer within {timeout:g} s"
        await asyncio.sleep(0.1)


async def rabbitmqctl(*args: str) -> str:
    """Run ``rabbitmqctl -q ARGS`` on the test broker's machine; its output (skips without it)."""
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("rabbitmqctl is not installed on this machine")
    proc = await asyncio.create_subprocess_exec(
        "rabbitmqctl",
        "-q",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, f"rabbitmqctl {' '.join(args)}: {err.decode()}"
    return out.decode()


async def close_connections_named(prefix: str, expected: int = 0, timeout: float = 10.0) -> int:
    """Have the broker close (320 CONNECTION_FORCED) every connection whose name starts with
    ``prefix``, as an operator would, without touching anyone else's; returns how many.

    With ``expected``, keep listing until that many were closed or ``timeout`` passed: the
    broker lists a connection that has just been opened only once its handshake is done.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    closed: set[str] = set()
    while True:
        listing = await rabbitmqctl(
            "--no-table-headers", "list_connections", "pid", "client_properties"
        )
        pids = [
            line.split("\t", 1)[0]
            for line in listing.splitlines()
            if f'{{"connection_name","{prefix}' in line
        ]
        for pid in pids:
            if pid not in closed:
                await rabbitmqctl("close_connection", pid, "closed by the aioamqp_ext test suite")
                closed.add(pid)
        if len(closed) >= expected or loop.time() > deadline:
            return len(closed)
        await asyncio.sleep(0.1)  # polling the broker's listing, which has no event to await


async def publish_paced(
    producer: BaseProducer,
    total: int,
    rate: float,
    confirmed: set[str],
    failed: dict[str, str],
    *,
    window: int = 200,
) -> None:
    """Publish ``total`` messages ("0", "1", ...; each its own ``message_id``) at about
    ``rate`` per second with at most ``window`` in flight, recording each message id as
    confirmed or failed (with the error) as its publish returns."""
    loop = asyncio.get_running_loop()
    slots = asyncio.Semaphore(window)
    started = loop.time()

    async def one(message_id: str) -> None:
        try:
            await producer.publish_message(
                message_id, routing_key="k", properties={"message_id": message_id}
            )
        except AmqpExtError as exc:
            failed[message_id] = repr(exc)
        else:
            confirmed.add(message_id)
        finally:
            slots.release()

    tasks = set()
    for n in range(total):
        await slots.acquire()
        tasks.add(asyncio.create_task(one(str(n))))
        ahead = started + n / rate - loop.time()
        if ahead > 0:  # pacing the load, not synchronising anything
            await asyncio.sleep(ahead)
    await asyncio.gather(*tasks)


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``predicate`` until true (every 10 ms); the seconds it took. Fails after ``timeout``."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not predicate():
        if loop.time() - started > timeout:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        await asyncio.sleep(0.01)
    return loop.time() - started
