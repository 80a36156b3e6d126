"""The handler's world on the real broker: the Message, delayed retries held by the broker,
handler timeouts and request/reply."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from prometheus_client import CollectorRegistry

from aioamqp_ext import (
    AmqpTimeoutError,
    BaseConsumer,
    BaseProducer,
    HandlerTimeoutError,
    Message,
)
from tests.amqp.conftest import Broker, wait_until
from tests.amqp.test_samples import doc_sample
from tests.conftest import AmqpNames
from tests.monitoring.conftest import poll
from tests.monitoring.test_web import ROOT


class Recorder(BaseConsumer):
    """Keeps every (data, message) it is handed and when; fails as ``fail`` says."""

    def __init__(self, *args: Any, fail: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[tuple[Any, Message, float]] = []
        self.fail = fail or (lambda data, message: False)

    async def process_request(self, data: Any, message: Message) -> None:
        self.seen.append((data, message, asyncio.get_running_loop().time()))
        if self.fail(data, message):
            raise RuntimeError(f"failing on purpose (attempt {message.retries + 1})")


async def test_a_message_from_a_foreign_client_shows_every_property(
    amqp_url: str, amqp_names: AmqpNames, topology: dict[str, Any]
) -> None:
    """A handler sees what aio-pika sent: ids, headers, routing, time and content type."""
    sent_at = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)
    async with Recorder(url=amqp_url, **topology) as consumer:
        connection = await aio_pika.connect(amqp_url)
        async with connection:
            channel = await connection.channel()
            exchange = await channel.get_exchange(amqp_names.exchange)
            await exchange.publish(
                aio_pika.Message(
                    b'{"order": 7}', content_type="application/json", content_encoding="utf-8",
                    headers={"tenant": "acme", "attempt": 3}, delivery_mode=2, priority=5,
                    correlation_id="corr-1", reply_to="replies-nobody-reads", expiration=60,
                    message_id="msg-1", timestamp=sent_at, type="order.created",
                    user_id="guest", app_id="shop",
                ),
                routing_key="k",
            )  # fmt: skip
        await wait_until(lambda: len(consumer.seen) == 1, 10, "the message")
    data, message, _ = consumer.seen[0]
    assert data == {"order": 7} == message.data
    assert message.body == b'{"order": 7}'
    assert (message.message_id, message.correlation_id, message.reply_to) == (
        "msg-1", "corr-1", "replies-nobody-reads")  # fmt: skip
    assert dict(message.headers) == {"tenant": "acme", "attempt": 3}
    assert (message.routing_key, message.exchange, message.queue) == (
        "k", amqp_names.exchange, amqp_names.queue)  # fmt: skip
    assert message.timestamp == sent_at
    assert message.content_type == "application/json"
    assert (message.redelivered, message.delivery_count, message.retries) == (False, None, 0)
    with pytest.raises(TypeError):
        message.headers["tenant"] = "other"  # type: ignore[index]
    with pytest.raises(AttributeError):
        message.message_id = "x"  # type: ignore[misc]


async def test_the_routing_key_tells_two_bindings_apart(
    amqp_url: str, amqp_names: AmqpNames
) -> None:
    """A worker bound to order.created and order.paid must know which one it got."""
    consumer = Recorder(url=amqp_url, exchange=amqp_names.exchange, queue=amqp_names.queue,
                        routing_key=["order.created", "order.paid"])  # fmt: skip
    async with consumer, BaseProducer(url=amqp_url, exchange=amqp_names.exchange) as producer:
        await producer.publish_message({"id": 1}, routing_key="order.created")
        await producer.publish_message({"id": 1}, routing_key="order.paid")
        await wait_until(lambda: len(consumer.seen) == 2, 10, "both messages")
    assert sorted(message.routing_key for _, message, _ in consumer.seen) == [
        "order.created", "order.paid"]  # fmt: skip


async def test_a_quorum_queue_redelivery_shows_its_delivery_count(
    amqp_url: str, amqp_names: AmqpNames, topology: dict[str, Any]
) -> None:
    """x-delivery-count (quorum queues) and redelivered tell a handler it saw this before."""
    options = {**topology, "queue_arguments": {"x-queue-type": "quorum"}}
    held = asyncio.Event()

    class Stuck(BaseConsumer):
        async def process_request(self, data: Any, message: Message) -> None:
            held.set()
            await asyncio.Event().wait()  # until close() cancels it: never acked

    stuck = Stuck(url=amqp_url, close_timeout=0.1, **options)
    async with stuck, BaseProducer(url=amqp_url, exchange=amqp_names.exchange) as producer:
        await producer.publish_message("again", routing_key="k")
        await asyncio.wait_for(held.wait(), 10)
    async with Recorder(url=amqp_url, **options) as consumer:
        await wait_until(lambda: len(consumer.seen) == 1, 10, "the redelivery")
    _, message, _ = consumer.seen[0]
    assert message.redelivered is True
    assert message.delivery_count == 1


@pytest.mark.slow
async def test_delayed_retries_wait_in_the_broker_and_reach_this_queue_only(
    amqp_url: str, amqp_names: AmqpNames, broker: Broker, topology: dict[str, Any]
) -> None:
    """Retries spaced by each delay (at most a second more), only this queue sees them, and
    the message is dead-lettered once they are spent."""
    delays = (1.0, 2.0)
    for delay in delays:
        amqp_names.retry_queue(delay)
    bystander = f"{amqp_names.queue}.bystander"
    amqp_names.more_queues.append(bystander)
    await broker.declare(exchange=amqp_names.exchange, queue=bystander, routing_key="k")
    consumer = Recorder(url=amqp_url, retry_delays=delays, max_retries=3,
                        dead_letter_exchange=amqp_names.dead_letter_exchange,
                        fail=lambda data, message: True, **topology)  # fmt: skip
    async with consumer, BaseProducer(url=amqp_url, exchange=amqp_names.exchange) as producer:
        await producer.publish_message("doomed", routing_key="k")
        dead = await broker.take(amqp_names.dlq, 1, timeout=30)
    times = [at for _, _, at in consumer.seen]
    gaps = [round(b - a, 2) for a, b in itertools.pairwise(times)]
    print(f"\ndelayed retries (1, 2, then 2 again): attempts {len(times)}, gaps {gaps} s")
    assert [message.retries for _, message, _ in consumer.seen] == [0, 1, 2, 3]
    for gap, delay in zip(gaps, (1.0, 2.0, 2.0), strict=True):
        assert delay <= gap <= delay + 1.0
    assert dead[0].body == b'"doomed"'
    assert await broker.message_count(bystander) == 1  # the original only, never a retry
    for delay in delays:
        assert await broker.message_count(amqp_names.retry_queue(delay)) == 0


async def test_a_quorum_queue_with_delays_retries_through_a_quorum_wait_queue(
    amqp_url: str, amqp_names: AmqpNames, topology: dict[str, Any]
) -> None:
    """Quorum queues keep their guarantees with retries: the wait queue is replicated too."""
    amqp_names.retry_queue(0.2)
    consumer = Recorder(url=amqp_url, retry_delays=[0.2],
                        queue_arguments={"x-queue-type": "quorum"},
                        fail=lambda data, message: message.retries == 0, **topology)  # fmt: skip
    async with consumer, BaseProducer(url=amqp_url, exchange=amqp_names.exchange) as producer:
        await producer.publish_message("once more", routing_key="k")
        await wait_until(lambda: len(consumer.seen) == 2, 20, "the retry")
    assert [message.retries for _, message, _ in consumer.seen] == [0, 1]


async def test_a_handler_past_its_timeout_is_cancelled_counted_and_retried(
    amqp_url: str, amqp_names: AmqpNames, topology: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """A hung handler must not hold its prefetch slot forever: cancelled, logged, retried."""
    caplog.set_level(logging.WARNING, logger="aioamqp_ext")
    cancelled = asyncio.Event()
    done = asyncio.Event()

    class Hangs(BaseConsumer):
        async def process_request(self, data: Any, message: Message) -> None:
            if message.retries == 0:
                try:
                    await asyncio.Event().wait()
                except asyncio.CancelledError:
                    cancelled.set()
                    raise
            done.set()

    registry = CollectorRegistry()
    consumer = Hangs(url=amqp_url, handler_timeout=0.3, max_retries=1, registry=registry,
                     **topology)  # fmt: skip
    async with consumer, BaseProducer(url=amqp_url, exchange=amqp_names.exchange) as producer:
        await producer.publish_message("slow", routing_key="k", properties={"message_id": "m-7"})
        await asyncio.wait_for(done.wait(), 10)
    assert cancelled.is_set()
    timeouts = registry.get_sample_value("amqp_handler_timeouts_total", {"queue": amqp_names.queue})
    assert timeouts == 1
    retried = registry.get_sample_value(
        "amqp_messages_consumed_total", {"queue": amqp_names.queue, "result": "retry"}
    )
    assert retried == 1
    failure = next(r for r in caplog.records if "failed (retry 1 of 1)" in r.getMessage())
    assert amqp_names.queue in failure.getMessage()
    assert "m-7" in failure.getMessage()
    assert failure.exc_info is not None
    assert isinstance(failure.exc_info[1], HandlerTimeoutError)


class Echo(BaseConsumer):
    """Answers every request with what it got and its correlation id."""

    async def process_request(self, data: Any, message: Message) -> dict[str, Any]:
        return {"echo": data, "correlation_id": message.correlation_id}


async def test_a_thousand_concurrent_requests_each_get_their_own_reply(
    amqp_url: str, amqp_names: AmqpNames
) -> None:
    """Request/reply on one producer: every caller gets the reply to its own request."""
    echo = Echo(url=amqp_url, exchange="", queue=amqp_names.queue, prefetch_count=100)
    producer = BaseProducer(url=amqp_url, exchange="", queue=amqp_names.queue)
    async with echo, producer:
        replies = await asyncio.gather(*(producer.request(n, timeout=30) for n in range(1000)))
    assert [reply["echo"] for reply in replies] == list(range(1000))
    assert len({reply["correlation_id"] for reply in replies}) == 1000


async def test_a_reply_after_its_request_timed_out_is_dropped(
    amqp_url: str, amqp_names: AmqpNames, caplog: pytest.LogCaptureFixture
) -> None:
    """A late reply must neither reach another caller nor break the producer."""
    caplog.set_level(logging.DEBUG, logger="aioamqp_ext")
    go = asyncio.Event()
    answered = asyncio.Event()

    class Slow(BaseConsumer):
        async def process_request(self, data: Any) -> Any:
            if data == "slow":
                await go.wait()
                answered.set()
            return data

    slow = Slow(url=amqp_url, exchange="", queue=amqp_names.queue, prefetch_count=10)
    producer = BaseProducer(url=amqp_url, exchange="", queue=amqp_names.queue)
    async with slow, producer:
        with pytest.raises(AmqpTimeoutError, match=r"no reply to request \w+ .* within 0.3 s"):
            await producer.request("slow", timeout=0.3)
        go.set()
        await asyncio.wait_for(answered.wait(), 10)
        assert await producer.request("fast", timeout=10) == "fast"
        await wait_until(lambda: "came after it ended" in caplog.text, 10, "the late reply")


async def test_a_reply_nobody_waits_for_is_logged_and_the_request_acked(
    amqp_url: str, amqp_names: AmqpNames, broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    """The requester died: handled is handled, the reply cannot be delivered."""
    caplog.set_level(logging.WARNING, logger="aioamqp_ext")
    echo = Echo(url=amqp_url, exchange="", queue=amqp_names.queue,
                dead_letter_exchange=amqp_names.dead_letter_exchange)  # fmt: skip
    async with echo:
        await broker.channel.publish(
            b'"hello"', "", amqp_names.queue,
            properties={"content_type": "application/json", "reply_to": f"{amqp_names.queue}.gone",
                        "correlation_id": "c-1", "message_id": "m-1"},
        )  # fmt: skip
        await wait_until(lambda: "nobody waits" in caplog.text, 10, "the log line")
    assert f"reply_to '{amqp_names.queue}.gone'" in caplog.text
    assert await broker.message_count(amqp_names.queue) == 0  # acked, not redelivered
    assert await broker.message_count(amqp_names.dlq) == 0  # nor dead-lettered


async def test_a_reply_the_serializer_cannot_encode_is_a_handler_failure(
    amqp_url: str, amqp_names: AmqpNames, broker: Broker
) -> None:
    """A reply value that cannot be sent fails the message (dead-lettered), never the worker."""

    class Unsendable(BaseConsumer):
        async def process_request(self, data: Any) -> Any:
            return {1, 2} if data == "bad" else data

    consumer = Unsendable(url=amqp_url, exchange="", queue=amqp_names.queue,
                          dead_letter_exchange=amqp_names.dead_letter_exchange)  # fmt: skip
    producer = BaseProducer(url=amqp_url, exchange="", queue=amqp_names.queue)
    async with consumer, producer:
        with pytest.raises(AmqpTimeoutError):
            await producer.request("bad", timeout=1)
        assert await producer.request("good", timeout=10) == "good"
    dead = await broker.take(amqp_names.dlq, 1)
    assert dead[0].body == b'"bad"'


@pytest.mark.slow
async def test_a_worker_killed_while_retries_wait_loses_none_of_them(
    amqp_url: str, amqp_names: AmqpNames, broker: Broker
) -> None:
    """The wait is in the broker: SIGKILL the worker while every message waits for its retry,
    start another one, and each message is handled."""
    delay = 5.0  # long enough that a loaded machine kills the worker before any comes back
    wait_queue = amqp_names.retry_queue(delay)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RETRY_URL": amqp_url,
           "RETRY_EXCHANGE": amqp_names.exchange, "RETRY_QUEUE": amqp_names.queue,
           "RETRY_DELAY": str(delay)}  # fmt: skip
    ids = [str(n) for n in range(20)]

    async def start() -> tuple[asyncio.subprocess.Process, list[str], asyncio.Task[None]]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-W", "error", str(Path(__file__).with_name("retry_worker.py")),
            cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        lines: list[str] = []

        async def read() -> None:
            assert process.stdout is not None
            async for line in process.stdout:
                lines.append(line.decode(errors="replace").strip())

        return process, lines, asyncio.create_task(read())

    first, first_lines, first_reader = await start()
    try:
        await broker.declare(exchange=amqp_names.exchange)  # the worker may still be starting
        await wait_until(lambda: any("consuming" in line for line in first_lines), 30, "consuming")
        async with BaseProducer(url=amqp_url, exchange=amqp_names.exchange) as producer:
            for n in ids:
                await producer.publish_message(n, routing_key="k")
        await wait_until(lambda: sum(line.startswith("fail") for line in first_lines) == 20,
                         30, "every first attempt failed")  # fmt: skip

        async def all_waiting() -> bool:  # each retry copy confirmed there, each original acked
            return await broker.message_count(wait_queue) == 20

        await poll(all_waiting, timeout=4, interval=0.05)  # within the 5 s they wait
        first.kill()
        await first.wait()
        await first_reader
        waiting = await broker.message_count(wait_queue)
        second, second_lines, second_reader = await start()
        try:
            await wait_until(
                lambda: {line[5:] for line in second_lines if line.startswith("done")} == set(ids),
                30, "every message handled after the restart",
            )  # fmt: skip
        finally:
            second.kill()
            await second.wait()
            await second_reader
    finally:
        if first.returncode is None:
            first.kill()
            await first.wait()
    print(f"\nkilled with {waiting} of 20 messages waiting {delay:g} s for their retry; "
          f"all 20 handled by the next worker")  # fmt: skip
    assert waiting == 20
    assert not any(line.startswith("done") for line in first_lines)


async def test_the_docs_samples_of_the_handlers_world_run(
    amqp_url: str, amqp_names: AmqpNames, capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/aioamqp_ext.md's message and request/reply samples work as printed."""
    message_sample: dict[str, Any] = {}
    exec(doc_sample("class Orders(BaseConsumer)"), message_sample)  # noqa: S102 - our own docs
    reply_sample: dict[str, Any] = {}
    exec(doc_sample("class Prices(BaseConsumer)"), reply_sample)  # noqa: S102
    orders = message_sample["Orders"](url=amqp_url, exchange=amqp_names.exchange,
                                      queue=amqp_names.queue, routing_key="order.*")  # fmt: skip
    async with orders, BaseProducer(url=amqp_url, exchange=amqp_names.exchange) as producer:
        await producer.publish_message({"id": 9}, routing_key="order.paid",
                                       properties={"message_id": "m-9"})  # fmt: skip
        await wait_until(lambda: "paid" in capsys.readouterr().out, 10, "the print")
    prices_queue = f"{amqp_names.queue}.prices"
    amqp_names.more_queues.append(prices_queue)
    prices = reply_sample["Prices"](url=amqp_url, exchange=amqp_names.exchange,
                                    queue=prices_queue, routing_key="price.get")  # fmt: skip
    async with prices, BaseProducer(url=amqp_url, exchange=amqp_names.exchange) as producer:
        assert await reply_sample["ask"](producer) == {"sku": "A1", "price": 42}
