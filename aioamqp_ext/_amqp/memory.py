"""An in-memory broker and a :class:`MemoryConnection` with the methods of
:class:`~aioamqp_ext._amqp.transport.Connection`, for :mod:`aioamqp_ext.testing`.

Each publish goes through the production :class:`~aioamqp_ext._amqp.frames.Outbox` (so a
property the real transport refuses is refused here, with the same error) and its frames are
decoded by pamqp, as a consumer reading from a real broker decodes them: the handler sees the
very types a real delivery carries. The broker keeps what RabbitMQ does that our consumers
rely on: exchanges (default, direct, topic, fanout, headers without arguments), bindings,
mandatory returns, prefetch, dead-lettering on reject and on a queue's message TTL. A message
entering a queue with ``x-message-ttl`` that nobody consumes expires at once (retry delays are
not waited for). Headers RabbitMQ adds itself (``x-death``, ``x-delivery-count``) are not added.

Messages carry the :class:`Trace` of the ``deliver`` call that started them: a message
published while a handler of a traced message runs (a retry's copy, a reply) carries its
trace too, through a context variable that the handler's task inherits.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pamqp.body
import pamqp.commands
import pamqp.frame
import pamqp.header

from ..config import BrokerUrl
from ..errors import AmqpConnectionError, TopologyError
from ..message import RETRY_HEADER
from .confirms import unroutable
from .delivery import Delivery
from .frames import Outbox

__all__ = ["MemoryBroker", "MemoryConnection", "Trace"]

FRAME_MAX = 131072  # RabbitMQ's default frame_max
DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"
_PREDECLARED = {"": "direct", "amq.direct": "direct", "amq.topic": "topic",
                "amq.fanout": "fanout", "amq.headers": "headers"}  # fmt: skip


@dataclass(eq=False)
class Trace:
    """The life of one message given to the broker by the harness, across its copies.

    Attributes:
        reply_to: where a reply to it goes (recorded when published there).
        results: per delivery settled: ``'ack'``, ``'retry'`` or ``'dead_letter'``.
        errors: per delivery settled: what the consumer reported as its failure, or None.
        retries: the retry counter (its header) of the last delivery settled.
        hold: queues its copies never reach (``follow_retries=False``: a retry is dropped).
        failure: what the consumer reported as the failure of the delivery being handled.
        reply: the reply's body and properties, once published.
        done: resolved when no copy is left to handle.
    """

    reply_to: str | None = None
    results: list[str] = field(default_factory=list)
    errors: list[BaseException | None] = field(default_factory=list)
    retries: int = 0
    hold: frozenset[str] = frozenset()
    failure: BaseException | None = None
    reply: tuple[bytes, Any] | None = None
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


CURRENT: contextvars.ContextVar[Trace | None] = contextvars.ContextVar(
    "aioamqp_ext_memory_trace", default=None
)


@dataclass(eq=False)
class _Message:
    body: bytes
    properties: Any  # pamqp's Basic.Properties, as decoded from the frame
    exchange: str
    routing_key: str
    trace: Trace | None
    redelivered: bool = False


@dataclass(eq=False)
class _Consumer:
    tag: str
    conn: MemoryConnection
    on_delivery: Callable[[Delivery], None]
    no_ack: bool


@dataclass(eq=False)
class _Queue:
    name: str
    durable: bool
    arguments: dict[str, Any]
    messages: deque[_Message] = field(default_factory=deque)
    consumers: list[_Consumer] = field(default_factory=list)


class MemoryBroker:
    """Exchanges, queues and bindings in memory, shared by the connections made from it."""

    def __init__(self) -> None:
        self.exchanges: dict[str, str] = dict(_PREDECLARED)
        self.queues: dict[str, _Queue] = {}
        self.bindings: list[tuple[str, str, str]] = []  # queue, exchange, routing key
        self.connections: list[MemoryConnection] = []  # the open ones
        self._pumping = False

    def connection(self, url: BrokerUrl, *, timeout: float) -> MemoryConnection:
        """A new connection to this broker (the ``transport`` of a consumer's link)."""
        return MemoryConnection(self, url, timeout=timeout)

    def declare(self, name: str) -> None:
        """Declare a plain queue ``name`` unless it exists (a requester's reply queue)."""
        self.queues.setdefault(name, _Queue(name, durable=False, arguments={}))

    def live(self, trace: Trace) -> int:
        """Copies of ``trace`` still to be handled: waiting in a queue somebody consumes, or
        delivered and not settled."""
        waiting = sum(
            1
            for queue in self.queues.values()
            if queue.consumers
            for message in queue.messages
            if message.trace is trace
        )
        return waiting + sum(conn.unsettled(trace) for conn in self.connections)

    def messages(self, queue: str) -> list[tuple[bytes, Any]]:
        """The body and properties of each message waiting in ``queue``, oldest first."""
        found = self.queues.get(queue)
        return [] if found is None else [(m.body, m.properties) for m in found.messages]

    def route(self, exchange: str, routing_key: str, headers: Any) -> list[_Queue]:
        """The queues a message published to ``exchange`` with ``routing_key`` reaches."""
        if exchange == "":
            found = self.queues.get(routing_key)
            return [found] if found is not None else []
        kind = self.exchanges[exchange]
        names: list[str] = []
        for name, bound_to, key in self.bindings:
            if bound_to == exchange and name not in names and _matches(kind, key, routing_key):
                names.append(name)
        return [self.queues[name] for name in names if name in self.queues]

    def enqueue(self, queue: _Queue, message: _Message) -> None:
        """Put ``message`` in ``queue``, expiring it at once into the queue's dead-letter
        exchange when the queue has a message TTL and nobody consumes it."""
        if "x-message-ttl" in queue.arguments and not queue.consumers:
            self.dead_letter(queue, message)
            return
        queue.messages.append(message)
        self.pump()

    def dead_letter(self, queue: _Queue, message: _Message) -> None:
        """Route ``message`` on through ``queue``'s dead-letter exchange, if it has one."""
        exchange = queue.arguments.get("x-dead-letter-exchange")
        if exchange is None or exchange not in self.exchanges:
            return
        key = queue.arguments.get("x-dead-letter-routing-key", message.routing_key)
        copy = _Message(message.body, message.properties, exchange, key, message.trace)
        for target in self.route(exchange, key, getattr(message.properties, "headers", None)):
            self.enqueue(target, copy)

    def pump(self) -> None:
        """Deliver what waits to consumers with room (on the next loop iteration, as a
        broker's deliveries arrive: never inside the call that queued the message)."""
        if not self._pumping:
            self._pumping = True
            asyncio.get_running_loop().call_soon(self._pump)

    def _pump(self) -> None:
        self._pumping = False
        for queue in list(self.queues.values()):
            turn = 0
            while queue.messages and queue.consumers:
                ready = [c for c in queue.consumers if c.conn.has_room()]
                if not ready:
                    break
                consumer = ready[turn % len(ready)]
                turn += 1
                consumer.conn.deliver(queue, consumer, queue.messages.popleft())


def _matches(kind: str, key: str, routing_key: str) -> bool:
    if kind in ("fanout", "headers"):  # a headers binding without arguments matches all
        return True
    if kind == "topic":
        return _topic(key.split("."), routing_key.split("."))
    return key == routing_key


def _topic(pattern: list[str], words: list[str]) -> bool:
    """Whether a topic binding's words match a routing key's (``*`` one word, ``#`` any)."""
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_topic(rest, words[i:]) for i in range(len(words) + 1))
    return bool(words) and head in ("*", words[0]) and _topic(rest, words[1:])


class MemoryConnection:
    """A connection to a :class:`MemoryBroker`, with the methods of ``Connection``."""

    def __init__(self, broker: MemoryBroker, url: BrokerUrl, *, timeout: float) -> None:
        self.broker = broker
        self.url = url
        self.timeout = timeout
        self.on_lost: Callable[[AmqpConnectionError], None] | None = None
        self._open = False
        self._confirms = False
        self._prefetch = 0
        self._next_tag = 1
        self._unacked: dict[int, tuple[_Queue, _Message]] = {}
        self._consumers: list[tuple[_Queue, _Consumer]] = []

    async def connect(self, *, heartbeat: int, confirms: bool, name: str) -> None:
        """Open (nothing can refuse it)."""
        self._open = True
        self.broker.connections.append(self)
        self._confirms = confirms

    @property
    def is_open(self) -> bool:
        """True until closed."""
        return self._open

    def _check_open(self, what: str) -> None:
        if not self._open:
            raise AmqpConnectionError(f"{what}: connection closed ({self.url})")

    async def declare_exchange(self, name: str, kind: str, *, durable: bool, passive: bool) -> None:
        """Declare (or check) an exchange, refusing another type as RabbitMQ does."""
        what = f"exchange {name!r}" + (" (passive check)" if passive else "")
        self._check_open(what)
        known = self.broker.exchanges.get(name)
        if known is None and passive:
            raise TopologyError(f"{what}: refused by {self.url}: 404 NOT_FOUND (in memory)")
        if known is not None and known != kind and not passive:
            raise TopologyError(
                f"{what}: refused by {self.url}: 406 PRECONDITION_FAILED - inequivalent arg "
                f"'type': {known!r} declared, {kind!r} asked (in memory)"
            )
        self.broker.exchanges.setdefault(name, kind)

    async def declare_queue(
        self, name: str, *, durable: bool, passive: bool, arguments: Mapping[str, Any]
    ) -> int:
        """Declare (or check) a queue; returns the number of messages ready in it."""
        what = f"queue {name!r}" + (" (passive check)" if passive else "")
        self._check_open(what)
        queue = self.broker.queues.get(name)
        if queue is None:
            if passive:
                raise TopologyError(f"{what}: refused by {self.url}: 404 NOT_FOUND (in memory)")
            queue = self.broker.queues[name] = _Queue(name, durable, dict(arguments))
        elif not passive and dict(arguments) != queue.arguments:
            raise TopologyError(
                f"{what}: refused by {self.url}: 406 PRECONDITION_FAILED - inequivalent "
                f"arguments: {queue.arguments!r} declared, {dict(arguments)!r} asked (in memory)"
            )
        return len(queue.messages)

    async def queue_state(self, queue: str) -> tuple[int, int]:
        """``queue``'s ready messages and consumers: ``(message_count, consumer_count)``."""
        what = f"queue {queue!r} (passive check for its depth)"
        self._check_open(what)
        found = self.broker.queues.get(queue)
        if found is None:
            raise TopologyError(f"{what}: refused by {self.url}: 404 NOT_FOUND (in memory)")
        return len(found.messages), len(found.consumers)

    async def bind_queue(self, queue: str, exchange: str, routing_key: str) -> None:
        """Bind ``queue`` to ``exchange`` with ``routing_key``."""
        what = f"binding of queue {queue!r} to exchange {exchange!r} with key {routing_key!r}"
        self._check_open(what)
        if exchange not in self.broker.exchanges or queue not in self.broker.queues:
            raise TopologyError(f"{what}: refused by {self.url}: 404 NOT_FOUND (in memory)")
        binding = (queue, exchange, routing_key)
        if binding not in self.broker.bindings:
            self.broker.bindings.append(binding)

    async def qos(self, prefetch_count: int, prefetch_size: int) -> None:
        """Limit unacknowledged deliveries."""
        self._check_open("basic.qos")
        self._prefetch = prefetch_count

    async def consume(
        self, queue: str, on_delivery: Callable[[Delivery], None], *, no_ack: bool = False
    ) -> str:
        """Start consuming ``queue``; ``on_delivery`` is called (synchronously) per message."""
        self._check_open(f"basic.consume on {queue!r}")
        found = self.broker.queues.get(queue)
        if found is None:
            raise AmqpConnectionError(
                f"basic.consume on {queue!r}: channel closed (404 NOT_FOUND - no queue "
                f"{queue!r}, in memory) ({self.url})"
            )
        consumer = _Consumer(f"memory.ctag.{id(self)}.{len(self._consumers)}", self, on_delivery,
                             no_ack)  # fmt: skip
        found.consumers.append(consumer)
        self._consumers.append((found, consumer))
        self.broker.pump()
        return consumer.tag

    async def cancel(self, consumer_tag: str) -> None:
        """Stop a consumer: it gets no more messages."""
        self._check_open("basic.cancel")
        for queue, consumer in list(self._consumers):
            if consumer.tag == consumer_tag:
                self._consumers.remove((queue, consumer))
                queue.consumers.remove(consumer)

    def unsettled(self, trace: Trace) -> int:
        """Deliveries of ``trace`` on this connection not settled yet."""
        return sum(1 for _, message in self._unacked.values() if message.trace is trace)

    def has_room(self) -> bool:
        """Whether prefetch lets this connection take one more delivery."""
        return self._open and (self._prefetch == 0 or len(self._unacked) < self._prefetch)

    def deliver(self, queue: _Queue, consumer: _Consumer, message: _Message) -> None:
        """Hand ``message`` to ``consumer`` (by the broker's pump), within its trace."""
        tag, self._next_tag = self._next_tag, self._next_tag + 1
        if consumer.no_ack:
            self._settled(message, "ack")
        else:
            self._unacked[tag] = (queue, message)
        delivery = Delivery(message.body, tag, message.exchange, message.routing_key,
                            message.redelivered, message.properties)  # fmt: skip
        token = CURRENT.set(message.trace)
        try:
            consumer.on_delivery(delivery)
        finally:
            CURRENT.reset(token)

    async def ack(self, delivery_tag: int, *, now: bool = False) -> None:
        """Acknowledge one delivery."""
        self._check_open("basic.ack")
        _, message = self._take(delivery_tag, "basic.ack")
        trace = message.trace
        if trace is not None:  # the consumer acks a failed message once its retry is queued
            self._settled(message, "ack" if trace.failure is None else "retry")
        self.broker.pump()

    async def reject(self, delivery_tag: int, *, requeue: bool) -> None:
        """Reject one delivery: requeued, or dead-lettered through its queue's arguments."""
        self._check_open("basic.reject")
        queue, message = self._take(delivery_tag, "basic.reject")
        if requeue:
            message.redelivered = True
            queue.messages.appendleft(message)
        else:
            self.broker.dead_letter(queue, message)
            self._settled(message, "dead_letter")
        self.broker.pump()

    def _take(self, delivery_tag: int, what: str) -> tuple[_Queue, _Message]:
        taken = self._unacked.pop(delivery_tag, None)
        if taken is None:  # RabbitMQ closes the channel: 406 PRECONDITION_FAILED
            self._lose(f"channel closed (406 PRECONDITION_FAILED - unknown delivery tag "
                       f"{delivery_tag} in {what}, in memory)")  # fmt: skip
            raise AmqpConnectionError(f"{what}: unknown delivery tag {delivery_tag} ({self.url})")
        return taken

    def _settled(self, message: _Message, result: str) -> None:
        trace = message.trace
        if trace is None:
            return
        trace.results.append(result)
        headers = getattr(message.properties, "headers", None) or {}
        retries = headers.get(RETRY_HEADER, 0)
        trace.retries = retries if type(retries) is int else 0
        trace.errors.append(trace.failure)
        trace.failure = None
        if not self.broker.live(trace) and not trace.done.done():
            trace.done.set_result(None)

    async def publish(
        self,
        body: bytes,
        *,
        exchange: str,
        routing_key: str,
        properties: Mapping[str, Any],
        mandatory: bool,
    ) -> None:
        """Publish one message: encoded as the real transport encodes it, then routed.

        Raises:
            ConfigurationError: ``properties`` holds an unknown or ill-typed property.
            UnroutableError: ``mandatory`` and no queue matched (with confirms on).
            AmqpConnectionError: the connection is closed, or the exchange does not exist
                (RabbitMQ closes the channel).
        """
        self._check_open("publish")
        message = decode(body, properties, (exchange, routing_key, mandatory))
        message.trace = trace = CURRENT.get()
        if exchange not in self.broker.exchanges:
            reason = f"channel closed (404 NOT_FOUND - no exchange {exchange!r}, in memory)"
            self._lose(reason)
            raise AmqpConnectionError(f"publish: {reason} ({self.url})")
        if trace is not None and exchange == "" and routing_key == trace.reply_to:
            trace.reply = (message.body, message.properties)
            if routing_key.startswith(DIRECT_REPLY_TO):
                return
        if trace is not None and exchange == "" and routing_key in trace.hold:
            return  # a retry's copy, kept out as the harness was asked
        targets = self.broker.route(
            exchange, routing_key, getattr(message.properties, "headers", None)
        )
        if not targets and mandatory and self._confirms:
            message_id = str(properties.get("message_id"))
            raise unroutable(
                message_id, exchange=exchange, routing_key=routing_key, reply_code=312,
                reply_text="NO_ROUTE",
            )  # fmt: skip
        for queue in targets:
            self.broker.enqueue(queue, message)

    def _lose(self, reason: str) -> None:
        was_open = self._open
        self._drop()
        if was_open and self.on_lost is not None:
            self.on_lost(AmqpConnectionError(f"{reason} ({self.url})"))

    def _drop(self) -> None:
        """Closed: consumers go, unacked messages go back to their queues (redelivered)."""
        self._open = False
        if self in self.broker.connections:
            self.broker.connections.remove(self)
        for queue, consumer in self._consumers:
            queue.consumers.remove(consumer)
        self._consumers.clear()
        for queue, message in reversed(list(self._unacked.values())):
            message.redelivered = True
            queue.messages.appendleft(message)
        self._unacked.clear()
        self.broker.pump()

    async def close(self) -> None:
        """Close; idempotent, never raises."""
        if self._open:
            self._drop()


def decode(body: bytes, properties: Mapping[str, Any], to: tuple[str, str, bool]) -> _Message:
    """Encode a publish with the production :class:`Outbox`, then decode its frames with
    pamqp as a reader does: the message exactly as a consumer would receive it.

    Raises:
        ConfigurationError: what the real transport raises for the same publish.
    """
    frames: list[bytes] = []
    outbox = Outbox(1, frames.extend, FRAME_MAX)
    outbox.publish(body, properties, to, now=True)
    data = b"".join(frames)
    method: Any = None
    header: Any = None
    parts: list[bytes] = []
    while data:
        used, _, frame = pamqp.frame.unmarshal(data)
        data = data[used:]
        if isinstance(frame, pamqp.commands.Basic.Publish):
            method = frame
        elif isinstance(frame, pamqp.header.ContentHeader):
            header = frame
        elif isinstance(frame, pamqp.body.ContentBody):
            parts.append(bytes(frame.value))
    assert method is not None
    assert header is not None
    return _Message(b"".join(parts), header.properties, str(method.exchange),
                    str(method.routing_key), None)  # fmt: skip
