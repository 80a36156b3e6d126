"""Self-healing connections: faults injected between client and the real broker, then healed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from aioamqp_ext import (
    AmqpTimeoutError,
    BaseConsumer,
    BaseProducer,
    ClosedError,
    PublishTimeoutError,
)
from aioamqp_ext._reconnect import Backoff
from tests.amqp.conftest import Broker, close_connections_named, wait_until
from tests.conftest import AmqpNames
from tests.proxy import FaultProxy

MakeProxy = Callable[[str], Awaitable[tuple[FaultProxy, str]]]
FAST = {"reconnect_delay": 0.05, "reconnect_max_delay": 0.5}  # heal quickly in tests


class Recorder(BaseConsumer):
    """Records payloads (at least once: a payload may come twice); ``wait_for`` waits for some."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.items: list[Any] = []
        self._arrived = asyncio.Event()

    async def process_request(self, data: Any) -> None:
        self.items.append(data)
        self._arrived.set()

    async def wait_for(self, *payloads: Any, timeout: float = 10) -> None:
        async with asyncio.timeout(timeout):
            while not all(payload in self.items for payload in payloads):
                self._arrived.clear()
                await self._arrived.wait()


def messages(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    """Log lines of aioamqp_ext containing ``text``."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("aioamqp_ext") and text in r.getMessage()
    ]


def test_backoff_doubles_up_to_its_cap_with_jitter() -> None:
    """Retries must back off (no hammering a restarting broker) yet stay bounded."""
    backoff = Backoff(0.5, 5.0)
    delays = [backoff.next() for _ in range(40)]
    for n, delay in enumerate(delays):
        ceiling = min(5.0, 0.5 * 2**n)
        assert ceiling / 2 <= delay <= ceiling
    assert len(set(delays[10:])) > 1  # jittered, so clients do not return in lockstep


async def test_consumer_heals_after_a_cut_and_serve_keeps_running(
    fault_proxy: MakeProxy,
    amqp_url: str,
    amqp_names: AmqpNames,
    caplog: pytest.LogCaptureFixture,
    topology: dict[str, Any],
) -> None:
    """A worker must survive a network cut by itself, logging the loss and the heal once."""
    caplog.set_level(logging.INFO, logger="aioamqp_ext")
    fault, url = await fault_proxy(amqp_url)
    consumer = Recorder(url=url, **topology, **FAST)
    serving = asyncio.create_task(consumer.serve(handle_signals=False))
    async with BaseProducer(url=amqp_url, exchange=amqp_names.exchange) as producer:
        await consumer.wait_connected(timeout=10)
        await producer.publish_message(1, routing_key="k")
        await consumer.wait_for(1)
        assert fault.cut() == 1
        await wait_until(lambda: bool(messages(caplog, "reconnected")), 10, "reconnected")
        await consumer.wait_connected(timeout=10)
        assert consumer.is_connected
        await producer.publish_message(2, routing_key="k")
        await consumer.wait_for(2)
    assert not serving.done()
    consumer.stop()
    await asyncio.wait_for(serving, timeout=10)
    assert set(consumer.items) == {1, 2}  # 1 twice if its ack was cut off: at least once
    assert len(messages(caplog, "lost its connection")) == 1
    assert len(messages(caplog, "reconnected to")) == 1
    assert messages(caplog, "after 1 try in")


async def test_connections_closed_by_an_operator_are_healed(
    amqp_url: str, amqp_names: AmqpNames, unique_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """rabbitmqctl close_connection (320 CONNECTION_FORCED) must not stop producer or consumer."""
    caplog.set_level(logging.INFO, logger="aioamqp_ext")
    names: dict[str, Any] = {"exchange": amqp_names.exchange, **FAST}
    consumer = Recorder(
        url=amqp_url,
        queue=amqp_names.queue,
        routing_key="k",
        connection_name=f"{unique_name} consumer",
        **names,
    )
    producer = BaseProducer(url=amqp_url, connection_name=f"{unique_name} producer", **names)
    async with consumer, producer:
        await producer.publish_message("before", routing_key="k")
        assert (
            await close_connections_named(unique_name, expected=2) == 2
        )  # found by connection_name
        await consumer.wait_for("before")
        await wait_until(lambda: len(messages(caplog, "reconnected")) == 2, 10, "both healed")
        await producer.publish_message("after", routing_key="k")
        await consumer.wait_for("after")
    assert set(consumer.items) == {"before", "after"}
    assert len(messages(caplog, "320 CONNECTION_FORCED")) == 2


async def test_a_stalled_connection_is_noticed_by_heartbeat_and_healed_on_the_next_url(
    fault_proxy: MakeProxy,
    amqp_url: str,
    amqp_names: AmqpNames,
    caplog: pytest.LogCaptureFixture,
    topology: dict[str, Any],
) -> None:
    """A silent peer (no FIN, no RST) is only found by heartbeats; then the next URL is used."""
    caplog.set_level(logging.INFO, logger="aioamqp_ext")
    fault, url = await fault_proxy(amqp_url)
    consumer = Recorder(
        url=[url, amqp_url],
        **topology,
        heartbeat=1,
        **FAST,
    )
    async with consumer, BaseProducer(url=amqp_url, exchange=amqp_names.exchange) as producer:
        loop = asyncio.get_running_loop()
        fault.stall()
        stalled = loop.time()
        noticed = await wait_until(lambda: not consumer.is_connected, 10, "loss noticed")
        await consumer.wait_connected(timeout=10)
        healed = loop.time() - stalled
        await producer.publish_message("after the stall", routing_key="k")
        await consumer.wait_for("after the stall")
    assert noticed < 3.5  # two 1 s heartbeat intervals, and some slack
    (lost,) = messages(caplog, "lost its connection")
    assert "no heartbeat from the broker" in lost
    (reconnected,) = messages(caplog, "reconnected to")
    assert f"127.0.0.1:{fault.port}" not in reconnected  # the other URL, not the stalled one
    print(f"\nstall noticed by heartbeat after {noticed:.2f} s, healed after {healed:.2f} s")


async def test_a_handler_finishing_after_a_reconnect_does_not_ack_on_the_new_channel(
    fault_proxy: MakeProxy,
    amqp_url: str,
    amqp_names: AmqpNames,
    broker: Broker,
    topology: dict[str, Any],
) -> None:
    """Delivery tags are per channel: an old tag acked on the new one would ack another message."""
    fault, url = await fault_proxy(amqp_url)
    entered = [asyncio.Event(), asyncio.Event()]
    release = [asyncio.Event(), asyncio.Event()]
    calls = 0

    class Slow(BaseConsumer):
        async def process_request(self, data: Any) -> None:
            nonlocal calls
            call, calls = calls, calls + 1
            entered[call].set()
            await release[call].wait()

    consumer = Slow(
        url=url,
        **topology,
        close_timeout=0.2,
        **FAST,
    )
    await consumer.consume()
    async with BaseProducer(url=amqp_url, exchange=amqp_names.exchange) as producer:
        await producer.publish_message("job", routing_key="k")
    await asyncio.wait_for(entered[0].wait(), timeout=10)
    fault.cut()
    # The broker redelivers the message on the new channel, with the same tag, 1.
    await asyncio.wait_for(entered[1].wait(), timeout=10)
    release[0].set()  # the first handler ends now; its tag 1 must not be acked anywhere
    await wait_until(lambda: calls == 2 and release[0].is_set(), 5, "first handler released")
    await asyncio.sleep(0)  # one step: a wrongly queued ack would be written now
    await consumer.close()  # the second handler is cancelled, unacked: the message goes back
    ready = 0

    async def count() -> None:
        nonlocal ready
        ready = await broker.message_count(amqp_names.queue)

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while ready != 1 and loop.time() < deadline:
        await count()
    assert ready == 1


async def test_a_publish_during_an_outage_waits_for_the_connection_then_raises(
    fault_proxy: MakeProxy,
    amqp_url: str,
    amqp_names: AmqpNames,
    broker: Broker,
    topology: dict[str, Any],
) -> None:
    """During an outage a publish waits up to publish_timeout, then fails with a typed error."""
    await broker.declare(**topology)
    fault, url = await fault_proxy(amqp_url)
    options: dict[str, Any] = {"url": url, "exchange": amqp_names.exchange, **FAST}
    hasty = BaseProducer(publish_timeout=0.5, **options)
    patient = BaseProducer(publish_timeout=10, **options)
    async with hasty, patient:
        fault.refuse()
        fault.cut()
        await wait_until(lambda: not (hasty.is_connected or patient.is_connected), 5, "outage")
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(PublishTimeoutError, match=r"not published: no connection .* 0.5 s"):
            await hasty.publish_message("lost cause", routing_key="k")
        assert 0.4 < loop.time() - started < 2
        with pytest.raises(AmqpTimeoutError, match=r"not connected within 0.2 s"):
            await hasty.wait_connected(timeout=0.2)
        assert "reconnecting" in repr(hasty)
        waiting = asyncio.create_task(patient.publish_message("patient", routing_key="k"))
        await asyncio.sleep(0.1)  # the outage goes on for a moment while the publish waits
        assert not waiting.done()
        fault.refuse(False)
        await asyncio.wait_for(waiting, timeout=10)
    assert [m.body for m in await broker.take(amqp_names.queue, 1)] == [b'"patient"']


def _pending_tasks_of_ours() -> list[asyncio.Task[Any]]:
    """Unfinished tasks running code of aioamqp_ext or aioamqp (the test's own excluded)."""
    current = asyncio.current_task()
    pending = [task for task in asyncio.all_tasks() if task is not current and not task.done()]
    code = [getattr(task.get_coro(), "cr_code", None) for task in pending]
    return [t for t, c in zip(pending, code, strict=True) if c and "aioamqp" in c.co_filename]


async def test_close_during_an_outage_returns_within_its_timeout_and_leaks_no_tasks(
    fault_proxy: MakeProxy, amqp_url: str, amqp_names: AmqpNames
) -> None:
    """Shutting down while the broker is away must neither hang nor leave tasks behind."""
    fault, url = await fault_proxy(amqp_url)
    options: dict[str, Any] = {"exchange": amqp_names.exchange, **FAST}
    consumer = Recorder(
        url=url, queue=amqp_names.queue, routing_key="k", close_timeout=1.0, **options
    )
    producer = BaseProducer(url=url, **options)
    await consumer.consume()
    await producer.connect()
    fault.refuse()
    fault.cut()
    waiting = asyncio.create_task(producer.publish_message("never", routing_key="k"))
    await wait_until(lambda: not (consumer.is_connected or producer.is_connected), 5, "outage")
    assert _pending_tasks_of_ours()  # the healers, retrying: the check below does see them
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.wait_for(asyncio.gather(consumer.close(), producer.close()), timeout=5)
    assert loop.time() - started < 1.0
    with pytest.raises(ClosedError):
        await waiting
    assert _pending_tasks_of_ours() == []


async def test_a_channel_closed_by_the_broker_heals_and_declares_the_topology_again(
    amqp_url: str,
    amqp_names: AmqpNames,
    broker: Broker,
    caplog: pytest.LogCaptureFixture,
    topology: dict[str, Any],
) -> None:
    """A deleted queue cancels the consumer; healing must declare and bind it again."""
    caplog.set_level(logging.INFO, logger="aioamqp_ext")
    consumer = Recorder(url=amqp_url, **topology, **FAST)
    async with consumer, BaseProducer(url=amqp_url, exchange=amqp_names.exchange) as producer:
        await broker.channel.queue_delete(amqp_names.queue)
        await wait_until(lambda: bool(messages(caplog, "reconnected")), 10, "healed")
        await producer.publish_message("routed again", routing_key="k", mandatory=True)
        await consumer.wait_for("routed again")
    assert messages(caplog, "consumer cancelled by the broker")
