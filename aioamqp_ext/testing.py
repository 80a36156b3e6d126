"""Test a service's consumers and producers in memory, in milliseconds, without a broker.

- :class:`ConsumerHarness` runs a consumer through its production code (deserialization, the
  handler, retries, dead-lettering, ``handler_timeout``, replies, acks) on an in-memory
  broker: only the transport is replaced. :meth:`ConsumerHarness.deliver` gives it one
  message and returns its :class:`Outcome`.
- :class:`RecordingProducer` is a :class:`~aioamqp_ext.BaseProducer` that records what it
  would publish instead of sending it; its ``request`` is answered by a harness or a function.
- The pytest fixture ``amqp_harness`` (registered by this distribution's pytest plugin, active
  only in tests that ask for it) starts harnesses and closes them at teardown.

What the in-memory broker does and does not do is listed in ``docs/testing.md``; a suite test
runs the same scenarios in memory and on RabbitMQ and requires equal outcomes.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Self

from _aiohttp_booster.redact import shown

from ._amqp import Delivery
from ._amqp.memory import CURRENT, DIRECT_REPLY_TO, MemoryBroker, Trace, decode
from .consumer import BaseConsumer
from .errors import (
    AmqpExtError,
    AmqpTimeoutError,
    ClosedError,
    ConfigurationError,
    UnroutableError,
)
from .producer import BaseProducer, fresh_properties
from .serializers import serializer_for

__all__ = ["ConsumerHarness", "HarnessError", "Outcome", "Published", "RecordingProducer"]

Result = Literal["ack", "retry", "dead_letter"]


class HarnessError(AmqpExtError, RuntimeError):
    """A harness was used in a way it cannot serve (not started, a consumer already running,
    a message still unsettled after the harness's ``timeout``)."""


class _UsageError(ConfigurationError, TypeError):
    """Arguments that cannot go together (also a TypeError, as Python's own call errors)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one delivered message, once no copy of it is left to handle.

    Attributes:
        result: ``'ack'`` (handled), ``'dead_letter'`` (rejected: to the dead-letter queue
            if the consumer has one, else dropped by the broker), or ``'retry'`` (only with
            ``follow_retries=False``: the first handling failed and a retry was scheduled).
        error: the exception of the last handling that failed (the handler's own, a
            :class:`~aioamqp_ext.HandlerTimeoutError`, or a
            :class:`~aioamqp_ext.DeserializationError` for a body that cannot be read);
            None when the last handling succeeded.
        reply: the reply's deserialized data, for a message with ``reply_to`` whose handler
            returned a value; None otherwise.
        history: the result of each handling, in order (``'retry'``, ``'retry'``, ``'ack'``).
        errors: the error of each handling (None for one that succeeded), in order.
    """

    result: Result
    error: BaseException | None
    reply: Any
    history: tuple[Result, ...]
    errors: tuple[BaseException | None, ...]
    _attempts: int = field(repr=False)
    _retries: int = field(repr=False)  # the consumer's max_retries
    _reply_raw: tuple[bytes, Any] | None = field(default=None, repr=False)

    @property
    def attempts(self) -> int:
        """How many times the consumer got the message, 1 + the retries it took.

        Raises:
            ConfigurationError: the consumer has no retries configured (``max_retries`` 0):
                every message is handled once.
        """
        if self._retries == 0:
            raise ConfigurationError(
                "Outcome.attempts: the consumer has no retries configured (max_retries=0, no "
                "retry_delays): every message is handled once; read Outcome.result instead"
            )
        return self._attempts


class ConsumerHarness:
    """Run ``consumer`` on an in-memory broker through its production code; an async context
    manager. ``async with ConsumerHarness(MyConsumer(queue="orders")) as harness:``.

    The consumer declares its topology (exchange, queue, bindings, dead-letter and retry
    queues) in memory, as it would on RabbitMQ, and consumes with its ``prefetch_count``.
    Retry delays are not waited for: a copy waiting in a ``<queue>.retry.<ms>`` queue comes
    back at once. ``handler_timeout`` is real time.

    Args:
        consumer: a consumer that was never started (and is closed with the harness).
        follow_retries: True: :meth:`deliver` returns once no copy of the message is left
            (the final result is ``'ack'`` or ``'dead_letter'``). False: it returns after
            the first handling, a scheduled retry being the result ``'retry'`` (the copy is
            kept out of the queue).
        timeout: seconds :meth:`deliver` waits for a message to be settled.

    Raises:
        ConfigurationError: ``consumer`` is not a BaseConsumer, or a bad ``timeout``.
    """

    def __init__(
        self, consumer: BaseConsumer, *, follow_retries: bool = True, timeout: float = 30.0
    ) -> None:
        if not isinstance(consumer, BaseConsumer):
            raise ConfigurationError(
                f"ConsumerHarness: consumer: expected a BaseConsumer instance, got "
                f"{shown(consumer)}"
            )
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
            raise ConfigurationError(
                f"ConsumerHarness: timeout: expected seconds > 0, got {shown(timeout)}"
            )
        self.consumer = consumer
        self.broker = MemoryBroker()
        self.follow_retries = follow_retries
        self.timeout = float(timeout)
        self._state = "new"
        self._traces: set[Trace] = set()

    def __repr__(self) -> str:
        return f"<ConsumerHarness {type(self.consumer).__name__} {self._state}>"

    async def start(self) -> None:
        """Start consuming in memory (what ``async with`` does).

        Raises:
            HarnessError: started twice, or the consumer was already started or closed.
        """
        consumer = self.consumer
        if self._state != "new":
            raise HarnessError(f"{self!r}: start: already {self._state}")
        if consumer.closed or consumer._link is not None:
            raise HarnessError(
                f"{self!r}: start: the consumer was already started or closed; give the "
                "harness a new consumer"
            )
        consumer._transport = self.broker.connection  # type: ignore[assignment]  # its twin
        consumer._observer = _observe
        self._state = "started"
        await consumer.consume()

    async def close(self) -> None:
        """Close the consumer (its production shutdown); messages still being handled fail
        their :meth:`deliver` with ClosedError. Idempotent."""
        if self._state == "closed":
            return
        self._state = "closed"
        await self.consumer.close()
        for trace in self._traces:
            if not trace.done.done():
                trace.done.set_exception(ClosedError(f"{self!r} closed before it was settled"))

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def deliver(
        self,
        payload: Any = None,
        *,
        body: bytes | None = None,
        routing_key: str | None = None,
        **properties: Any,
    ) -> Outcome:
        """Publish one message to the consumer's exchange (or queue) and wait for its outcome.

        The message gets the properties our producer sends (``content_type`` of the
        consumer's serializer, persistent, a fresh ``message_id``, a ``timestamp``) unless
        given; with ``body``, no ``content_type`` unless given.

        Args:
            payload: data, serialized with the consumer's serializer.
            body: raw bytes instead of ``payload`` (e.g. a body that cannot be deserialized).
            routing_key: the routing key; by default the consumer's binding key when it has
                exactly one without wildcards, else its queue's name (which its default
                bindings match).
            properties: AMQP properties (``headers``, ``reply_to``, ``correlation_id``,
                ``message_id``, ``content_type``, ``priority``...).

        Raises:
            ConfigurationError: both ``payload`` and ``body`` (also a TypeError), a bad
                property, or a routing key the consumer's bindings do not match.
            ClosedError: the harness was closed.
            HarnessError: not started, or still unsettled after ``timeout`` seconds (the
                handler still runs).
        """
        where = "ConsumerHarness.deliver"
        if self._state != "started":
            if self._state == "closed":
                raise ClosedError(f"{where}: {self!r} is closed; use a harness inside its "
                                  "`async with` block")  # fmt: skip
            raise HarnessError(f"{where}: {self!r} is not started; use `async with "
                               "ConsumerHarness(consumer) as harness`")  # fmt: skip
        cfg = self.consumer.config
        if body is not None and payload is not None:
            raise _UsageError(f"{where}: payload and body: give one, not both")
        if body is not None and not isinstance(body, bytes | bytearray):
            raise ConfigurationError(f"{where}: body: expected bytes, got {shown(body)}")
        content_type = None  # a raw body: what the consumer's serializer reads
        if body is None:
            body = cfg.serializer.serialize(payload)
            content_type = cfg.serializer.content_type
        # what our producer sends (BaseProducer's defaults), then the caller's properties
        defaults = {**fresh_properties(content_type), **BaseProducer.DEFAULT_PROPERTIES}
        properties = {**defaults, **properties}
        properties = {name: value for name, value in properties.items() if value is not None}
        exchange, key = cfg.exchange, self._routing_key(routing_key)
        try:
            message = decode(bytes(body), properties, (exchange, key, False))
        except ConfigurationError as exc:
            raise ConfigurationError(f"{where}: {str(exc).removeprefix('publish_message: ')}"
                                     ) from None  # fmt: skip
        reply_to = properties.get("reply_to")
        if isinstance(reply_to, str) and not reply_to.startswith(DIRECT_REPLY_TO):
            self.broker.declare(reply_to)  # the requester's queue, as it would have declared
        targets = self.broker.route(exchange, key, getattr(message.properties, "headers", None))
        if not any(queue.name == cfg.queue for queue in targets):
            raise UnroutableError(
                f"{where}: routing key {key!r} on exchange {exchange!r} reaches no binding of "
                f"queue {cfg.queue!r} (bound with {self._bindings()}): on RabbitMQ the "
                "consumer would never see it",
                reply_code=312, reply_text="NO_ROUTE", exchange=exchange, routing_key=key,
            )  # fmt: skip
        trace = Trace(reply_to=reply_to if isinstance(reply_to, str) else None)
        if not self.follow_retries:
            trace.hold = frozenset({cfg.queue, *self.consumer._retry_queues.values()})
        message.trace = trace
        self._traces.add(trace)
        try:
            for queue in targets:
                self.broker.enqueue(queue, message)
            try:
                async with asyncio.timeout(self.timeout):
                    await asyncio.shield(trace.done)
            except TimeoutError:
                raise HarnessError(
                    f"{where}: message {properties.get('message_id')} not settled within "
                    f"{self.timeout:g} s: its handler still runs (set the consumer's "
                    "handler_timeout, or the harness's timeout)"
                ) from None
        finally:
            self._traces.discard(trace)
        return self._outcome(trace)

    def _routing_key(self, routing_key: str | None) -> str:
        if routing_key is not None:
            if not isinstance(routing_key, str):
                raise ConfigurationError(
                    f"ConsumerHarness.deliver: routing_key: expected a str, got "
                    f"{shown(routing_key)}"
                )
            return routing_key
        cfg = self.consumer.config
        keys = cfg.routing_keys
        if cfg.exchange and len(keys) == 1 and not {"*", "#"} & set(keys[0].split(".")):
            return keys[0]
        return cfg.queue

    def _bindings(self) -> str:
        queue = self.consumer.config.queue
        keys = [repr(key) for name, _, key in self.broker.bindings if name == queue]
        return ", ".join(keys) if keys else "no binding but the default exchange's"

    def _outcome(self, trace: Trace) -> Outcome:
        raw = trace.reply
        reply = None
        if raw is not None:
            content_type = getattr(raw[1], "content_type", None)
            reply = serializer_for(content_type, self.consumer.config.serializer).deserialize(
                raw[0]
            )
        history = tuple(trace.results)
        return Outcome(
            result=history[-1],  # type: ignore[arg-type]  # results are Result values
            error=trace.errors[-1],
            reply=reply,
            history=history,  # type: ignore[arg-type]
            errors=tuple(trace.errors),
            _attempts=trace.retries + 1,
            _retries=self.consumer.config.max_retries,
            _reply_raw=raw,
        )

    def dead_letters(self) -> list[Any]:
        """Each message in the consumer's dead-letter queue (``<queue>.dlq``, with
        ``dead_letter_exchange``), oldest first: its data, or its raw body when it cannot be
        deserialized (a poison message)."""
        cfg = self.consumer.config
        found: list[Any] = []
        for body, props in self.broker.messages(f"{cfg.queue}.dlq"):
            try:
                serializer = serializer_for(getattr(props, "content_type", None), cfg.serializer)
                found.append(serializer.deserialize(body))
            except Exception:  # a poison message stays what it was: bytes
                found.append(body)
        return found


def _observe(delivery: Delivery, error: Exception) -> None:
    """The consumer's ``_observer`` under a harness: the failure of the message handled."""
    trace = CURRENT.get()
    if trace is not None:
        trace.failure = error


Responder = Callable[[Any], Any] | ConsumerHarness


@dataclass(frozen=True, slots=True)
class Published:
    """One message a :class:`RecordingProducer` would have sent.

    Attributes:
        payload: the data as a consumer would deserialize it (a tuple arrives as a list).
        routing_key: its routing key.
        properties: the AMQP properties sent (``message_id``, ``content_type``,
            ``delivery_mode``, ``timestamp``, yours...).
        exchange: the producer's exchange.
        body: the serialized body.
        mandatory: published with ``mandatory=True``.
        reply: for a request, the reply's data (None until answered, or without a reply).
    """

    payload: Any
    routing_key: str
    properties: Mapping[str, Any]
    exchange: str
    body: bytes
    mandatory: bool = False
    reply: Any = None

    @property
    def is_request(self) -> bool:
        """Sent by ``request`` (it waits for a reply)."""
        return self.properties.get("reply_to") == DIRECT_REPLY_TO


class RecordingProducer(BaseProducer):
    """A :class:`~aioamqp_ext.BaseProducer` that records what it would publish, never
    connecting. Everything before the network is the production code: routing key, the
    serializer, the default properties, and the checks a real publish makes (a property the
    broker cannot carry raises the same ConfigurationError).

    Takes BaseProducer's options, and:

    Args:
        responder: answers :meth:`request`: a :class:`ConsumerHarness` (the request is
            delivered to its consumer, whose return value is the reply), or a function of the
            request's data returning the reply's data (or an awaitable of it). None: a
            request raises HarnessError.

    To record the publishes of a producer class of your own, put it after this one:
    ``class Recording(RecordingProducer, OrderProducer): pass``.
    """

    def __init__(self, *args: Any, responder: Responder | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.responder = responder
        #: every message published, requests included, in order
        self.published: list[Published] = []

    @property
    def requests(self) -> list[Published]:
        """The published messages that were requests (with their replies), in order."""
        return [message for message in self.published if message.is_request]

    @property
    def is_connected(self) -> bool:
        """True until closed (nothing to connect to)."""
        return not self.closed

    async def connect(self) -> None:
        """Nothing to connect to; raises ClosedError once closed."""
        self._here()

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Returns at once; raises ClosedError once closed."""
        self._here()

    async def _consume_replies(self) -> None:
        self._here()

    async def _publish(
        self, body: bytes, routing_key: str, properties: dict[str, Any], mandatory: bool
    ) -> None:
        self._here()  # ClosedError once closed, as a real producer
        cfg = self.config
        decode(body, properties, (cfg.exchange, routing_key, mandatory))  # the real checks
        data = serializer_for(properties.get("content_type"), cfg.serializer).deserialize(body)
        record = Published(data, routing_key, dict(properties), cfg.exchange, body, mandatory)
        self.published.append(record)
        correlation_id = properties.get("correlation_id")
        waiter = (self._replies or {}).get(correlation_id or "")
        if properties.get("reply_to") != DIRECT_REPLY_TO or waiter is None:
            return
        reply = await self._answer(record)
        if reply is None:
            if not waiter.done():
                waiter.set_exception(AmqpTimeoutError(
                    f"{type(self).__name__}.request: request {correlation_id} got no reply "
                    "(the consumer returned None or failed); on RabbitMQ it would time out"
                ))  # fmt: skip
            return
        raw_body, raw_properties = reply
        delivery = Delivery(raw_body, 0, "", DIRECT_REPLY_TO, False, raw_properties)
        self._on_reply(delivery)  # the production reader of replies
        if waiter.done() and waiter.exception() is None:
            index = self.published.index(record)
            self.published[index] = Published(
                data, routing_key, record.properties, cfg.exchange, body, mandatory,
                waiter.result(),
            )  # fmt: skip

    async def _answer(self, record: Published) -> tuple[bytes, Any] | None:
        responder = self.responder
        where = f"{type(self).__name__}.request"
        if responder is None:
            raise HarnessError(
                f"{where}: no responder: give RecordingProducer(responder=...) a "
                "ConsumerHarness or a function of the request's data"
            )
        if isinstance(responder, ConsumerHarness):
            outcome = await responder.deliver(
                body=record.body, routing_key=record.routing_key, **record.properties
            )
            return outcome._reply_raw
        answer: Any = responder(record.payload)
        if inspect.isawaitable(answer):
            answer = await answer
        if answer is None:
            return None
        serializer = self.config.serializer
        reply = decode(serializer.serialize(answer),
                       {"content_type": serializer.content_type,
                        "correlation_id": record.properties.get("correlation_id")},
                       ("", DIRECT_REPLY_TO, False))  # fmt: skip
        return reply.body, reply.properties
