"""aioamqp_ext.testing: ConsumerHarness, RecordingProducer and the amqp_harness fixture.

The harness's agreement with RabbitMQ is tests/amqp/test_honesty.py; here: what it offers,
its bad input, and the producer that records.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from aioamqp_ext import (
    AmqpTimeoutError,
    BaseConsumer,
    BaseProducer,
    ClosedError,
    ConfigurationError,
    DeserializationError,
    Message,
    UnroutableError,
)
from aioamqp_ext.testing import ConsumerHarness, HarnessError, RecordingProducer
from tests.amqp.conftest import wait_until


class Seen(BaseConsumer):
    """Keeps each message it handles; fails on ``{"fail": true}``, echoes ``{"echo": x}``."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.messages: list[Message] = []

    async def process_request(self, data: Any, message: Message) -> Any:
        self.messages.append(message)
        if isinstance(data, dict) and data.get("fail"):
            raise RuntimeError("asked to fail")
        return {"echo": data["echo"]} if isinstance(data, dict) and "echo" in data else None


class Gate(BaseConsumer):
    """Handlers wait for ``open``; ``running`` counts them."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.open = asyncio.Event()
        self.running = 0
        self.most = 0
        self.started = asyncio.Event()  # set at each handler's start

    async def until_running(self, count: int) -> None:
        while self.running < count:
            self.started.clear()
            await self.started.wait()

    async def process_request(self, data: Any) -> None:
        self.running += 1
        self.most = max(self.most, self.running)
        self.started.set()
        try:
            await self.open.wait()
        finally:
            self.running -= 1


async def test_the_handler_gets_the_message_as_from_a_broker() -> None:
    consumer = Seen(exchange="shop", queue="orders", routing_key="order.*")
    async with ConsumerHarness(consumer) as harness:
        outcome = await harness.deliver(
            {"id": 1}, routing_key="order.paid", headers={"tenant": "acme"}, message_id="m-1"
        )
    assert outcome.result == "ack"
    assert outcome.error is None
    assert outcome.history == ("ack",)
    [message] = consumer.messages
    assert message.data == {"id": 1}
    assert message.body == b'{"id":1}'
    assert (message.exchange, message.routing_key, message.queue) == (
        "shop",
        "order.paid",
        "orders",
    )
    assert message.message_id == "m-1"
    assert message.headers == {"tenant": "acme"}
    assert message.content_type == "application/json"
    assert message.timestamp is not None
    assert message.timestamp.tzinfo is not None
    assert abs((datetime.now(UTC) - message.timestamp).total_seconds()) < 60
    assert message.retries == 0
    assert consumer.closed, "the harness closes its consumer"


async def test_the_default_routing_key_is_the_single_binding_key() -> None:
    consumer = Seen(exchange="shop", queue="orders", routing_key="order.created")
    async with ConsumerHarness(consumer) as harness:
        assert (await harness.deliver({"id": 1})).result == "ack"
    assert consumer.messages[0].routing_key == "order.created"


async def test_a_routing_key_the_bindings_miss_is_refused_naming_it() -> None:
    async with ConsumerHarness(Seen(exchange="shop", queue="orders", routing_key="order.*")) as h:
        with pytest.raises(UnroutableError, match=r"'invoice\.paid'.*'order\.\*'"):
            await h.deliver({"id": 1}, routing_key="invoice.paid")
        with pytest.raises(UnroutableError, match=r"'order\.paid\.late'"):
            await h.deliver({"id": 1}, routing_key="order.paid.late")  # * is one word
        assert (await h.deliver({"id": 1}, routing_key="order.paid")).result == "ack"


async def test_retries_are_followed_to_the_end_without_waiting_their_delays() -> None:
    consumer = Seen(queue="orders", retry_delays=(30, 60), max_retries=3,
                    dead_letter_exchange="dead")  # fmt: skip
    async with ConsumerHarness(consumer) as harness:
        loop = asyncio.get_running_loop()
        started = loop.time()
        outcome = await harness.deliver({"fail": True})
        took = loop.time() - started
        assert harness.dead_letters() == [{"fail": True}]
        assert set(harness.broker.queues) >= {"orders", "orders.dlq", "orders.retry.30000",
                                              "orders.retry.60000"}  # fmt: skip
    assert took < 10, "delays of 30 s and 60 s are not waited for"
    assert outcome.result == "dead_letter"
    assert outcome.attempts == 4
    assert outcome.history == ("retry", "retry", "retry", "dead_letter")
    assert [type(e) for e in outcome.errors] == [RuntimeError] * 4
    assert [m.retries for m in consumer.messages] == [0, 1, 2, 3]


async def test_follow_retries_false_stops_at_the_first_handling() -> None:
    consumer = Seen(queue="orders", max_retries=2)
    async with ConsumerHarness(consumer, follow_retries=False) as harness:
        outcome = await harness.deliver({"fail": True})
        assert outcome.result == "retry"
        assert outcome.attempts == 1
        assert isinstance(outcome.error, RuntimeError)
        assert (await harness.deliver({"id": 2})).result == "ack"
    assert len(consumer.messages) == 2, "the retry's copy was kept out"


async def test_poison_and_reply() -> None:
    async with ConsumerHarness(Seen(queue="orders")) as harness:
        poison = await harness.deliver(body=b"\x00 not json", content_type="application/json")
        replied = await harness.deliver({"echo": 5}, reply_to="amq.rabbitmq.reply-to.x",
                                        correlation_id="c1")  # fmt: skip
        to_queue = await harness.deliver({"echo": 6}, reply_to="my-replies")
        silent = await harness.deliver({"echo": 7})  # no reply_to: nothing sent
        assert [body for body, _ in harness.broker.messages("my-replies")] == [b'{"echo":6}']
    assert poison.result == "dead_letter"
    assert isinstance(poison.error, DeserializationError)
    assert (replied.result, replied.reply) == ("ack", {"echo": 5})
    assert to_queue.reply == {"echo": 6}
    assert silent.reply is None


async def test_prefetch_is_honoured() -> None:
    consumer = Gate(queue="orders", prefetch_count=2)
    async with ConsumerHarness(consumer) as harness:
        deliveries = [asyncio.create_task(harness.deliver({"n": n})) for n in range(5)]
        await consumer.until_running(2)
        for _ in range(20):  # give a third delivery every chance to start
            await asyncio.sleep(0)
        assert consumer.running == 2
        consumer.open.set()
        outcomes = await asyncio.gather(*deliveries)
    assert [o.result for o in outcomes] == ["ack"] * 5
    assert consumer.most == 2


async def test_handler_timeout_is_the_production_one() -> None:
    consumer = Gate(queue="orders", handler_timeout=0.05)
    async with ConsumerHarness(consumer) as harness:
        outcome = await harness.deliver({"n": 1})
    assert outcome.result == "dead_letter"
    assert type(outcome.error).__name__ == "HandlerTimeoutError"


async def test_bad_input_gets_clear_errors() -> None:
    harness = ConsumerHarness(Seen(queue="orders"))
    with pytest.raises(HarnessError, match="not started"):
        await harness.deliver({"id": 1})
    async with harness:
        with pytest.raises(ConfigurationError, match="payload and body: give one") as caught:
            await harness.deliver({"id": 1}, body=b"{}")
        assert isinstance(caught.value, TypeError)
        with pytest.raises(ConfigurationError, match="body: expected bytes"):
            await harness.deliver(body="text")  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match="priority"):
            await harness.deliver({"id": 1}, priority=300)
        with pytest.raises(ConfigurationError, match="unknown property 'colour'"):
            await harness.deliver({"id": 1}, colour="red")
        outcome = await harness.deliver({"id": 1})
        with pytest.raises(ConfigurationError, match=r"no retries configured \(max_retries=0"):
            _ = outcome.attempts
        with pytest.raises(HarnessError, match="already started"):
            await harness.start()
    with pytest.raises(ClosedError, match="is closed"):
        await harness.deliver({"id": 1})
    with pytest.raises(HarnessError, match="already started or closed"):
        await ConsumerHarness(harness.consumer).start()
    with pytest.raises(ConfigurationError, match="expected a BaseConsumer instance"):
        ConsumerHarness(Seen)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="timeout: expected seconds > 0"):
        ConsumerHarness(Seen(queue="orders"), timeout=0)


async def test_a_message_still_unsettled_after_the_timeout_says_so() -> None:
    consumer = Gate(queue="orders", close_timeout=0.01)
    async with ConsumerHarness(consumer, timeout=0.05) as harness:
        with pytest.raises(HarnessError, match=r"not settled within 0\.05 s.*handler_timeout"):
            await harness.deliver({"n": 1})


async def test_closing_while_a_handler_runs_fails_its_delivery() -> None:
    consumer = Gate(queue="orders", close_timeout=0.01)
    harness = ConsumerHarness(consumer)
    await harness.start()
    delivery = asyncio.create_task(harness.deliver({"n": 1}))
    await consumer.until_running(1)
    await harness.close()
    with pytest.raises(ClosedError, match="closed before it was settled"):
        await delivery


# -- RecordingProducer


async def test_the_recording_producer_records_what_a_consumer_would_get() -> None:
    producer = RecordingProducer(exchange="shop", routing_key="order.created")
    await producer.publish_message({"id": 1, "lines": (1, 2)}, properties={"priority": 5})
    await producer.publish_message("x", routing_key="order.paid", mandatory=True)
    first, second = producer.published
    assert first.payload == {"id": 1, "lines": [1, 2]}, "a tuple arrives as a list"
    assert (first.routing_key, first.exchange) == ("order.created", "shop")
    assert first.properties["priority"] == 5
    assert first.properties["delivery_mode"] == 2
    assert first.properties["content_type"] == "application/json"
    assert len(first.properties["message_id"]) == 32
    assert (second.payload, second.routing_key, second.mandatory) == ("x", "order.paid", True)
    assert producer.requests == []
    connected = [producer.is_connected]
    await producer.close()
    connected.append(producer.is_connected)
    assert connected == [True, False]
    with pytest.raises(ClosedError):
        await producer.publish_message({"id": 2})


def test_the_recording_producer_publishes_without_a_running_loop() -> None:
    producer = RecordingProducer(queue="orders")
    _ = producer.publish_message({"id": 1})  # done before it returns: no loop runs
    _ = producer.close()
    assert [p.payload for p in producer.published] == [{"id": 1}]


async def test_the_recording_producer_refuses_what_a_real_publish_refuses(amqp_url: str) -> None:
    """Bad properties and routing keys: the same error type and text as on RabbitMQ."""
    bad: list[dict[str, Any]] = [
        {"properties": {"delivery_mode": ""}},
        {"properties": {"timestamp": datetime(1960, 1, 1, tzinfo=UTC)}},
        {"properties": {"headers": {"k" * 200: 1}}},
        {"properties": {"expiration": "soon"}},
        {"routing_key": "r" * 300},
    ]
    recording = RecordingProducer(queue="x")
    async with BaseProducer(amqp_url, queue="x") as real:
        for case in bad:
            with pytest.raises(ConfigurationError) as in_memory:
                await recording.publish_message({"id": 1}, **case)
            with pytest.raises(ConfigurationError) as on_rabbitmq:
                await real.publish_message({"id": 1}, **case)
            assert str(in_memory.value) == str(on_rabbitmq.value)
    assert recording.published == []


async def test_requests_are_answered_by_a_harness_or_a_function() -> None:
    async with ConsumerHarness(Seen(exchange="shop", queue="orders", routing_key="ask")) as h:
        producer = RecordingProducer(exchange="shop", routing_key="ask", responder=h)
        assert await producer.request({"echo": 1}) == {"echo": 1}
        with pytest.raises(AmqpTimeoutError, match="got no reply"):
            await producer.request({"fail": True})
        [answered, failed] = producer.requests
        assert answered.reply == {"echo": 1}
        assert answered.properties["delivery_mode"] == 1, "requests are transient"
        assert failed.reply is None

    async def later(data: Any) -> Any:
        return {"sum": sum(data)}

    assert await RecordingProducer(responder=later).request([1, 2]) == {"sum": 3}
    assert await RecordingProducer(responder=lambda d: [d, d]).request("x") == ["x", "x"]
    with pytest.raises(HarnessError, match="no responder"):
        await RecordingProducer().request("x")


async def test_a_producer_class_of_your_own_records_through_the_mixin() -> None:
    class Orders(BaseProducer):
        async def created(self, order_id: int) -> None:
            await self.publish_message({"id": order_id}, routing_key="order.created")

    class RecordingOrders(RecordingProducer, Orders):
        pass

    producer = RecordingOrders(exchange="shop")
    await producer.created(7)
    assert [(p.routing_key, p.payload) for p in producer.published] == [
        ("order.created", {"id": 7})
    ]


# -- the pytest plugin


def test_the_fixture_works_in_a_project_of_its_own(tmp_path: Path) -> None:
    """A user's project (pytest-asyncio in strict mode): ``amqp_harness`` comes from the
    plugin's entry point, closes its harnesses at teardown, and nothing of aioamqp_ext is
    imported until a test asks for the fixture."""
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"
    )
    (tmp_path / "conftest.py").write_text(
        textwrap.dedent("""
        import sys

        def pytest_configure(config):  # after the plugins were loaded
            assert "aioamqp_ext" not in sys.modules, "imported by a plugin"
    """)
    )
    (tmp_path / "test_user.py").write_text(
        textwrap.dedent("""
        import pytest
        from aioamqp_ext import BaseConsumer

        class Orders(BaseConsumer):
            async def process_request(self, data):
                if data["total"] < 0:
                    raise ValueError("negative total")

        KEPT = []

        @pytest.mark.asyncio
        async def test_an_order(amqp_harness):
            harness = await amqp_harness(Orders(queue="orders"))
            KEPT.append(harness)
            assert (await harness.deliver({"total": 3})).result == "ack"
            assert (await harness.deliver({"total": -1})).result == "dead_letter"

        def test_it_was_closed():
            assert KEPT and KEPT[0].consumer.closed
    """)
    )
    env = {**os.environ, "PYTHONPATH": ""}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed" in run.stdout


async def test_the_queue_depth_metrics_work_in_memory() -> None:
    """A consumer with metrics reads its queue's depth through the in-memory transport too."""
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    consumer = Gate(queue="orders", prefetch_count=1, registry=registry,
                    queue_depth_interval=0.1)  # fmt: skip
    async with ConsumerHarness(consumer) as harness:
        first = asyncio.create_task(harness.deliver({"n": 1}))
        waiting = [asyncio.create_task(harness.deliver({"n": n})) for n in (2, 3)]
        await consumer.until_running(1)

        def depth() -> float | None:
            return registry.get_sample_value("amqp_queue_messages", {"queue": "orders"})

        await wait_until(lambda: depth() == 2, 5, "amqp_queue_messages 2")
        assert registry.get_sample_value("amqp_queue_consumers", {"queue": "orders"}) == 1
        consumer.open.set()
        await asyncio.gather(first, *waiting)
