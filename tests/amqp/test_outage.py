"""What callers see when the connection breaks: publishes heal, or fail loudly when told to."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from aioamqp_ext import AmqpConnectionError, BaseConsumer, BaseProducer, PublishTimeoutError
from tests.amqp.conftest import Broker
from tests.conftest import AmqpNames
from tests.proxy import FaultProxy

MakeProxy = Callable[[str], Awaitable[tuple[FaultProxy, str]]]


async def test_publish_in_flight_during_a_cut_is_published_again_once_healed(
    fault_proxy: MakeProxy,
    amqp_url: str,
    amqp_names: AmqpNames,
    broker: Broker,
    topology: dict[str, Any],
) -> None:
    """A publish unconfirmed when the link died must still reach the broker, not vanish."""
    fault, url = await fault_proxy(amqp_url)
    await broker.declare(**topology)
    async with BaseProducer(url=url, exchange=amqp_names.exchange, reconnect_delay=0.05) as p:
        await p.publish_message("before", routing_key="k")
        fault.stall()
        in_flight = asyncio.create_task(p.publish_message("during", routing_key="k"))
        # One scheduling step (not a timing sleep): the task runs up to awaiting its confirm.
        await asyncio.sleep(0)
        assert fault.cut() == 1
        fault.resume()
        await asyncio.wait_for(in_flight, timeout=10)
        await p.publish_message("after", routing_key="k")
    bodies = [m.body for m in await broker.take(amqp_names.queue, 3)]
    assert bodies[0] == b'"before"'
    assert b'"during"' in bodies  # published again on the new connection (at least once)
    assert bodies[-1] == b'"after"'


async def test_with_reconnect_off_a_publish_in_flight_during_a_cut_raises(
    fault_proxy: MakeProxy,
    amqp_url: str,
    amqp_names: AmqpNames,
    broker: Broker,
    topology: dict[str, Any],
) -> None:
    """reconnect=False must report the unconfirmed publish as failed; the next use reconnects."""
    fault, url = await fault_proxy(amqp_url)
    await broker.declare(**topology)
    async with BaseProducer(url=url, exchange=amqp_names.exchange, reconnect=False) as producer:
        fault.stall()
        in_flight = asyncio.create_task(producer.publish_message("during", routing_key="k"))
        await asyncio.sleep(0)  # one scheduling step: the publish awaits its confirm
        assert fault.cut() == 1
        fault.resume()
        with pytest.raises(AmqpConnectionError, match="may or may not have been stored"):
            await asyncio.wait_for(in_flight, timeout=10)
        assert not producer.is_connected
        await producer.publish_message("after", routing_key="k")
    assert [m.body for m in await broker.take(amqp_names.queue, 1)] == [b'"after"']


async def test_with_reconnect_off_serve_raises_when_the_connection_is_lost(
    fault_proxy: MakeProxy, amqp_url: str, amqp_names: AmqpNames, topology: dict[str, Any]
) -> None:
    """With healing off a worker must not sit on a dead connection: serve() ends with an error."""
    fault, url = await fault_proxy(amqp_url)
    consuming = asyncio.Event()

    class Worker(BaseConsumer):
        async def consume(self) -> None:
            await super().consume()
            consuming.set()

        async def process_request(self, data: Any) -> None:
            pass

    worker = Worker(
        url=url,
        **topology,
        reconnect=False,
    )
    serving = asyncio.create_task(worker.serve(handle_signals=False))
    await asyncio.wait_for(consuming.wait(), timeout=10)
    fault.cut()
    with pytest.raises(AmqpConnectionError, match="connection lost"):
        await asyncio.wait_for(serving, timeout=10)
    assert worker.closed
    await worker.close()  # closing again, on a dead connection, is a no-op


async def test_a_stalled_broker_makes_publish_time_out(
    fault_proxy: MakeProxy, amqp_url: str, amqp_names: AmqpNames
) -> None:
    """Nothing hangs: with no confirm in publish_timeout the caller gets a typed timeout."""
    fault, url = await fault_proxy(amqp_url)
    producer = BaseProducer(
        url=url, exchange=amqp_names.exchange, publish_timeout=0.3, connect_timeout=0.5
    )
    await producer.connect()
    fault.stall()
    with pytest.raises(PublishTimeoutError, match=r"not confirmed within 0.3 s") as info:
        await producer.publish_message("x", routing_key="k")
    assert isinstance(info.value, TimeoutError)
    await asyncio.wait_for(producer.close(), timeout=5)  # closing a stalled connection is bounded
