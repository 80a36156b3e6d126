"""OpenTelemetry tracing across the queue, with the real SDK (InMemorySpanExporter), the real
broker, a real aiohttp server instrumented by opentelemetry-instrumentation-aiohttp-server,
and aio-pika instrumented by opentelemetry-instrumentation-aio-pika.

Each test has a tracer provider of its own, given to the clients (``tracer_provider=``) and
to the instrumentations: the global provider is never set, so no other test traces.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aio_pika
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from opentelemetry.instrumentation.aio_pika import AioPikaInstrumentor
from opentelemetry.instrumentation.aiohttp_server import AioHttpServerInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from aioamqp_ext import BaseConsumer, BaseProducer, ConfigurationError, Message
from tests.amqp.conftest import Broker, wait_until
from tests.conftest import AmqpNames


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


class Recorder(BaseConsumer):
    """Records each message; fails on ``{"fail": true}``."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.handled: asyncio.Queue[Message] = asyncio.Queue()

    async def process_request(self, data: Any, message: Message) -> None:
        await self.handled.put(message)
        if isinstance(data, dict) and data.get("fail"):
            raise RuntimeError("asked to fail")


def named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.name == name]


async def finished(exporter: InMemorySpanExporter, name: str, count: int = 1) -> list[ReadableSpan]:
    """The spans named ``name`` once ``count`` of them ended (a span ends after its settle)."""
    await wait_until(lambda: len(named(exporter, name)) >= count, 15, f"{count} span(s) {name}")
    return named(exporter, name)


async def test_a_message_carries_its_trace_to_the_handler(
    amqp_url: str, amqp_names: AmqpNames, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    topology = {"exchange": amqp_names.exchange, "queue": amqp_names.queue}
    consumer = Recorder(url=amqp_url, routing_key="order.*", tracer_provider=provider, **topology)
    producer = BaseProducer(amqp_url, exchange=amqp_names.exchange, tracer_provider=provider)
    tracer = provider.get_tracer("test")
    try:
        await consumer.consume()
        with tracer.start_as_current_span("place order") as parent:
            await producer.publish_message({"id": 1}, "order.created",
                                           properties={"correlation_id": "c-1"})  # fmt: skip
        message = await asyncio.wait_for(consumer.handled.get(), 15)
        [published] = await finished(exporter, f"publish {amqp_names.exchange}")
        [processed] = await finished(exporter, f"process {amqp_names.queue}")
    finally:
        await producer.close()
        await consumer.close()
    context = parent.get_span_context()
    assert message.headers["traceparent"].startswith(f"00-{context.trace_id:032x}-")
    assert published.kind is SpanKind.PRODUCER
    assert published.parent is not None
    assert published.parent.span_id == context.span_id
    assert dict(published.attributes or {}) == {
        "messaging.system": "rabbitmq",
        "messaging.operation.type": "send",
        "messaging.operation.name": "publish",
        "messaging.destination.name": amqp_names.exchange,
        "messaging.rabbitmq.destination.routing_key": "order.created",
        "messaging.message.id": message.message_id,
        "messaging.message.conversation_id": "c-1",
    }
    assert processed.kind is SpanKind.CONSUMER
    assert processed.context.trace_id == context.trace_id
    assert processed.parent is not None
    assert processed.parent.span_id == published.context.span_id
    attributes = dict(processed.attributes or {})
    assert attributes["messaging.system"] == "rabbitmq"
    assert attributes["messaging.operation.type"] == "process"
    assert attributes["messaging.destination.name"] == amqp_names.exchange
    assert attributes["messaging.destination.subscription.name"] == amqp_names.queue
    assert attributes["messaging.rabbitmq.destination.routing_key"] == "order.created"
    assert attributes["messaging.message.id"] == message.message_id
    assert attributes["aioamqp_ext.message.retries"] == 0
    assert processed.status.status_code is StatusCode.UNSET


async def test_a_failing_handler_marks_each_attempt_failed(
    amqp_url: str, amqp_names: AmqpNames, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    consumer = Recorder(url=amqp_url, queue=amqp_names.queue, max_retries=1,
                        tracer_provider=provider)  # fmt: skip
    producer = BaseProducer(amqp_url, queue=amqp_names.queue, tracer_provider=provider)
    try:
        await consumer.consume()
        await producer.publish_message({"fail": True})
        runs = await finished(exporter, f"process {amqp_names.queue}", 2)
    finally:
        await producer.close()
        await consumer.close()
    [published] = named(exporter, "publish amq.default")
    # the retry's copy is published by the consumer with the headers it received
    assert {run.context.trace_id for run in runs} == {published.context.trace_id}
    retries = [dict(run.attributes or {})["aioamqp_ext.message.retries"] for run in runs]
    assert sorted(int(str(r)) for r in retries) == [0, 1]
    for run in runs:
        assert run.status.status_code is StatusCode.ERROR
        assert run.status.description == "RuntimeError: asked to fail"
        assert dict(run.attributes or {})["error.type"] == "RuntimeError"
        [event] = run.events
        assert event.name == "exception"
        assert dict(event.attributes or {})["exception.type"] == "RuntimeError"


async def test_tracing_false_or_no_provider_adds_nothing(
    amqp_url: str, amqp_names: AmqpNames, broker: Broker,
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:  # fmt: skip
    provider, exporter = spans
    await broker.declare(queue=amqp_names.queue)
    off = BaseProducer(amqp_url, queue=amqp_names.queue, tracer_provider=provider, tracing=False)
    unset = BaseProducer(amqp_url, queue=amqp_names.queue)  # the global provider is not set
    try:
        with provider.get_tracer("test").start_as_current_span("outer"):
            await off.publish_message(1)
            await unset.publish_message(2)
    finally:
        await off.close()
        await unset.close()
    messages = await broker.take(amqp_names.queue, 2)
    assert [m.headers for m in messages] == [{}, {}]
    assert [span.name for span in exporter.get_finished_spans()] == ["outer"]
    with pytest.raises(ConfigurationError, match="tracing: expected True or False"):
        BaseProducer(amqp_url, tracing="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="tracer_provider: expected an OpenTelemetry"):
        BaseProducer(amqp_url, tracer_provider=object())


@pytest.fixture
def instrumented_aiohttp(spans: tuple[TracerProvider, InMemorySpanExporter]) -> Iterator[None]:
    instrumentor = AioHttpServerInstrumentor()
    with warnings.catch_warnings():  # it subclasses web.Application, which aiohttp frowns on
        warnings.filterwarnings("ignore", "Inheritance class", DeprecationWarning)
        instrumentor.instrument(tracer_provider=spans[0])
    yield
    instrumentor.uninstrument()


async def test_an_http_request_and_the_worker_share_one_trace(
    amqp_url: str, amqp_names: AmqpNames, instrumented_aiohttp: None,
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:  # fmt: skip
    provider, exporter = spans
    producer = BaseProducer(amqp_url, queue=amqp_names.queue, tracer_provider=provider)
    consumer = Recorder(url=amqp_url, queue=amqp_names.queue, tracer_provider=provider)

    async def place(request: web.Request) -> web.Response:
        await producer.publish_message(await request.json())
        return web.json_response({"placed": True}, status=202)

    app = web.Application()  # the instrumented class, created after instrument()
    app.router.add_post("/orders", place)
    try:
        await consumer.consume()
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            response = await client.post("/orders", json={"id": 1})
            assert response.status == 202
        await asyncio.wait_for(consumer.handled.get(), 15)
        [processed] = await finished(exporter, f"process {amqp_names.queue}")
    finally:
        await producer.close()
        await consumer.close()
    [server] = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    [published] = named(exporter, "publish amq.default")
    assert server.context.trace_id == published.context.trace_id == processed.context.trace_id
    assert published.parent is not None
    assert published.parent.span_id == server.context.span_id
    assert processed.parent is not None
    assert processed.parent.span_id == published.context.span_id


@pytest.fixture
def instrumented_aio_pika(spans: tuple[TracerProvider, InMemorySpanExporter]) -> Iterator[None]:
    instrumentor = AioPikaInstrumentor()
    # it declares aio-pika below 10; with 10.2 it injects and extracts traceparent correctly
    instrumentor.instrument(tracer_provider=spans[0], skip_dep_check=True)
    yield
    instrumentor.uninstrument()


@pytest.fixture
async def pika(amqp_url: str) -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    connection = await aio_pika.connect(amqp_url)
    try:
        yield await connection.channel()
    finally:
        await connection.close()


async def test_traces_continue_between_aio_pika_and_us(
    amqp_url: str, amqp_names: AmqpNames, instrumented_aio_pika: None,
    pika: aio_pika.abc.AbstractChannel, spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:  # fmt: skip
    provider, exporter = spans
    tracer = provider.get_tracer("test")
    ours, theirs = amqp_names.queue, f"{amqp_names.queue}.pika"
    amqp_names.more_queues.append(theirs)
    consumer = Recorder(url=amqp_url, queue=ours, tracer_provider=provider)
    producer = BaseProducer(amqp_url, queue=theirs, tracer_provider=provider)
    try:
        await consumer.consume()
        # aio-pika publishes, our consumer handles
        with tracer.start_as_current_span("pika side") as pika_side:
            await pika.default_exchange.publish(aio_pika.Message(b'{"id": 1}'), routing_key=ours)
        await asyncio.wait_for(consumer.handled.get(), 15)
        [processed] = await finished(exporter, f"process {ours}")
        # we publish, an aio-pika consumer handles
        queue = await pika.declare_queue(theirs, durable=True)
        got: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            async with message.process():
                if not got.done():
                    got.set_result(None)

        await queue.consume(on_message)
        with tracer.start_as_current_span("our side") as our_side:
            await producer.publish_message({"id": 2})
        await asyncio.wait_for(got, 15)
        await wait_until(
            lambda: any(s.kind is SpanKind.CONSUMER and s.context.trace_id
                        == our_side.get_span_context().trace_id
                        for s in exporter.get_finished_spans()),
            15, "aio-pika's consumer span",
        )  # fmt: skip
    finally:
        await producer.close()
        await consumer.close()
    pika_trace = pika_side.get_span_context().trace_id
    assert processed.context.trace_id == pika_trace
    assert processed.parent is not None
    pika_publish = [
        s for s in exporter.get_finished_spans()
        if s.kind is SpanKind.PRODUCER and s.context.trace_id == pika_trace
    ]  # fmt: skip
    assert processed.parent.span_id in {s.context.span_id for s in pika_publish}
    [our_publish] = named(exporter, "publish amq.default")
    [their_consume] = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CONSUMER
                       and s.context.trace_id == our_side.get_span_context().trace_id]  # fmt: skip
    assert their_consume.parent is not None
    assert their_consume.parent.span_id == our_publish.context.span_id
