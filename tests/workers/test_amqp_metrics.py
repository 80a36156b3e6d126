"""The amqp_* metrics of consumers and producers, recorded against the real broker."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from aioamqp_ext import BaseConsumer, BaseProducer, UnroutableError
from tests.amqp.conftest import close_connections_named, wait_until
from tests.conftest import AmqpNames
from tests.monitoring.conftest import samples

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(registry: CollectorRegistry) -> Samples:
    """Every sample of ``registry``, as Prometheus would read it."""
    return samples(generate_latest(registry).decode())


class Orders(BaseConsumer):
    """Takes orders; one with ``fail`` raises, one with ``slow`` waits for ``release``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.release = asyncio.Event()
        self.seen = 0

    async def process_request(self, data: Any) -> None:
        self.seen += 1
        if data.get("slow"):
            await self.release.wait()
        if data.get("fail"):
            raise RuntimeError("failing on purpose")


async def test_consumer_counts_acks_retries_and_dead_letters_by_queue(
    amqp_url: str, amqp_names: AmqpNames
) -> None:
    """Each settled message lands in exactly one result, with its handling time observed."""
    registry = CollectorRegistry()
    consumer = Orders(
        url=amqp_url, exchange=amqp_names.exchange, queue=amqp_names.queue, routing_key="o.#",
        dead_letter_exchange=amqp_names.dead_letter_exchange, max_retries=1, prefetch_count=10,
        registry=registry, close_timeout=5,
    )  # fmt: skip
    queue = amqp_names.queue
    async with consumer, BaseProducer(url=amqp_url, exchange=amqp_names.exchange) as producer:
        assert scrape(registry)[("amqp_connection_up", ())] == 1.0
        for data in ({"n": 1}, {"n": 2}, {"fail": True}, {"slow": True}):
            await producer.publish_message(data, routing_key="o.x")
        await wait_until(
            lambda: consumer.seen == 5 and consumer.in_flight == 1, 15, "all but one settled"
        )
        assert scrape(registry)[("amqp_messages_in_flight", (("queue", queue),))] == 1.0
        consumer.release.set()
        await wait_until(lambda: consumer.in_flight == 0, 15, "handlers done")
        got = scrape(registry)
    for result, count in (("ack", 3.0), ("retry", 1.0), ("dead_letter", 1.0)):
        assert (
            got[("amqp_messages_consumed_total", (("queue", queue), ("result", result)))] == count
        )
    assert got[("amqp_message_handling_seconds_count", (("queue", queue),))] == 5.0
    assert got[("amqp_message_handling_seconds_sum", (("queue", queue),))] > 0
    assert got[("amqp_messages_in_flight", (("queue", queue),))] == 0.0
    assert scrape(registry)[("amqp_connection_up", ())] == 0.0  # closed


async def test_producer_counts_confirmed_and_returned_by_exchange(
    amqp_url: str, amqp_names: AmqpNames
) -> None:
    """A confirmed publish and an unroutable mandatory one are told apart."""
    registry = CollectorRegistry()
    async with BaseProducer(
        url=amqp_url, exchange=amqp_names.exchange, registry=registry
    ) as producer:
        await producer.publish_message({"n": 1}, routing_key="nowhere")
        with pytest.raises(UnroutableError):
            await producer.publish_message({"n": 2}, routing_key="nowhere", mandatory=True)
        got = scrape(registry)
    exchange = (("exchange", amqp_names.exchange),)
    for result, count in (("confirmed", 1.0), ("returned", 1.0), ("nacked", 0.0), ("failed", 0.0)):
        assert got[("amqp_messages_published_total", (*exchange, ("result", result)))] == count
    assert got[("amqp_connection_up", ())] == 1.0
    assert got[("amqp_reconnects_total", ())] == 0.0


async def test_a_healed_connection_counts_as_a_reconnect(
    amqp_url: str, amqp_names: AmqpNames, unique_name: str
) -> None:
    """An operator closing the connection shows as connection down, then one reconnect."""
    registry = CollectorRegistry()
    consumer = Orders(
        url=amqp_url, queue=amqp_names.queue, connection_name=unique_name, registry=registry,
        reconnect_delay=0.1, reconnect_max_delay=0.2,
    )  # fmt: skip
    async with consumer:
        assert await close_connections_named(unique_name, expected=1) == 1
        await wait_until(lambda: consumer.reconnects == 1, 20, "one reconnect")
        await consumer.wait_connected(10)
        got = scrape(registry)
    assert got[("amqp_reconnects_total", ())] == 1.0
    assert got[("amqp_connection_up", ())] == 1.0


def test_two_registries_and_an_attach_twice_keep_their_own_numbers() -> None:
    """Attaching is idempotent per registry, and registries never share numbers."""
    first, second = CollectorRegistry(), CollectorRegistry()
    producer = BaseProducer(exchange="x", registry=first)
    producer.attach_metrics(first)
    producer.attach_metrics(second)
    assert ("amqp_messages_published_total", (("exchange", "x"), ("result", "confirmed"))) in (
        scrape(first)
    )
    assert scrape(second)[("amqp_connection_up", ())] == 0.0  # never connected
