"""Hostile input at aioamqp_ext's entry points, generated (hypothesis): construction, the
serializers, and publish properties against the real broker read back by another client.

Each property: the documented error or success, within tests.fuzz.TIME_BOUND, never a raw
exception, never the known secret in what is shown, and messages of bounded size.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import warnings
from collections.abc import Iterator
from typing import Any

import aio_pika
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aioamqp_ext import (
    BaseConsumer,
    BaseProducer,
    ConfigurationError,
    DeserializationError,
    JsonSerializer,
    MsgpackSerializer,
    RawSerializer,
    SerializationError,
    TextSerializer,
)
from tests.conftest import AmqpNames
from tests.fuzz import TIME_BOUND, TIMEOUT, count, examples, fuzzed

SECRET = "S3cr3t-pa55"
MAX_MESSAGE = 4_000  # characters an error message may take

# text with everything Python strings can hold, lone surrogates included
any_text = st.text(st.characters(codec=None), max_size=40) | st.sampled_from(
    ["", "x" * 256, "é" * 128, "\ud800", "a" * 20_000, "../../etc", "%00", "{", "[", "]"]
)
huge_numbers = st.sampled_from([0, -1, 10**400, -(10**400), float("nan"), float("inf"),
                                -float("inf"), 1e308, 2**32, 2**64, 0.0001, True, "5"])  # fmt: skip
numbers = st.integers(-(2**70), 2**70) | st.floats(allow_nan=True) | huge_numbers
nested: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | numbers | any_text | st.binary(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=12,
)
urls_with_the_secret = st.sampled_from([
    f"amqp://guest:{SECRET}@127.0.0.1:5672/", f"amqp:/guest:{SECRET}@host/",
    f"guest:{SECRET}@host", f"amqp://guest:{SECRET}/x@host/", f"amqp://guest:[{SECRET}]@host/",
    f"amqp://guest:{SECRET}@host:99999/", f"http://guest:{SECRET}@host/",
    f"amqp://guest:{SECRET}@[::1/", f"amqps://:{SECRET}@host/vhost", f"{SECRET}",
])  # fmt: skip
urls = (
    urls_with_the_secret
    | urls_with_the_secret.map(lambda u: [u, u])
    | urls_with_the_secret.map(str.encode)
    | urls_with_the_secret.map(lambda u: {"url": u})
    | st.lists(urls_with_the_secret, max_size=0)
    | nested
)
options = st.fixed_dictionaries(
    {},
    optional={
        "url": urls, "exchange": any_text, "exchange_type": any_text | st.just("direct"),
        "routing_key": any_text | st.lists(any_text, max_size=3) | nested,
        "prefetch_count": numbers, "prefetch_size": numbers, "max_retries": numbers,
        "retry_delays": st.lists(numbers, max_size=4) | nested, "handler_timeout": numbers,
        "queue_depth_interval": numbers,
        "serializer": st.sampled_from(["json", "msgpack", "yaml", JsonSerializer,
                                       JsonSerializer(), object(), bytes, str]) | nested,
        "queue_arguments": st.dictionaries(any_text, nested, max_size=3) | nested,
        "dead_letter_exchange": any_text | nested, "connect_timeout": numbers,
        "publish_timeout": numbers, "close_timeout": numbers, "heartbeat": numbers,
        "reconnect_delay": numbers, "reconnect_max_delay": numbers,
        "connection_name": any_text | nested, "durable": nested, "passive": nested,
    },
)  # fmt: skip


class Consumer(BaseConsumer):
    async def process_request(self, data: Any) -> None:
        pass


def assert_shown_safely(text: str) -> None:
    """What we show: without the secret, and short."""
    assert SECRET not in text
    assert len(text) <= MAX_MESSAGE, f"{len(text)} characters: {text[:200]}..."


@pytest.mark.timeout(TIMEOUT)
@fuzzed(share=0.3)
@examples(in_ci=1000)
@given(kwargs=options, consumer=st.booleans())
def test_construction_takes_any_options_or_names_the_bad_one(
    kwargs: dict[str, Any], consumer: bool
) -> None:
    """Any keyword values: built, or a ConfigurationError, fast, with no secret shown."""
    count("test_construction_takes_any_options_or_names_the_bad_one")
    started = time.monotonic()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # prefetch on a producer: warned
        try:
            client = Consumer(queue="q", **kwargs) if consumer else BaseProducer(**kwargs)
        except ConfigurationError as exc:
            assert_shown_safely(str(exc))
        else:
            assert_shown_safely(repr(client))
            assert_shown_safely(repr(client.config))
    assert time.monotonic() - started < TIME_BOUND


serializers = st.sampled_from([JsonSerializer(), MsgpackSerializer(), RawSerializer(),
                               TextSerializer()])  # fmt: skip
bodies = st.binary(max_size=200) | st.sampled_from([
    b"[" * 20_000, b"1" * 5_000, b'{"a":' * 4_000, b"\xff\xfe", b"\xc1", b"\x91" * 1000,
    b"\xdd\xff\xff\xff\xff",  # msgpack: an array of 4 billion items
])  # fmt: skip


def deep(levels: int) -> Any:
    value: Any = []
    for _ in range(levels):
        value = [value]
    return value


payloads = nested | st.sampled_from([deep(3_000), 10**5000, "\ud800", {1, 2}, object()])


@pytest.mark.timeout(TIMEOUT)
@fuzzed(share=0.3)
@examples(in_ci=1000)
@given(serializer=serializers, payload=payloads, body=bodies)
def test_serializers_encode_or_refuse_and_decode_or_refuse(
    serializer: Any, payload: Any, body: bytes
) -> None:
    """Any payload serializes or raises SerializationError; any body deserializes or raises
    DeserializationError: never RecursionError, ValueError or a hang."""
    count("test_serializers_encode_or_refuse_and_decode_or_refuse")
    started = time.monotonic()
    try:
        encoded = serializer.serialize(payload)
    except SerializationError as exc:
        assert_shown_safely(str(exc))
    else:
        assert isinstance(encoded, bytes)
    try:
        serializer.deserialize(body)
    except DeserializationError as exc:
        assert_shown_safely(str(exc))
    assert time.monotonic() - started < TIME_BOUND


short_text = st.text(st.characters(codec=None), max_size=20)
properties = st.fixed_dictionaries(
    {},
    optional={
        "message_id": short_text | st.just("x" * 300), "correlation_id": short_text,
        "reply_to": short_text, "content_type": short_text, "content_encoding": short_text,
        # a short TTL in digits would expire before the reader gets it: not a finding
        "expiration": st.integers(60_000, 10**9).map(str)
        | short_text.filter(lambda t: not (t.isascii() and t.isdigit()) or int(t) >= 60_000)
        | numbers,
        "message_type": short_text, "app_id": short_text, "user_id": st.just("guest"),
        "delivery_mode": st.sampled_from([1, 2, 0, 3, "", "2", None, True]),
        "priority": st.integers(-5, 300) | huge_numbers,
        "timestamp": st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 1, 1))
        | st.datetimes(timezones=st.just(dt.UTC)) | numbers,
        "headers": st.dictionaries(short_text, short_text | st.integers(-(2**63), 2**63 - 1)
                                   | st.booleans(), max_size=3) | nested,
        "bogus": numbers,
    },
)  # fmt: skip


class Wire:
    """A producer of ours and an aio-pika channel to read back what the broker holds, on one
    event loop driven by the (synchronous) property test."""

    def __init__(self, url: str, queue: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.queue_name = queue
        self.producer = BaseProducer(url=url, exchange="", queue=queue)
        self.loop.run_until_complete(self._open(url))

    async def _open(self, url: str) -> None:
        await self.producer.connect()
        self.reader = await aio_pika.connect(url)
        channel = await self.reader.channel()
        self.queue = await channel.declare_queue(self.queue_name, durable=True)

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def close(self) -> None:
        self.run(self.queue.delete(if_unused=False, if_empty=False))
        self.run(self.reader.close())
        self.run(self.producer.close())
        self.loop.close()


@pytest.fixture
def wire(amqp_url: str, amqp_names: AmqpNames) -> Iterator[Wire]:
    wire = Wire(amqp_url, f"{amqp_names.queue}.hostile")
    try:
        yield wire
    finally:
        wire.close()


def _seconds(value: dt.datetime) -> int:
    aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    return int(aware.timestamp())


@pytest.mark.timeout(TIMEOUT)
@fuzzed(share=0.4)
@examples(in_ci=400)
@given(props=properties)
def test_publish_properties_reach_the_broker_as_given_or_are_refused_before_a_frame(
    wire: Wire, props: dict[str, Any]
) -> None:
    """Any properties: refused with a ConfigurationError naming the property (the connection
    stays usable), or published and read back by aio-pika exactly as given."""
    count("test_publish_properties_reach_the_broker_as_given_or_are_refused_before_a_frame")
    started = time.monotonic()
    try:
        wire.run(wire.producer.publish_message("body", properties=props))
    except ConfigurationError as exc:
        assert_shown_safely(str(exc))
        assert wire.producer.is_connected
        return
    finally:
        assert time.monotonic() - started < TIME_BOUND
    message = wire.run(wire.queue.get(no_ack=True, timeout=5))
    assert message.body == b'"body"'
    for name, value in props.items():
        if value is None or value == "":  # not sent, as documented
            continue
        got = getattr(message, "type" if name == "message_type" else name)
        if name == "timestamp":
            assert _seconds(got) == _seconds(value)
        elif name == "expiration":
            assert got == int(value) / 1000  # aio-pika reads it as seconds
        elif name == "headers":
            assert got == value
        else:
            assert got == value, name


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"url": [f"amqp://u:{SECRET}@h/".encode()]}, r"URL string, got bytes"),
        ({"url": {"url": f"amqp://u:{SECRET}@h/"}}, r"a non-empty list of them, got dict"),
        ({"url": f"u:{SECRET}@h"}, r"got a URL with no scheme://"),
        ({"url": f"amqp:/u:{SECRET}@h/"}, r"url: expected amqp://host or amqps://host"),
        ({"url": f"amqp://u:{SECRET}/x@h/"}, r"cannot read the host and port"),
        ({"url": f"amqp://u:[{SECRET}]@h/"}, r"url: cannot read the host and port"),
        ({"reconnect_delay": 10**400}, r"reconnect_delay: .* <= 31622400"),
        ({"prefetch_size": 2**32}, r"prefetch_size: expected at most 4294967295 \(an AMQP long\)"),
        ({"exchange": "x" * 256}, r"exchange: expected at most 255 bytes in UTF-8"),
        ({"queue_arguments": {"x-max-length": 2**70}}, r"cannot be encoded as an AMQP table"),
        ({"queue_arguments": {"k" * 129: 1}}, r"queue_arguments: a key of 129 bytes: at most 128"),
        ({"queue_arguments": {"x-ratio": float("inf")}}, r"the float inf cannot be sent"),
        ({"serializer": JsonSerializer}, r"got the class 'JsonSerializer'"),
    ],
)  # fmt: skip
def test_what_the_fuzz_run_found_at_construction_is_named_without_the_secret(
    options: dict[str, Any], message: str
) -> None:
    """The fuzz run's findings at construction: each a ConfigurationError naming the option."""
    with pytest.raises(ConfigurationError, match=message) as caught:
        Consumer(queue="q", **options)
    assert SECRET not in str(caught.value)


def test_a_huge_accepted_option_keeps_the_reprs_bounded() -> None:
    """The 10-minute fuzz run: a 20,000-character queue argument made a 20 KB config repr."""
    consumer = Consumer(queue="q", url=f"amqp://u:{SECRET}@h/",
                        queue_arguments={"x-note": "a" * 20_000})  # fmt: skip
    for text in (repr(consumer), repr(consumer.config)):
        assert len(text) < 2_000
        assert SECRET not in text


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        ({"timestamp": dt.datetime(1960, 1, 1)}, r"timestamp: expected 1970 to 2106"),
        ({"timestamp": dt.datetime(2200, 1, 1)}, r"timestamp: expected 1970 to 2106"),
        ({"message_id": "\ud800"}, r"message_id: expected text UTF-8 can encode"),
        ({"delivery_mode": ""}, r"delivery_mode: expected 1 \(transient\) or 2 \(persistent\)"),
        ({"expiration": "soon"}, r"expiration: expected milliseconds as a str of digits"),
        ({"headers": {"x": "y" * 200_000}}, r"200\d{3} bytes encoded \(headers included\), more "
                                            r"than a frame the broker takes \(131072 bytes\)"),
        ({"headers": {"ratio": 0.1}}, r"headers: the float 0.1 would arrive changed"),
        # the 10-minute fuzz run: RabbitMQ closed the connection (541) over each publish again
        ({"headers": {"": float("inf")}}, r"headers: the float inf cannot be sent"),
        ({"headers": {"x": [-float("inf")]}}, r"headers: the float -inf cannot be sent"),
    ],
)  # fmt: skip
def test_what_the_fuzz_run_found_in_publish_properties_is_refused_before_a_frame(
    wire: Wire, properties: dict[str, Any], message: str
) -> None:
    """Properties the broker or a reader would mangle are refused, the connection intact."""
    with pytest.raises(ConfigurationError, match=message):
        wire.run(wire.producer.publish_message("x", properties=properties))
    wire.run(wire.producer.publish_message("after"))
    assert wire.run(wire.queue.get(no_ack=True, timeout=5)).body == b'"after"'


@pytest.mark.parametrize(
    ("serializer", "body", "message"),
    [
        (JsonSerializer(), b"[" * 100_000, r"body is JSON nested too deeply"),
        (JsonSerializer(), b"1" * 5_000, r"body is not readable JSON"),
    ],
)
def test_what_the_fuzz_run_found_in_bodies_is_a_deserialization_error(
    serializer: Any, body: bytes, message: str
) -> None:
    """A hostile body is a poison message (dead-lettered), not a crash of the handler task."""
    with pytest.raises(DeserializationError, match=message):
        serializer.deserialize(body)
    with pytest.raises(SerializationError, match=r"nested too deeply"):
        serializer.serialize(deep(100_000))
