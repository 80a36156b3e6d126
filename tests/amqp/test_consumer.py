"""BaseConsumer against the real broker: at-least-once, dead-lettering, draining, concurrency."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import pytest

from aioamqp_ext import BaseConsumer, BaseProducer, TopologyError
from tests.amqp.conftest import Broker
from tests.conftest import AmqpNames


class Collector(BaseConsumer):
    """Records every payload; ``done`` is set once ``expect`` of them arrived."""

    def __init__(self, *args: Any, expect: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.items: list[Any] = []
        self.expect = expect
        self.done = asyncio.Event()

    async def process_request(self, data: Any) -> None:
        if isinstance(data, dict) and data.get("fail"):
            raise RuntimeError("handler failed on purpose")
        self.items.append(data)
        if len(self.items) >= self.expect:
            self.done.set()


async def publish_all(url: str, exchange: str, messages: list[tuple[Any, str]], **kw: Any) -> None:
    async with BaseProducer(url=url, exchange=exchange, **kw) as producer:
        await asyncio.gather(*(producer.publish_message(p, routing_key=k) for p, k in messages))


async def test_round_trip_of_10000_messages_over_several_routing_keys(
    amqp_url: str, amqp_names: AmqpNames
) -> None:
    """Every confirmed message reaches the consumer exactly once per binding, at speed."""
    keys = ["orders.created", "orders.paid", "audit.x.y"]
    consumer = Collector(
        url=amqp_url,
        exchange=amqp_names.exchange,
        queue=amqp_names.queue,
        routing_key=["orders.*", "audit.#"],
        prefetch_count=100,
        expect=10_000,
    )
    async with consumer:
        started = time.perf_counter()
        await publish_all(
            amqp_url, amqp_names.exchange, [({"i": i}, keys[i % 3]) for i in range(10_000)]
        )
        await asyncio.wait_for(consumer.done.wait(), timeout=60)
        elapsed = time.perf_counter() - started
    assert sorted(item["i"] for item in consumer.items) == list(range(10_000))
    print(f"\n10,000-message round trip: {elapsed:.2f} s, {10_000 / elapsed:,.0f} msg/s")


async def test_failing_and_poison_messages_go_to_the_dlq_and_consuming_goes_on(
    amqp_url: str,
    amqp_names: AmqpNames,
    broker: Broker,
    caplog: pytest.LogCaptureFixture,
    topology: dict[str, Any],
) -> None:
    """A raising handler or bad body must not be lost, nor block the messages after it."""
    consumer = Collector(
        url=amqp_url,
        **topology,
        dead_letter_exchange=amqp_names.dead_letter_exchange,
        expect=1,
    )
    async with consumer:
        await publish_all(amqp_url, amqp_names.exchange, [({"fail": True}, "k")])
        await broker.channel.basic_publish(
            b"{not json",
            amqp_names.exchange,
            "k",
            properties={"content_type": "application/json", "message_id": "bad-json"},
        )
        await broker.channel.basic_publish(
            b"\xff\xfe", amqp_names.exchange, "k", properties={"message_id": "not-utf8"}
        )
        await broker.channel.basic_publish(
            b"x", amqp_names.exchange, "k", properties={"content_type": "image/png"}
        )
        await publish_all(amqp_url, amqp_names.exchange, [({"ok": 1}, "k")])
        await asyncio.wait_for(consumer.done.wait(), timeout=10)
    assert consumer.items == [{"ok": 1}]
    dead = await broker.take(amqp_names.dlq, 4)
    assert {m.body for m in dead} == {b'{"fail":true}', b"{not json", b"\xff\xfe", b"x"}
    assert all(m.headers["x-death"][0]["reason"] == "rejected" for m in dead)
    assert await broker.message_count(amqp_names.queue) == 0
    rejected = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(rejected) == 4  # logged once each
    assert any("not-utf8" in r.getMessage() and "not UTF-8" in r.getMessage() for r in rejected)
    assert not any("not json" in r.getMessage() for r in rejected)  # never the body


async def test_bounded_retries_then_dead_letter(
    amqp_url: str, amqp_names: AmqpNames, broker: Broker, topology: dict[str, Any]
) -> None:
    """max_retries re-runs a failing handler, then dead-letters; a later success is acked."""
    attempts: dict[str, int] = {}
    settled = asyncio.Event()

    class Flaky(BaseConsumer):
        async def process_request(self, data: Any) -> None:
            attempts[data] = attempts.get(data, 0) + 1
            if data == "flaky" and attempts[data] == 3:
                settled.set()
                return
            raise RuntimeError(f"attempt {attempts[data]}")

    consumer = Flaky(
        url=amqp_url,
        **topology,
        dead_letter_exchange=amqp_names.dead_letter_exchange,
        max_retries=2,
    )
    async with consumer:
        await publish_all(amqp_url, amqp_names.exchange, [("doomed", "k"), ("flaky", "k")])
        dead = await broker.take(amqp_names.dlq, 1)
        await asyncio.wait_for(settled.wait(), timeout=10)
    assert attempts == {"doomed": 3, "flaky": 3}
    assert dead[0].body == b'"doomed"'
    assert dead[0].headers["x-aioamqp-ext-retries"] == 2
    assert await broker.message_count(amqp_names.queue) == 0


async def test_close_drains_in_flight_handlers_and_leaves_nothing_unacked(
    amqp_url: str, amqp_names: AmqpNames, broker: Broker, topology: dict[str, Any]
) -> None:
    """Shutdown must finish and ack what is running, and leave the rest in the queue."""
    started: list[int] = []
    finished: list[int] = []
    all_started = asyncio.Event()
    release = asyncio.Event()

    class Slow(BaseConsumer):
        async def process_request(self, data: Any) -> None:
            started.append(data)
            if len(started) == 5:
                all_started.set()
            await release.wait()
            finished.append(data)

    consumer = Slow(
        url=amqp_url,
        **topology,
        prefetch_count=5,
    )
    await consumer.consume()
    await publish_all(amqp_url, amqp_names.exchange, [(i, "k") for i in range(20)])
    await asyncio.wait_for(all_started.wait(), timeout=10)
    closing = asyncio.create_task(consumer.close())
    second = asyncio.create_task(consumer.close())  # idempotent: waits for the same drain
    release.set()
    await asyncio.wait_for(asyncio.gather(closing, second), timeout=10)
    assert len(finished) >= 5
    assert sorted(finished) == sorted(started)  # every handler that started was allowed to end
    assert await broker.message_count(amqp_names.queue) == 20 - len(finished)  # all acked


async def test_close_timeout_cancels_stuck_handlers_and_the_broker_redelivers(
    amqp_url: str, amqp_names: AmqpNames, broker: Broker, topology: dict[str, Any]
) -> None:
    """A handler stuck past close_timeout is cancelled; its message is requeued, not lost."""
    entered = asyncio.Event()

    class Stuck(BaseConsumer):
        async def process_request(self, data: Any) -> None:
            entered.set()
            await asyncio.Event().wait()

    consumer = Stuck(
        url=amqp_url,
        **topology,
        close_timeout=0.2,
    )
    await consumer.consume()
    await publish_all(amqp_url, amqp_names.exchange, [("stuck", "k")])
    await asyncio.wait_for(entered.wait(), timeout=10)
    await consumer.close()
    assert await broker.message_count(amqp_names.queue) == 1


async def test_concurrency_reaches_prefetch_count_and_never_exceeds_it(
    amqp_url: str, amqp_names: AmqpNames, topology: dict[str, Any]
) -> None:
    """aioamqp runs callbacks one at a time (https://github.com/Polyconseil/aioamqp/issues/150);
    we must run prefetch_count at once."""
    active = 0
    peak = 0
    handled = 0
    full = asyncio.Event()
    all_done = asyncio.Event()
    gate = asyncio.Event()

    class Counting(BaseConsumer):
        async def process_request(self, data: Any) -> None:
            nonlocal active, peak, handled
            active += 1
            peak = max(peak, active)
            if active == 4:
                full.set()
            await gate.wait()
            active -= 1
            handled += 1
            if handled == 40:
                all_done.set()

    consumer = Counting(
        url=amqp_url,
        **topology,
        prefetch_count=4,
    )
    async with consumer:
        await publish_all(amqp_url, amqp_names.exchange, [(i, "k") for i in range(40)])
        await asyncio.wait_for(full.wait(), timeout=10)
        gate.set()
        await asyncio.wait_for(all_done.wait(), timeout=10)
    assert peak == 4


async def test_msgpack_and_custom_serializers_round_trip(
    amqp_url: str, amqp_names: AmqpNames, topology: dict[str, Any]
) -> None:
    """A JSON consumer reads msgpack and custom content types it knows, by content_type."""

    class Upper:
        content_type = "application/json"  # a custom serializer under a known content type

        def serialize(self, payload: Any) -> bytes:
            return str(payload).upper().join('""').encode()

        def deserialize(self, body: bytes) -> Any:
            return body.decode().strip('"').lower()

    consumer = Collector(
        url=amqp_url,
        **topology,
        serializer=Upper(),
        expect=3,
    )
    async with consumer:
        await publish_all(
            amqp_url, amqp_names.exchange, [({"m": [1, 2]}, "k")], serializer="msgpack"
        )
        await publish_all(amqp_url, amqp_names.exchange, [(b"\x00raw", "k")], serializer=bytes)
        await publish_all(amqp_url, amqp_names.exchange, [("Shout", "k")], serializer=Upper())
        await asyncio.wait_for(consumer.done.wait(), timeout=10)
    assert sorted(map(repr, consumer.items)) == sorted(
        map(repr, [{"m": [1, 2]}, b"\x00raw", "shout"])
    )


async def test_default_exchange_and_quorum_queue_arguments(
    amqp_url: str, amqp_names: AmqpNames
) -> None:
    """exchange='' with queue_arguments (a quorum queue) works end to end."""
    consumer = Collector(
        url=amqp_url,
        exchange="",
        queue=amqp_names.queue,
        queue_arguments={"x-queue-type": "quorum"},
        prefetch_count=10,
        expect=3,
    )
    async with consumer:
        producer = BaseProducer(url=amqp_url, exchange="", queue=amqp_names.queue)
        async with producer:
            for i in range(3):
                await producer.publish_message(i, mandatory=True)
        await asyncio.wait_for(consumer.done.wait(), timeout=10)
    assert sorted(consumer.items) == [0, 1, 2]


async def test_passive_consumer_fails_on_a_missing_queue(
    amqp_url: str, amqp_names: AmqpNames
) -> None:
    """passive=True must report missing topology instead of creating it."""
    consumer = Collector(url=amqp_url, exchange="", queue=amqp_names.queue, passive=True)
    with pytest.raises(TopologyError, match=r"queue '.*' \(passive check\).*404"):
        await consumer.consume()
    await consumer.close()


def test_run_consumes_until_stopped_then_closes(
    amqp_url: str, amqp_names: AmqpNames, topology: dict[str, Any]
) -> None:
    """run() is the worker main: it blocks while consuming and closes gracefully on stop()."""
    consuming = threading.Event()
    received = threading.Event()

    class Worker(BaseConsumer):
        async def consume(self) -> None:
            await super().consume()
            consuming.set()

        async def process_request(self, data: Any) -> None:
            assert data == "job"
            received.set()

    worker = Worker(url=amqp_url, **topology)
    thread = threading.Thread(target=worker.run, kwargs={"handle_signals": False})
    thread.start()
    try:
        assert consuming.wait(timeout=10)
        producer = BaseProducer(url=amqp_url, exchange=amqp_names.exchange)
        _ = producer.publish_message("job", routing_key="k", mandatory=True)
        _ = producer.close()
        assert received.wait(timeout=10)
    finally:
        worker.stop()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert worker.closed


async def test_plain_def_handler_is_supported(amqp_url: str, amqp_names: AmqpNames) -> None:
    """A synchronous process_request must be called and acked, not fail on a missing await."""
    got = asyncio.Event()

    class Plain(BaseConsumer):
        def process_request(self, data: Any) -> None:
            assert data == {"sync": True}
            got.set()

    async with Plain(url=amqp_url, exchange="", queue=amqp_names.queue, prefetch_count=3):
        await publish_all(amqp_url, "", [({"sync": True}, amqp_names.queue)])
        await asyncio.wait_for(got.wait(), timeout=10)
