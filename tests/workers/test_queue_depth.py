"""Queue depth from the worker: amqp_queue_messages and amqp_queue_consumers, read by the
consumer with a passive declare on a channel of its own, against the real broker."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from aioamqp_ext import (
    AmqpTimeoutError,
    BaseConsumer,
    BaseProducer,
    ConfigurationError,
    TopologyError,
)
from aioamqp_ext._amqp import Connection
from aioamqp_ext.config import BrokerUrl
from tests.amqp.conftest import (  # noqa: F401  # broker: the fixture
    Broker,
    broker,
    close_connections_named,
    rabbitmqctl,
    wait_until,
)
from tests.conftest import AmqpNames
from tests.proxy import FaultProxy
from tests.workers.test_amqp_metrics import scrape


class Held(BaseConsumer):
    """Holds every message until ``release`` is set; counts what it was handed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.release = asyncio.Event()
        self.seen = 0

    async def process_request(self, data: Any) -> None:
        self.seen += 1
        await self.release.wait()


def depth(registry: CollectorRegistry, queue: str) -> tuple[float | None, float | None]:
    """What the registry shows now: (amqp_queue_messages, amqp_queue_consumers) of ``queue``."""
    got = scrape(registry)
    labels = (("queue", queue),)
    return got.get(("amqp_queue_messages", labels)), got.get(("amqp_queue_consumers", labels))


async def channels_of(connection_name: str) -> list[int]:
    """The channel count of each broker connection named ``connection_name``."""
    listing = await rabbitmqctl("--no-table-headers", "list_connections", "client_properties",
                                "channels")  # fmt: skip
    return [
        int(line.rsplit("\t", 1)[1])
        for line in listing.splitlines()
        if f'{{"connection_name","{connection_name}"}}' in line
    ]


async def test_the_consumer_exports_ready_messages_and_consumers_of_its_queue(
    amqp_url: str, amqp_names: AmqpNames
) -> None:
    """A held consumer (prefetch 1) and 6 published messages: 5 ready, 1 consumer; once
    released, 0 ready. The message in flight is not ready: it is not counted."""
    registry = CollectorRegistry()
    consumer = Held(url=amqp_url, exchange=amqp_names.exchange, queue=amqp_names.queue,
                    routing_key="k", registry=registry, queue_depth_interval=0.1,
                    close_timeout=5)  # fmt: skip
    queue = amqp_names.queue
    async with consumer, BaseProducer(url=amqp_url, exchange=amqp_names.exchange) as producer:
        await wait_until(lambda: depth(registry, queue) == (0, 1), 15, "an empty queue read")
        for n in range(6):
            await producer.publish_message({"n": n}, routing_key="k")
        await wait_until(lambda: consumer.seen == 1, 15, "one message in flight")
        await wait_until(lambda: depth(registry, queue) == (5, 1), 15, "5 ready, 1 consumer")
        consumer.release.set()
        await wait_until(lambda: consumer.seen == 6, 15, "all handled")
        await wait_until(lambda: depth(registry, queue)[0] == 0, 15, "the queue drained")
    assert depth(registry, queue) == (None, None)  # closed: no reading, rather than a stale one


async def test_two_consumers_of_one_queue_read_two_consumers(
    amqp_url: str, amqp_names: AmqpNames
) -> None:
    """The count is the broker's, over every process: a second worker on the queue shows."""
    registry = CollectorRegistry()
    options = {"url": amqp_url, "exchange": amqp_names.exchange, "queue": amqp_names.queue,
               "routing_key": "k", "queue_depth_interval": 0.1}  # fmt: skip
    async with Held(**options, registry=registry), Held(**options):
        await wait_until(lambda: depth(registry, amqp_names.queue) == (0, 2), 15, "2 consumers")


async def test_the_depth_survives_a_lost_connection_and_never_logs_above_debug(
    amqp_url: str, amqp_names: AmqpNames, unique_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An operator closes the worker's connection: the reading goes (unknown, not stale), the
    consumer heals, the reading comes back, and consuming goes on."""
    caplog.set_level(logging.DEBUG, logger="aioamqp_ext.consumer")
    registry = CollectorRegistry()
    consumer = Held(url=amqp_url, exchange=amqp_names.exchange, queue=amqp_names.queue,
                    routing_key="k", registry=registry, queue_depth_interval=0.1,
                    connection_name=unique_name, reconnect_delay=0.1, reconnect_max_delay=0.2,
                    close_timeout=5)  # fmt: skip
    consumer.release.set()
    queue = amqp_names.queue
    async with consumer, BaseProducer(url=amqp_url, exchange=amqp_names.exchange) as producer:
        await wait_until(lambda: depth(registry, queue) == (0, 1), 15, "the first reading")
        assert await close_connections_named(unique_name, expected=1) == 1
        await wait_until(lambda: consumer.reconnects == 1, 20, "one reconnect")
        await consumer.wait_connected(10)
        await producer.publish_message({"n": 1}, routing_key="k")
        await wait_until(lambda: consumer.seen == 1, 15, "consuming after the heal")
        await wait_until(lambda: depth(registry, queue) == (0, 1), 15, "read again")
    about_depth = [r for r in caplog.records if "its depth was not read" in str(r.msg)]
    assert all(record.levelno <= logging.DEBUG for record in about_depth), about_depth


async def test_no_registry_or_no_interval_opens_no_second_channel(
    amqp_url: str, amqp_names: AmqpNames, unique_name: str
) -> None:
    """The poll is off without metrics and with queue_depth_interval=None: the broker lists one
    channel on the worker's connection; with both, two. Attaching a registry while consuming
    starts it."""
    common = {"url": amqp_url, "exchange": amqp_names.exchange, "queue": amqp_names.queue,
              "routing_key": "k"}  # fmt: skip
    registry = CollectorRegistry()
    bare = Held(**common, connection_name=f"{unique_name}.bare")
    off = Held(**common, connection_name=f"{unique_name}.off", registry=CollectorRegistry(),
               queue_depth_interval=None)  # fmt: skip
    on = Held(**common, connection_name=f"{unique_name}.on", registry=registry,
              queue_depth_interval=0.1)  # fmt: skip
    async with bare, off, on:
        await wait_until(lambda: depth(registry, amqp_names.queue) == (0, 3), 15, "read")

        async def listed() -> dict[str, list[int]]:
            names = ("bare", "off", "on")
            return {name: await channels_of(f"{unique_name}.{name}") for name in names}

        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15
        while (found := await listed()) != {"bare": [1], "off": [1], "on": [2]}:
            assert loop.time() < deadline, found  # the broker lists a channel a little late
            await asyncio.sleep(0.2)
        late = CollectorRegistry()
        bare.attach_metrics(late)
        await wait_until(lambda: depth(late, amqp_names.queue) == (0, 3), 15, "late attach read")


async def test_queue_state_on_a_missing_queue_leaves_the_connection_up(
    amqp_url: str,
    amqp_names: AmqpNames,
    broker: Broker,  # noqa: F811
) -> None:
    """The transport's queue_state: a missing queue is a TopologyError on the side channel
    only; the main channel and the next reading carry on."""
    await broker.declare(queue=amqp_names.queue)
    await broker.channel.basic_publish(b"{}", exchange_name="", routing_key=amqp_names.queue)
    conn = Connection(BrokerUrl.parse(amqp_url), timeout=5)
    await conn.connect(heartbeat=0, confirms=True, name="queue_state test")
    try:
        assert await conn.queue_state(amqp_names.queue) == (1, 0)
        with pytest.raises(TopologyError, match=r"passive check for its depth.*404"):
            await conn.queue_state(f"{amqp_names.queue}.missing")
        assert conn.is_open
        assert await conn.queue_state(amqp_names.queue) == (1, 0)  # a new side channel
        await conn.publish(b"{}", exchange="", routing_key=amqp_names.queue, properties={},
                           mandatory=True)  # fmt: skip  # the main channel still confirms
        assert await conn.queue_state(amqp_names.queue) == (2, 0)
        results = await asyncio.gather(*(conn.queue_state(amqp_names.queue) for _ in range(5)))
        assert results == [(2, 0)] * 5  # concurrent callers: no aioamqp waiter clash
    finally:
        await conn.close()


async def test_queue_state_for_two_queues_at_once_opens_one_side_channel(
    amqp_url: str,
    amqp_names: AmqpNames,
    broker: Broker,  # noqa: F811
    unique_name: str,
) -> None:
    """Readings of two queues started together share the one side channel: the broker lists
    two channels on the connection (the main one and it), not three."""
    await broker.declare(queue=amqp_names.queue)
    await broker.declare(queue=amqp_names.dlq)
    conn = Connection(BrokerUrl.parse(amqp_url), timeout=5)
    await conn.connect(heartbeat=0, confirms=False, name=unique_name)
    try:
        for _ in range(3):
            got = await asyncio.gather(conn.queue_state(amqp_names.queue),
                                       conn.queue_state(amqp_names.dlq))  # fmt: skip
            assert list(got) == [(0, 0), (0, 0)]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15
        while (found := await channels_of(unique_name)) != [2]:
            assert loop.time() < deadline, found  # the broker lists a channel a little late
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


async def test_queue_state_timing_out_keeps_the_connection_and_reuses_the_pending_declare(
    amqp_url: str,
    amqp_names: AmqpNames,
    broker: Broker,  # noqa: F811
    fault_proxy: Callable[[str], Awaitable[tuple[FaultProxy, str]]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A stalled link: the call times out, but, unlike the other calls, the connection is
    kept; once the link flows again the next call gets the pending declare's answer (aioamqp
    cannot forget a waiter: a second declare would clash with it) and aioamqp logs no error."""
    await broker.declare(queue=amqp_names.queue)
    await broker.channel.basic_publish(b"{}", exchange_name="", routing_key=amqp_names.queue)
    proxy, proxied = await fault_proxy(amqp_url)
    conn = Connection(BrokerUrl.parse(proxied), timeout=0.5)
    await conn.connect(heartbeat=0, confirms=False, name="queue_state stall test")
    try:
        assert await conn.queue_state(amqp_names.queue) == (1, 0)
        proxy.stall()
        with pytest.raises(AmqpTimeoutError, match=r"no answer from .* within 0.5 s"):
            await conn.queue_state(amqp_names.queue)
        assert conn.is_open
        proxy.resume()
        assert await conn.queue_state(amqp_names.queue) == (1, 0)
        assert await conn.queue_state(amqp_names.queue) == (1, 0)  # and a fresh one after it
    finally:
        await conn.close()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


@pytest.mark.parametrize("value", [0.05, -1, "15", True, float("nan"), 10**400, 400 * 86_400])
def test_queue_depth_interval_is_bounded_and_named(value: Any) -> None:
    """A typo in the poll interval fails the worker's start, naming the keyword."""
    with pytest.raises(ConfigurationError, match=r"Held: queue_depth_interval: expected seconds "
                       r"between 0.1 and 31622400, or None or 0 \(off\), got "):  # fmt: skip
        Held(queue="q", queue_depth_interval=value)


def test_queue_depth_interval_off_values_and_the_producer_refusing_it() -> None:
    """None and 0 turn it off; a producer, which has no queue to read, refuses the option."""
    assert Held(queue="q", queue_depth_interval=None).config.queue_depth_interval is None
    assert Held(queue="q", queue_depth_interval=0).config.queue_depth_interval == 0
    assert Held(queue="q").config.queue_depth_interval == 15.0
    with pytest.raises(ConfigurationError, match=r"BaseProducer: queue_depth_interval: consumer "
                       r"options, which a producer does not use"):  # fmt: skip
        BaseProducer(queue_depth_interval=5)
