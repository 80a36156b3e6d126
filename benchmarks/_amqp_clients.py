"""The contenders of the AMQP rows, each the way its users would write it.

Every contender offers the same two operations:

- ``consume(queue, n, prefetch)``: consume ``n`` messages already in ``queue``, acking each
  after a no-op handler; returns the seconds from the first delivery to the last;
- ``publish(queue, n, mode)``: publish ``n`` messages to ``queue`` (default exchange) as
  ``mode`` says; returns the seconds from the first publish to the last one confirmed (or, with
  no confirms, to the last one counted in the queue by the broker).

Some offer more (``kinds`` says which):

- ``consume_message(queue, n, prefetch)``: like ``consume``, the handler reading the message's
  ``message_id`` property (ours: a handler taking ``(data, message)``);
- ``request_reply(queue, n, in_flight)``: a server answering requests on ``queue`` with their
  own payload, and a client sending ``n`` requests, ``in_flight`` at a time, each awaiting
  its reply; returns the seconds from the first request to the last reply.

Raw aioamqp is the smallest loop that is correct: its callback only acks, and its confirmed
publishing honours the broker's batch acks (``multiple``), which aioamqp itself ignores.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

PAYLOAD = {"id": 0, "event": "order.created", "sku": "ABC-123", "qty": 2, "price": "19.99",
           "note": "benchmark message of about 100 bytes"}  # fmt: skip
BODY = json.dumps(PAYLOAD, separators=(",", ":")).encode()


#: what a contender can run: the rows' kinds of work
CONSUME, CONSUME_MESSAGE, PUBLISH, REQUEST = "consume", "consume_message", "publish", "request"
#: a request/reply run that takes longer than this is broken (aio-pika's call has no timeout)
REQUEST_RUN_TIMEOUT = 300.0


@dataclass(frozen=True, slots=True)
class PublishMode:
    """How a publish row publishes: confirms or not, and how many publishes in flight."""

    confirms: bool
    in_flight: int
    persistent: bool


class Counter:
    """Counts handled messages; knows when the first and the ``n``-th were handled."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0
        self.first = 0.0
        self.last = 0.0
        self.missing = 0  # handled messages without the message_id they were filled with
        self.done = asyncio.Event()

    def hit(self) -> None:
        self.count += 1
        if self.count == 1:
            self.first = time.perf_counter()
        if self.count == self.n:
            self.last = time.perf_counter()
            self.done.set()

    @property
    def elapsed(self) -> float:
        return self.last - self.first

    def checked_elapsed(self) -> float:
        """``elapsed``, once every handler saw its message's ``message_id``."""
        if self.missing:
            raise RuntimeError(f"{self.missing} of {self.n} messages had no message_id")
        return self.elapsed


async def run_workers(send: Callable[[], Awaitable[Any]], n: int, in_flight: int) -> float:
    """Publish ``n`` messages with ``in_flight`` sequential workers; returns the seconds."""
    workers = min(in_flight, n)
    share, extra = divmod(n, workers)

    async def worker(count: int) -> None:
        for _ in range(count):
            await send()

    started = time.perf_counter()
    await asyncio.gather(*(worker(share + (i < extra)) for i in range(workers)))
    return time.perf_counter() - started


async def wait_count(count: Callable[[], Awaitable[int]], n: int, started: float) -> float:
    """Poll a queue's depth until it holds ``n``; returns the seconds since ``started``."""
    while await count() < n:
        await asyncio.sleep(0.002)
    return time.perf_counter() - started


class RawAioamqp:
    """aioamqp 0.15 used directly: the smallest correct loop."""

    name = "raw aioamqp"
    kinds = frozenset({CONSUME, CONSUME_MESSAGE, PUBLISH})

    def __init__(self, url: str) -> None:
        self.url = url

    async def _open(self, channel_class: type | None = None) -> tuple[Any, Any, Any]:
        import aioamqp
        import aioamqp.protocol

        parts = urlsplit(self.url)
        kwargs: dict[str, Any] = {}
        if channel_class is not None:
            factory = type("Protocol", (aioamqp.protocol.AmqpProtocol,), {
                "CHANNEL_FACTORY": channel_class})  # fmt: skip
            kwargs["protocol_factory"] = factory
        transport, protocol = await aioamqp.connect(
            parts.hostname or "localhost", parts.port or 5672, parts.username or "guest",
            parts.password or "guest", parts.path[1:] or "/", **kwargs,
        )  # fmt: skip
        channel = await protocol.channel()
        return transport, protocol, channel

    async def consume(self, queue: str, n: int, prefetch: int) -> float:
        transport, protocol, channel = await self._open()
        counter = Counter(n)
        await channel.basic_qos(prefetch_count=prefetch, prefetch_size=0, connection_global=False)

        async def on_message(channel: Any, body: bytes, envelope: Any, properties: Any) -> None:
            await channel.basic_client_ack(envelope.delivery_tag)
            counter.hit()

        await channel.basic_consume(on_message, queue_name=queue)
        await counter.done.wait()
        await protocol.close()
        transport.close()
        return counter.elapsed

    async def consume_message(self, queue: str, n: int, prefetch: int) -> float:
        """``consume``, the callback also reading ``message_id`` (aioamqp parsed it already)."""
        transport, protocol, channel = await self._open()
        counter = Counter(n)
        await channel.basic_qos(prefetch_count=prefetch, prefetch_size=0, connection_global=False)

        async def on_message(channel: Any, body: bytes, envelope: Any, properties: Any) -> None:
            if properties.message_id is None:
                counter.missing += 1
            await channel.basic_client_ack(envelope.delivery_tag)
            counter.hit()

        await channel.basic_consume(on_message, queue_name=queue)
        await counter.done.wait()
        await protocol.close()
        transport.close()
        return counter.checked_elapsed()

    async def publish(self, queue: str, n: int, mode: PublishMode, count: Any) -> float:
        transport, protocol, channel = await self._open(_batch_ack_channel())
        if mode.confirms:
            await channel.confirm_select()
        properties = {"delivery_mode": 2 if mode.persistent else 1,
                      "content_type": "application/json"}  # fmt: skip

        async def send() -> None:
            await channel.publish(BODY, "", queue, properties=properties)

        elapsed = await run_workers(send, n, mode.in_flight)
        if not mode.confirms:
            elapsed = await wait_count(count, n, time.perf_counter() - elapsed)
        await protocol.close()
        transport.close()
        return elapsed


def _batch_ack_channel() -> type:
    """aioamqp's Channel, settling every confirm up to the tag of an ack with ``multiple``."""
    import aioamqp.channel

    class BatchAckChannel(aioamqp.channel.Channel):  # type: ignore[misc]
        settled = 0  # every tag up to this one is settled

        async def basic_server_ack(self, frame: Any) -> None:
            tag = frame.delivery_tag
            first = tag if not frame.multiple else self.settled + 1
            for done in range(first, tag + 1):
                waiter = self._futures.pop(f"basic_server_ack_{done}", None)
                if waiter is not None:
                    waiter.set_result(True)
            self.settled = max(self.settled, tag)

    return BatchAckChannel


class Ours:
    """aioamqp_ext's BaseConsumer and BaseProducer, as the talk's users write them."""

    name = "aioamqp_ext"
    kinds = frozenset({CONSUME, CONSUME_MESSAGE, PUBLISH, REQUEST})
    metrics = False  # record the amqp_* consumer metrics in a registry of the run's own
    #: the rows it runs in, among those of its kinds (None: all of them)
    rows: tuple[str, ...] | None = None

    def __init__(self, url: str) -> None:
        self.url = url

    async def consume(self, queue: str, n: int, prefetch: int) -> float:
        from aioamqp_ext import BaseConsumer

        counter = Counter(n)

        class Consumer(BaseConsumer):
            async def process_request(self, data: Any) -> None:
                counter.hit()

        options = self.options()
        if self.metrics:
            from prometheus_client import CollectorRegistry

            options["registry"] = CollectorRegistry()
        consumer = Consumer(url=self.url, queue=queue, prefetch_count=prefetch, **options)
        await consumer.consume()
        await counter.done.wait()
        await consumer.close()
        self.closed()
        return counter.elapsed

    def options(self) -> dict[str, Any]:
        """More keywords of the consumer (tracing's, in the tracing contenders)."""
        return {}

    def closed(self) -> None:
        """After a consume run (the tracing contender shuts its SDK down)."""

    async def consume_message(self, queue: str, n: int, prefetch: int) -> float:
        """``consume``, the handler taking ``(data, message)`` and reading ``message_id``."""
        from aioamqp_ext import BaseConsumer, Message

        counter = Counter(n)

        class Consumer(BaseConsumer):
            async def process_request(self, data: Any, message: Message) -> None:
                if message.message_id is None:
                    counter.missing += 1
                counter.hit()

        consumer = Consumer(url=self.url, queue=queue, prefetch_count=prefetch)
        await consumer.consume()
        await counter.done.wait()
        await consumer.close()
        return counter.checked_elapsed()

    async def request_reply(self, queue: str, n: int, in_flight: int) -> float:
        """A BaseConsumer returning its input; ``BaseProducer.request`` awaiting each reply.

        The requests are transient, as aio-pika's RPC sends them (see ``AioPika``).
        """
        from aioamqp_ext import BaseConsumer, BaseProducer

        class Echo(BaseConsumer):
            async def process_request(self, data: Any) -> Any:
                return data

        server = Echo(url=self.url, queue=queue, prefetch_count=in_flight)
        producer = BaseProducer(url=self.url, queue=queue)
        transient = {"delivery_mode": 1}
        try:
            await server.consume()
            await producer.connect()
            # untimed: the first request also starts consuming the replies
            if await producer.request(PAYLOAD, properties=transient) != PAYLOAD:
                raise RuntimeError("the reply differs from the request")

            def send() -> Awaitable[Any]:
                return producer.request(PAYLOAD, properties=transient)

            async with asyncio.timeout(REQUEST_RUN_TIMEOUT):
                return await run_workers(send, n, in_flight)
        finally:
            await producer.close()
            await server.close()

    async def publish(self, queue: str, n: int, mode: PublishMode, count: Any) -> float:
        from aioamqp_ext import BaseProducer

        producer = BaseProducer(url=self.url, queue=queue, publisher_confirms=mode.confirms)
        await producer.connect()
        properties = None if mode.persistent else {"delivery_mode": 1}

        def send() -> Awaitable[None]:
            return producer.publish_message(PAYLOAD, queue, properties)

        elapsed = await run_workers(send, n, mode.in_flight)
        if not mode.confirms:
            elapsed = await wait_count(count, n, time.perf_counter() - elapsed)
        await producer.close()
        return elapsed


class OursUntraced(Ours):
    """The consumer with tracing turned off explicitly: what it does without the otel extra
    (``tracing_for`` answers None either way, so the hot path is the same one)."""

    name = "aioamqp_ext, tracing=False"
    kinds = frozenset({CONSUME})
    rows = ("consume, no-op handler, prefetch 100",)

    def options(self) -> dict[str, Any]:
        return {"tracing": False}


class OursTraced(Ours):
    """The consumer tracing with the OpenTelemetry SDK: a CONSUMER span per message, batched
    to an exporter that drops them (the SDK's cost, not an exporter's)."""

    name = "aioamqp_ext + tracing (SDK)"
    kinds = frozenset({CONSUME})
    rows = ("consume, no-op handler, prefetch 100",)
    provider: Any = None

    def options(self) -> dict[str, Any]:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )

        class Dropped(SpanExporter):
            def export(self, spans: Any) -> SpanExportResult:
                return SpanExportResult.SUCCESS

        self.provider = TracerProvider()
        self.provider.add_span_processor(BatchSpanProcessor(Dropped()))
        return {"tracer_provider": self.provider}

    def closed(self) -> None:
        if self.provider is not None:
            self.provider.shutdown()
            self.provider = None


class OursWithMetrics(Ours):
    """The same consumer with its ``amqp_*`` metrics on (``registry=``)."""

    name = "aioamqp_ext + metrics"
    kinds = frozenset({CONSUME})
    metrics = True


class AioPika:
    """aio-pika: a plain (not robust) connection and channel."""

    name = "aio-pika"
    kinds = frozenset({CONSUME, PUBLISH, REQUEST})

    def __init__(self, url: str) -> None:
        self.url = url

    async def consume(self, queue: str, n: int, prefetch: int) -> float:
        import aio_pika

        counter = Counter(n)
        connection = await aio_pika.connect(self.url)
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        q = await channel.get_queue(queue, ensure=False)

        async def on_message(message: Any) -> None:
            await message.ack()
            counter.hit()

        await q.consume(on_message)
        await counter.done.wait()
        await connection.close()
        return counter.elapsed

    async def publish(self, queue: str, n: int, mode: PublishMode, count: Any) -> float:
        import aio_pika

        connection = await aio_pika.connect(self.url)
        channel = await connection.channel(publisher_confirms=mode.confirms)
        exchange = channel.default_exchange
        delivery = (aio_pika.DeliveryMode.PERSISTENT if mode.persistent
                    else aio_pika.DeliveryMode.NOT_PERSISTENT)  # fmt: skip

        async def send() -> None:
            body = json.dumps(PAYLOAD, separators=(",", ":")).encode()
            message = aio_pika.Message(body, delivery_mode=delivery,
                                       content_type="application/json")  # fmt: skip
            await exchange.publish(message, routing_key=queue)

        elapsed = await run_workers(send, n, mode.in_flight)
        if not mode.confirms:
            elapsed = await wait_count(count, n, time.perf_counter() - elapsed)
        await connection.close()
        return elapsed

    async def request_reply(self, queue: str, n: int, in_flight: int) -> float:
        """aio-pika's RPC pattern, as its docs write it: the server registers a method (its
        queue, named after it), the client calls it; each on its own connection.

        ``JsonRPC``, the pattern's JSON flavour (plain ``RPC`` pickles), so that both sides
        speak the same JSON as ours. Calls are transient (the pattern's default); the
        server's channel gets the same prefetch as our consumer.
        """
        import aio_pika
        from aio_pika.patterns import JsonRPC

        async def echo(**kwargs: Any) -> Any:
            return kwargs

        server_connection = await aio_pika.connect(self.url)
        client_connection = await aio_pika.connect(self.url)
        try:
            server_channel = await server_connection.channel()
            await server_channel.set_qos(prefetch_count=in_flight)
            server = await JsonRPC.create(server_channel)
            await server.register(queue, echo, durable=True)
            client = await JsonRPC.create(await client_connection.channel())
            if await client.call(queue, PAYLOAD) != PAYLOAD:  # untimed, as for ours
                raise RuntimeError("the reply differs from the request")

            def send() -> Awaitable[Any]:
                return client.call(queue, PAYLOAD)

            async with asyncio.timeout(REQUEST_RUN_TIMEOUT):
                elapsed = await run_workers(send, n, in_flight)
            await client.close()  # deletes its reply queue
            await server.unregister(echo)
            await server.close()
            return elapsed
        finally:
            await client_connection.close()
            await server_connection.close()


class FastStream:
    """FastStream's RabbitBroker: a subscriber with a no-op handler, acked after it returns."""

    name = "FastStream"
    kinds = frozenset({CONSUME})  # consume rows only: the publish targets compare the others

    def __init__(self, url: str) -> None:
        self.url = url

    async def consume(self, queue: str, n: int, prefetch: int) -> float:
        from faststream import AckPolicy
        from faststream.rabbit import Channel, RabbitBroker, RabbitQueue

        counter = Counter(n)
        broker = RabbitBroker(self.url, logger=None)

        @broker.subscriber(
            RabbitQueue(queue, durable=True),
            channel=Channel(prefetch_count=prefetch),
            ack_policy=AckPolicy.ACK,
        )
        async def handle(body: Any) -> None:
            counter.hit()

        await broker.start()
        await counter.done.wait()
        await broker.stop()
        return counter.elapsed


def available(url: str) -> list[Any]:
    """The contenders whose library imports here (raw aioamqp and ours always do)."""
    contenders: list[Any] = [RawAioamqp(url), Ours(url)]
    try:
        from aioamqp_ext import BaseConsumer

        BaseConsumer(url=url, queue="probe", registry=None)
    except TypeError:  # an aioamqp_ext without consumer metrics
        pass
    else:
        contenders.append(OursWithMetrics(url))
    try:
        BaseConsumer(url=url, queue="probe", tracing=False)
        import opentelemetry.sdk.trace  # noqa: F401
    except (TypeError, ImportError):  # an aioamqp_ext without tracing, or no SDK
        pass
    else:
        contenders += [OursUntraced(url), OursTraced(url)]
    try:
        import aio_pika  # noqa: F401
    except ImportError:
        pass
    else:
        contenders.append(AioPika(url))
    try:
        import faststream.rabbit  # noqa: F401
    except ImportError:
        pass
    else:
        contenders.append(FastStream(url))
    return contenders
