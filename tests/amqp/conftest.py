"""Helpers for the aioamqp_ext tests: a raw aioamqp side-channel to the real broker.

The raw channel is only for set-up and inspection (what reached a queue, how many messages
wait in it); the code under test always talks to the broker through aioamqp_ext.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

from aioamqp_ext import AmqpExtError, BaseProducer
from tests.conftest import AmqpNames, amqp_connect

T = TypeVar("T")


@dataclass
class RawMessage:
    """A message as it sits in a queue: body, properties and routing key."""

    body: bytes
    properties: Any
    routing_key: str

    @property
    def headers(self) -> dict[str, Any]:
        return dict(self.properties.headers or {})


@dataclass
class Broker:
    """A raw aioamqp connection to the test broker."""

    url: str
    protocol: Any
    transport: Any
    channel: Any = field(default=None)

    async def declare(
        self, *, exchange: str = "", queue: str = "", routing_key: str = "", **queue_kw: Any
    ) -> None:
        """Declare a durable topic exchange and/or a durable queue bound to it."""
        if exchange:
            await self.channel.exchange_declare(exchange, "topic", durable=True)
        if queue:
            await self.channel.queue_declare(queue, durable=True, **queue_kw)
        if exchange and queue:
            await self.channel.queue_bind(queue, exchange, routing_key)

    async def message_count(self, queue: str) -> int:
        """Ready messages in ``queue`` (a passive declare: the queue must exist)."""
        result = await self.channel.queue_declare(queue, passive=True)
        return int(result["message_count"])

    async def get(self, queue: str) -> RawMessage | None:
        """Take one message out of ``queue`` (acked), or None when it is empty."""
        import aioamqp

        try:
            data = await self.channel.basic_get(queue, no_ack=True)
        except aioamqp.EmptyQueue:
            return None
        return RawMessage(data["message"], data["properties"], data["routing_key"])

    async def take(self, queue: str, count: int, timeout: float = 15.0) -> list[RawMessage]:
        """Consume exactly ``count`` messages from ``queue`` (waiting for them), acked."""
        got: list[RawMessage] = []
        enough = asyncio.Event()

        async def on_message(channel: Any, body: bytes, envelope: Any, properties: Any) -> None:
            got.append(RawMessage(body, properties, envelope.routing_key))
            await channel.basic_client_ack(envelope.delivery_tag)
            if len(got) >= count:
                enough.set()

        result = await self.channel.basic_consume(on_message, queue_name=queue)
        try:
            await asyncio.wait_for(enough.wait(), timeout)
        finally:
            await self.channel.basic_cancel(result["consumer_tag"])
        return got


@pytest.fixture
async def broker(amqp_url: str) -> AsyncIterator[Broker]:
    """A raw connection to the broker for set-up and inspection, closed afterwards."""
    transport, protocol = await amqp_connect(amqp_url)
    try:
        broker = Broker(amqp_url, protocol, transport)
        broker.channel = await protocol.channel()
        yield broker
    finally:
        await protocol.close()
        transport.close()


async def broker_answers(url: str) -> bool:
    """Whether the broker at ``url`` completes an AMQP handshake within 2 s right now."""
    try:
        transport, protocol = await asyncio.wait_for(amqp_connect(url), timeout=2)
    except Exception:  # anything but a working handshake means: not yet
        return False
    await protocol.close()
    transport.close()
    return True


async def wait_for_broker(url: str, timeout: float) -> None:
    """Wait until the broker at ``url`` answers (polling every 0.1 s); fail after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await broker_answers(url):
        assert loop.time() < deadline, f"the broker did not answer within {timeout:g} s"
        await asyncio.sleep(0.1)


async def rabbitmqctl(*args: str) -> str:
    """Run ``rabbitmqctl -q ARGS`` on the test broker's machine; its output (skips without it)."""
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("rabbitmqctl is not installed on this machine")
    proc = await asyncio.create_subprocess_exec(
        "rabbitmqctl",
        "-q",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, f"rabbitmqctl {' '.join(args)}: {err.decode()}"
    return out.decode()


async def close_connections_named(prefix: str, expected: int = 0, timeout: float = 10.0) -> int:
    """Have the broker close (320 CONNECTION_FORCED) every connection whose name starts with
    ``prefix``, as an operator would, without touching anyone else's; returns how many.

    With ``expected``, keep listing until that many were closed or ``timeout`` passed: the
    broker lists a connection that has just been opened only once its handshake is done.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    closed: set[str] = set()
    while True:
        listing = await rabbitmqctl(
            "--no-table-headers", "list_connections", "pid", "client_properties"
        )
        pids = [
            line.split("\t", 1)[0]
            for line in listing.splitlines()
            if f'{{"connection_name","{prefix}' in line
        ]
        for pid in pids:
            if pid not in closed:
                await rabbitmqctl("close_connection", pid, "closed by the aioamqp_ext test suite")
                closed.add(pid)
        if len(closed) >= expected or loop.time() > deadline:
            return len(closed)
        await asyncio.sleep(0.1)  # polling the broker's listing, which has no event to await


class Stream:
    """Publishes ``"0"``, ``"1"``, ... (each also its ``message_id``) at about ``rate`` per
    second, at most ``window`` in flight, for as long as a fault scenario runs, then until
    ``tail`` more are confirmed: the scenario, not a fixed count at a fixed rate, decides
    when the stream ends, so a slow fault (a node restarting on a loaded machine) can never
    outlast it. Each id is recorded as confirmed or failed (with the error) as its publish
    returns; ``ids`` is everything published, whatever the count came to.

    The scenario waits on the stream's progress (``await stream.confirmed_more(n)``), which
    is an event, not a poll.
    """

    def __init__(
        self, producer: BaseProducer, *, rate: float, window: int = 200, tail: int = 1_000
    ) -> None:
        self.producer = producer
        self.rate = rate
        self.window = window
        self.tail = tail
        self.published = 0
        self.confirmed: set[str] = set()
        self.failed: dict[str, str] = {}
        self.seconds = 0.0  # how long publishing went on
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._publisher: asyncio.Task[None] | None = None

    @property
    def ids(self) -> set[str]:
        """Every id published so far."""
        return {str(n) for n in range(self.published)}

    async def confirmed_more(self, count: int, timeout: float = 120.0) -> None:
        """Return once ``count`` more publishes than now have been confirmed. ``timeout`` only
        tells a hang (a stream that stopped confirming) from a slow machine."""
        target = len(self.confirmed) + count
        if len(self.confirmed) >= target:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((target, waiter))
        try:
            async with asyncio.timeout(timeout):
                await waiter
        except TimeoutError:
            raise AssertionError(
                f"not within {timeout:g} s: {count} more confirmed (at {len(self.confirmed)} "
                f"of {self.published} published, {len(self.failed)} failed)"
            ) from None
        finally:
            if (target, waiter) in self._waiters:
                self._waiters.remove((target, waiter))

    async def during(self, scenario: Awaitable[T]) -> T:
        """Publish while ``scenario`` runs, then until ``tail`` more are confirmed; wait for
        every publish in flight; return what the scenario returned. If the scenario fails,
        the stream stops at once and the failure propagates."""
        self._publisher = asyncio.create_task(self._publish())
        try:
            result = await self._racing(scenario)
            await self._racing(self.confirmed_more(self.tail))
        except BaseException:
            self._publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._publisher
            raise
        self._publisher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._publisher
        return result

    async def _racing(self, step: Awaitable[T]) -> T:
        """Await ``step``, but fail at once if the publishing task died meanwhile."""
        assert self._publisher is not None
        task = asyncio.ensure_future(step)
        await asyncio.wait({task, self._publisher}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            task.cancel()
            self._publisher.result()  # raises what killed it
            raise AssertionError("the publishing task ended before the scenario")
        return task.result()

    async def _publish(self) -> None:
        """Publish until cancelled; on cancellation, let the publishes in flight finish."""
        loop = asyncio.get_running_loop()
        slots = asyncio.Semaphore(self.window)
        started = loop.time()
        tasks: set[asyncio.Task[None]] = set()
        try:
            while True:
                await slots.acquire()
                task = asyncio.create_task(self._one(str(self.published), slots))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                self.published += 1
                ahead = started + self.published / self.rate - loop.time()
                if ahead > 0:  # pacing the load, not synchronising anything
                    await asyncio.sleep(ahead)
        finally:
            self.seconds = loop.time() - started
            if tasks:
                await asyncio.wait(tasks)  # a publish that began ends confirmed or failed

    async def _one(self, message_id: str, slots: asyncio.Semaphore) -> None:
        try:
            await self.producer.publish_message(
                message_id, routing_key="k", properties={"message_id": message_id}
            )
        except AmqpExtError as exc:
            self.failed[message_id] = repr(exc)
        else:
            self.confirmed.add(message_id)
            done = len(self.confirmed)
            for target, waiter in self._waiters:
                if done >= target and not waiter.done():
                    waiter.set_result(None)
        finally:
            slots.release()


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``predicate`` until true (every 10 ms); the seconds it took. Fails after ``timeout``."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not predicate():
        if loop.time() - started > timeout:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        await asyncio.sleep(0.01)
    return loop.time() - started


@pytest.fixture
def topology(amqp_names: AmqpNames) -> dict[str, Any]:
    """The keywords most tests give a consumer (or ``Broker.declare``): this test's own
    exchange and queue, bound with routing key ``k``."""
    return {"exchange": amqp_names.exchange, "queue": amqp_names.queue, "routing_key": "k"}
