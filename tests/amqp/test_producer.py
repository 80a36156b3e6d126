"""BaseProducer against the real broker: confirms, properties, failures that must raise."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import msgpack
import pytest

from aioamqp_ext import (
    AmqpConnectionError,
    AmqpTimeoutError,
    BaseProducer,
    ClosedError,
    ConfigurationError,
    PublishNackedError,
    TopologyError,
    UnroutableError,
)
from tests.amqp.conftest import Broker
from tests.conftest import AmqpNames


async def test_publish_returns_after_confirm_with_default_properties(
    amqp_url: str, amqp_names: AmqpNames, broker: Broker, topology: dict[str, Any]
) -> None:
    """A returned publish must mean the message sits in the queue, persistent and labelled."""
    await broker.declare(**topology)
    async with BaseProducer(url=amqp_url, exchange=amqp_names.exchange) as producer:
        await producer.publish_message(
            {"hello": "world"},
            routing_key="k",
            properties={"headers": {"trace": "abc"}, "correlation_id": "c-1"},
        )
        assert await broker.message_count(amqp_names.queue) == 1
    message = await broker.get(amqp_names.queue)
    assert message is not None
    assert json.loads(message.body) == {"hello": "world"}
    props = message.properties
    assert props.content_type == "application/json"
    assert props.delivery_mode == 2
    assert len(props.message_id or "") == 32
    assert props.timestamp is not None
    assert props.correlation_id == "c-1"
    assert message.headers == {"trace": "abc"}


async def test_thousands_of_publishes_in_flight_all_confirm(
    amqp_url: str, amqp_names: AmqpNames, broker: Broker, topology: dict[str, Any]
) -> None:
    """aioamqp ignores batch acks (https://github.com/Polyconseil/aioamqp/issues/233);
    our own confirm tracking must not hang."""
    await broker.declare(**topology)
    async with BaseProducer(url=amqp_url, exchange=amqp_names.exchange) as producer:
        await asyncio.wait_for(
            asyncio.gather(*(producer.publish_message(i, routing_key="k") for i in range(5000))),
            timeout=60,
        )
    assert await broker.message_count(amqp_names.queue) == 5000


async def test_unroutable_mandatory_publish_raises(amqp_url: str, amqp_names: AmqpNames) -> None:
    """A mandatory message no queue takes must raise, never vanish silently."""
    async with BaseProducer(url=amqp_url, exchange=amqp_names.exchange) as producer:
        results: tuple[BaseException | None, ...] = await asyncio.gather(
            producer.publish_message("a", routing_key="nowhere"),
            producer.publish_message("b", routing_key="nowhere", mandatory=True),
            return_exceptions=True,
        )
        routed, unroutable = results
        assert routed is None  # without mandatory the broker drops it, as AMQP says
        assert isinstance(unroutable, UnroutableError)
        assert unroutable.reply_code == 312
        assert unroutable.routing_key == "nowhere"
        # the channel stays usable after a return
        await producer.publish_message("c", routing_key="nowhere")


async def test_nack_raises_a_typed_error(
    amqp_url: str, amqp_names: AmqpNames, broker: Broker, topology: dict[str, Any]
) -> None:
    """A broker nack (here: a full reject-publish queue) must reach the caller as an error."""
    await broker.declare(
        **topology,
        arguments={"x-max-length": 1, "x-overflow": "reject-publish"},
    )
    async with BaseProducer(url=amqp_url, exchange=amqp_names.exchange) as producer:
        await producer.publish_message("first", routing_key="k")
        with pytest.raises(PublishNackedError, match="nacked"):
            await producer.publish_message("second", routing_key="k")
        assert await broker.message_count(amqp_names.queue) == 1


async def test_default_exchange_routes_to_the_queue_by_name(
    amqp_url: str, amqp_names: AmqpNames, broker: Broker
) -> None:
    """exchange='' must work: the routing key is the queue name, defaulting to queue=."""
    await broker.declare(queue=amqp_names.queue)
    producer = BaseProducer(url=amqp_url, exchange="", queue=amqp_names.queue, serializer="msgpack")
    try:
        await producer.publish_message({"n": 1}, mandatory=True)
    finally:
        await producer.close()
    message = await broker.get(amqp_names.queue)
    assert message is not None
    assert message.properties.content_type == "application/msgpack"
    assert msgpack.unpackb(message.body) == {"n": 1}


async def test_passive_producer_fails_on_a_missing_exchange(
    amqp_url: str, amqp_names: AmqpNames
) -> None:
    """passive=True checks topology instead of creating it, and says what is missing."""
    producer = BaseProducer(url=amqp_url, exchange=amqp_names.exchange, passive=True)
    try:
        with pytest.raises(TopologyError, match=r"exchange '.*' \(passive check\).*404"):
            await producer.connect()
    finally:
        await producer.close()


async def test_unreachable_broker_fails_within_connect_timeout() -> None:
    """Nothing hangs: a silent broker fails fast, naming the URL without its password."""
    with socket.socket() as listener:  # accepts TCP connections, never speaks AMQP
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        producer = BaseProducer(
            url=f"amqp://guest:topsecret@127.0.0.1:{port}/", exchange="x", connect_timeout=0.5
        )
        started = time.monotonic()
        with pytest.raises(AmqpTimeoutError, match=r"guest:\*\*\*@127\.0\.0\.1") as info:
            await producer.publish_message("x", routing_key="k")
        assert time.monotonic() - started < 3
        assert "topsecret" not in str(info.value)
        await producer.close()


async def test_refused_connection_is_a_connection_error() -> None:
    """A closed port is an AmqpConnectionError, the root callers handle for outages."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    producer = BaseProducer(url=f"amqp://127.0.0.1:{port}/", exchange="x")
    with pytest.raises(AmqpConnectionError, match=rf"cannot connect to amqp://127.0.0.1:{port}/"):
        await producer.connect()
    await producer.close()


async def test_close_is_idempotent_and_publishing_after_close_raises(
    amqp_url: str, amqp_names: AmqpNames
) -> None:
    """Closing twice is harmless; using a closed producer is a clear error, not a reconnect."""
    producer = BaseProducer(url=amqp_url, exchange=amqp_names.exchange)
    await producer.connect()
    was_connected = producer.is_connected
    await producer.close()
    await producer.close()
    assert (was_connected, producer.is_connected) == (True, False)
    with pytest.raises(ClosedError, match="is closed"):
        await producer.publish_message("x", routing_key="k")


def test_publish_without_a_running_loop_does_the_work(amqp_url: str, amqp_names: AmqpNames) -> None:
    """The talk's plain-script usage: un-awaited calls must still publish and close."""
    producer = BaseProducer(url=amqp_url, exchange=amqp_names.exchange)
    with pytest.raises(UnroutableError):
        _ = producer.publish_message("foo", routing_key="bar", mandatory=True)
    result = producer.publish_message("foo", routing_key="bar")
    closed = producer.close()
    assert not producer.is_connected

    async def await_them() -> None:  # awaiting what they returned is safe and a no-op
        await result
        await closed

    asyncio.run(await_them())


async def test_unknown_vhost_is_reported_with_the_broker_reason(amqp_url: str) -> None:
    """A handshake refused by the broker must say why, with the URL's password masked."""
    producer = BaseProducer(url=amqp_url.rstrip("/") + "/no_such_vhost_here", exchange="x")
    with pytest.raises(AmqpConnectionError, match=r"530 NOT_ALLOWED.*no_such_vhost_here") as info:
        await producer.connect()
    assert ":***@" in str(info.value) or "@" not in amqp_url
    await producer.close()


async def test_wrong_password_is_a_connection_error_without_the_password(amqp_url: str) -> None:
    """Bad credentials fail (RabbitMQ delays its answer ~3 s) and never echo the password."""
    parts = urlsplit(amqp_url)
    bad = parts._replace(netloc=f"guest:WrongPass1@{parts.hostname}:{parts.port or 5672}").geturl()
    producer = BaseProducer(url=bad, exchange="x")
    with pytest.raises(
        AmqpConnectionError, match=r"login as 'guest' to vhost '/' \(wrong user, password"
    ) as info:
        await producer.connect()
    assert "WrongPass1" not in str(info.value)
    await producer.close()


async def test_bad_property_raises_and_leaves_the_channel_usable(
    amqp_url: str, amqp_names: AmqpNames, broker: Broker, topology: dict[str, Any]
) -> None:
    """A bad property must be refused before any frame is written (no corrupt stream)."""
    await broker.declare(**topology)
    async with BaseProducer(url=amqp_url, exchange=amqp_names.exchange, serializer="raw") as p:
        with pytest.raises(ConfigurationError, match=r"properties: unknown property 'colour'"):
            await p.publish_message(b"x", routing_key="k", properties={"colour": "red"})
        with pytest.raises(
            ConfigurationError,
            match=r"properties: priority: expected an integer from 0 to 255, got 'high'",
        ):
            await p.publish_message(b"x", routing_key="k", properties={"priority": "high"})
        big = bytes(range(256)) * 1200  # 300 KiB: several frames of the negotiated frame_max
        await p.publish_message(big, routing_key="k")
    message = await broker.get(amqp_names.queue)
    assert message is not None
    assert message.body == big


async def test_url_list_falls_over_to_the_next_broker(
    amqp_url: str, amqp_names: AmqpNames, caplog: pytest.LogCaptureFixture
) -> None:
    """With a list of URLs a dead first broker is skipped; logs never show a password."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"amqp://guest:deadpass@127.0.0.1:{sock.getsockname()[1]}/"
    caplog.set_level("INFO", logger="aioamqp_ext")
    async with BaseProducer(url=[dead, amqp_url], exchange=amqp_names.exchange) as producer:
        assert producer.is_connected
    assert any("connected to" in r.getMessage() for r in caplog.records)
    password = urlsplit(amqp_url).password
    for record in caplog.records:
        assert "deadpass" not in record.getMessage()
        assert not password or f":{password}@" not in record.getMessage()


async def test_all_urls_failing_names_each_masked() -> None:
    """When no broker answers, the error lists every URL tried, passwords masked."""
    ports = []
    for _ in range(2):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
    urls = [f"amqp://u:pw{port}@127.0.0.1:{port}/" for port in ports]
    producer = BaseProducer(url=urls, exchange="x")
    with pytest.raises(AmqpConnectionError, match=r"cannot connect to any broker") as info:
        await producer.connect()
    for port in ports:
        assert f"u:***@127.0.0.1:{port}" in str(info.value)
        assert f"pw{port}" not in str(info.value)
    await producer.close()
