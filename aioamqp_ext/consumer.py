"""BaseConsumer: at-least-once consumption with concurrent handlers and dead-lettering."""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Self

from ._amqp import Connection, Delivery
from ._tracing import failed
from .base import BaseAmqp
from .errors import (
    AmqpConnectionError,
    AmqpExtError,
    ConfigurationError,
    HandlerTimeoutError,
    UnroutableError,
)
from .message import RETRY_HEADER, Message
from .serializers import Serializer, serializer_for

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from .metrics import ConsumerMetrics

__all__ = ["BaseConsumer"]

logger = logging.getLogger(__name__)

ACK, DEAD_LETTER, RETRY = range(3)  # outcomes, as indexes of the metrics' counts
DIRECT_REPLY_TO_PREFIX = "amq.rabbitmq.reply-to."  # the names RabbitMQ gives direct reply-to
_SERIALIZER_CACHE_SIZE = 16  # content types remembered; a queue rarely carries more than one
_BINDING_BY_TYPE = {"topic": "#", "fanout": "", "headers": ""}
# Python 3.12+ can start a task eagerly: a handler then runs at once, inside the delivery's
# callback, up to its first real wait (a no-op one to its ack), saving a loop iteration on
# every message's round trip. On 3.11 every handler starts on the next iteration.
_EAGER = sys.version_info >= (3, 12)


class BaseConsumer(BaseAmqp):
    """Consumes ``queue``; subclass it and write :meth:`process_request`.

    Takes the options of :class:`~aioamqp_ext.base.BaseAmqp`; ``queue`` is required. A message
    is acked only after ``process_request`` returned. If it raises, or the body cannot be
    deserialized, the message is rejected without requeue (after up to ``max_retries``
    retries for a raising handler), so it goes to the queue's dead-letter exchange.
    Up to ``prefetch_count`` handlers run at once.
    """

    _side = "consumer"

    _metrics: ConsumerMetrics | None
    #: the handler takes ``(data, message)`` (decided when the class is created)
    _with_message: ClassVar[bool] = False
    _handler_problem: ClassVar[str | None] = None
    #: told of each failed message and why (the testing harness's outcomes); None: nobody
    _observer: Callable[[Delivery, Exception], None] | None = None
    #: reads the queue's depth for the metrics (see _watch_depth); None: not running
    _depth_task: asyncio.Task[None] | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._with_message, cls._handler_problem = _handler_form(cls.process_request)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.config.queue:
            raise ConfigurationError(f"{type(self).__name__}: queue: a consumer needs one, got ''")
        if self._handler_problem is not None:
            raise ConfigurationError(f"{type(self).__name__}: {self._handler_problem}")
        self._retry_queues = self.config.retry_queues()
        self._consumer_tag: str | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stop: asyncio.Event | None = None
        self._lost_error: AmqpConnectionError | None = None
        self._serializers: dict[str | None, Serializer] = {}  # by content type, as received
        self._depth_task = None

    if TYPE_CHECKING:  # either form type-checks in a subclass: (data) or (data, message)
        process_request: Callable[..., Any]
    else:

        async def process_request(self, data):
            """Handle one message's deserialized payload; raise to reject it.

            Declare a second parameter named ``message`` to receive the whole
            :class:`~aioamqp_ext.Message` (properties, routing key, retries...):
            ``async def process_request(self, data, message)``. A value other than None
            returned for a message with ``reply_to`` is sent back as the reply.

            Args:
                data: the message body, deserialized.
            """
            raise NotImplementedError(f"{type(self).__name__} must define process_request(data)")

    async def consume(self) -> None:
        """Connect, declare exchange, queue and bindings, set QoS and start consuming.

        Returns once the broker delivers to this consumer.

        Raises:
            AmqpConnectionError: the broker is unreachable within ``connect_timeout``.
            TopologyError: a declaration (or passive check) was refused.
        """
        await self._connection()

    async def _setup(self, conn: Connection) -> None:
        cfg = self.config
        await super()._setup(conn)
        if cfg.dead_letter_exchange:  # always durable: dead letters must survive a restart
            dlq = f"{cfg.queue}.dlq"
            dlx = cfg.dead_letter_exchange
            await conn.declare_exchange(dlx, "direct", durable=True, passive=cfg.passive)
            await conn.declare_queue(dlq, durable=True, passive=cfg.passive, arguments={})
            if not cfg.passive:
                await conn.bind_queue(dlq, dlx, cfg.queue)
        await conn.declare_queue(
            cfg.queue,
            durable=cfg.durable,
            passive=cfg.passive,
            arguments=cfg.queue_declare_arguments(),
        )
        for delay, name in self._retry_queues.items():  # where a failed message waits
            await conn.declare_queue(
                name, durable=True, passive=cfg.passive, arguments=cfg.retry_queue_arguments(delay)
            )
        if cfg.exchange and not cfg.passive:
            default_key = _BINDING_BY_TYPE.get(cfg.exchange_type, cfg.queue)
            for key in cfg.routing_keys or (default_key,):
                await conn.bind_queue(cfg.queue, cfg.exchange, key)
        await conn.qos(cfg.prefetch_count, cfg.prefetch_size)
        self._consumer_tag = await conn.consume(cfg.queue, lambda d: self._dispatch(conn, d))
        logger.info("%s consuming queue %r", type(self).__name__, cfg.queue)
        self._watch_depth()

    def attach_metrics(self, registry: CollectorRegistry) -> None:
        """Record this consumer's ``amqp_*`` metrics in ``registry``; idempotent. Attached
        while consuming, the queue's depth is read from now on too.

        Args:
            registry: a prometheus-client ``CollectorRegistry``, e.g. a monitoring app's.
        """
        super().attach_metrics(registry)
        self._watch_depth()

    def _watch_depth(self) -> None:
        """Start reading the queue's depth for the metrics, once consuming with metrics on a
        ``queue_depth_interval``; a no-op if it runs already, or cannot run."""
        interval = self.config.queue_depth_interval
        task = self._depth_task
        consuming = getattr(self, "_consumer_tag", None) is not None  # unset while constructed
        if not interval or self._metrics is None or not consuming or self._closed:
            return
        if task is not None and not task.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # attached from outside the loop: started with the next setup
            return
        if loop is self._loop:
            self._depth_task = loop.create_task(self._poll_depth(float(interval)))

    async def _poll_depth(self, interval: float) -> None:
        """Read the queue's ready messages and consumers every ``interval`` seconds until
        closed. Never on the consuming channel, never fatal: a round that fails (no
        connection, no answer in time, the queue gone) drops the reading, is logged at debug
        level and is skipped; the next round tries again."""
        queue = self.config.queue
        while True:
            link, metrics = self._link, self._metrics
            conn = link.conn if link is not None else None
            if metrics is not None:
                if conn is None or not conn.is_open:
                    metrics.depth = None  # reconnecting: unknown, not the last value
                else:
                    try:
                        ready, consumers = await conn.queue_state(queue)
                    except Exception as exc:  # a metric must never take the consumer down
                        metrics.depth = None
                        logger.debug(
                            "%s: queue %r: its depth was not read this round (%s)",
                            type(self).__name__, queue, exc,
                            exc_info=not isinstance(exc, AmqpExtError),
                        )  # fmt: skip
                    else:
                        metrics.depth = (ready, consumers, time.monotonic())
            await asyncio.sleep(interval)

    def _dispatch(self, conn: Connection, delivery: Delivery) -> None:
        """Run the handler as a task: aioamqp would otherwise run one message at a time."""
        handling = self._handle(conn, delivery)
        metrics = self._metrics
        coro = handling if metrics is None else metrics.timed(handling)
        if self._tracing is not None:  # a CONSUMER span around the whole handling
            coro = self._tracing.consuming(coro, delivery, self.config.queue)
        if _EAGER:
            loop = asyncio.get_running_loop()
            task = asyncio.Task(coro, loop=loop, eager_start=True)  # type: ignore[call-arg]
            if task.done():  # handled, settled and counted already
                return
        else:
            task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, conn: Connection, delivery: Delivery) -> None:
        # The hot path: the deserializer comes from a small per-content-type cache, and the
        # text naming the message for logs is only built when something goes wrong.
        content_type = delivery.content_type
        try:
            serializer = self._serializers.get(content_type)
            if serializer is None:
                serializer = serializer_for(content_type, self.config.serializer)
                if len(self._serializers) < _SERIALIZER_CACHE_SIZE:
                    self._serializers[content_type] = serializer
            data = serializer.deserialize(delivery.body)
        except Exception as exc:  # any serializer failure makes the message poison
            self._report(delivery, exc)
            logger.error(
                "%s rejected: cannot deserialize (%s)",
                self._where(delivery),
                exc,
                extra={"message_id": delivery.message_id, "queue": self.config.queue},
            )
            await self._settle(conn, delivery, ack=False)
            return
        try:
            if self._with_message:
                message = Message.of(delivery, data, self.config.queue)
                result = self.process_request(data, message)
            else:
                result = self.process_request(data)
            if inspect.isawaitable(result):  # a plain ``def`` handler works too
                timeout = self.config.handler_timeout
                result = await (result if timeout is None else self._within(result, timeout))
            if result is not None and delivery.reply_to is not None:
                await self._reply(conn, delivery, result)
        except Exception as exc:
            await self._failed(conn, delivery, exc)
            return
        await self._settle(conn, delivery, ack=True)

    async def _within(self, handling: Any, timeout: float) -> Any:
        """Await the handler for at most ``timeout`` seconds; then cancel it.

        Raises:
            HandlerTimeoutError: it was still running (counted in the metrics).
        """
        try:
            async with asyncio.timeout(timeout) as deadline:
                return await handling
        except TimeoutError:
            if not deadline.expired():  # the handler's own TimeoutError: its failure
                raise
            if self._metrics is not None:
                self._metrics.timeouts += 1
            raise HandlerTimeoutError(
                f"the handler was still running after {timeout:g} s (handler_timeout): cancelled"
            ) from None

    async def _reply(self, conn: Connection, delivery: Delivery, result: Any) -> None:
        """Send the handler's return value to the request's ``reply_to`` (default exchange,
        its ``correlation_id``), confirmed, before the request is acked. A reply nobody waits
        for any more (the requester is gone) is logged: the request was handled all the same.

        Raises:
            SerializationError: the value cannot be encoded (a handler failure).
            AmqpExtError: the reply could not be published.
        """
        reply_to = delivery.reply_to
        assert reply_to is not None
        serializer = self.config.serializer
        properties: dict[str, Any] = {"content_type": serializer.content_type}
        if delivery.correlation_id is not None:
            properties["correlation_id"] = delivery.correlation_id
        body = serializer.serialize(result)
        # RabbitMQ (3.10) returns every mandatory publish to a direct reply-to name as
        # unroutable, delivered or not, and drops one whose requester is gone: only a reply
        # to an ordinary queue can learn that nobody waits any more.
        direct = reply_to.startswith(DIRECT_REPLY_TO_PREFIX)
        waiting = True
        try:
            async with asyncio.timeout(self.config.publish_timeout):
                await conn.publish(body, exchange="", routing_key=reply_to,
                                   properties=properties, mandatory=not direct)  # fmt: skip
        except UnroutableError:
            waiting = False
        except TimeoutError:
            raise AmqpConnectionError(
                f"the reply to {reply_to!r} was not confirmed within "
                f"{self.config.publish_timeout:g} s"
            ) from None
        if not waiting:
            logger.warning(
                "%s: nobody waits at its reply_to %r any more (the requester is gone?); its "
                "reply is dropped and the message acked all the same",
                self._where(delivery),
                reply_to,
                extra={"message_id": delivery.message_id, "queue": self.config.queue},
            )

    def _where(self, delivery: Delivery) -> str:
        """How log lines name a message."""
        return f"{type(self).__name__}: queue {self.config.queue!r}: message {delivery.message_id}"

    def _report(self, delivery: Delivery, error: Exception) -> None:
        """Tell the handling's span and the observer (a testing harness) why it failed."""
        if self._tracing is not None:
            failed(error)
        if self._observer is not None:
            self._observer(delivery, error)

    async def _failed(self, conn: Connection, delivery: Delivery, error: Exception) -> None:
        """Retry a failed message (republish with a counter, then ack) or reject it."""
        self._report(delivery, error)
        where = self._where(delivery)
        retries = delivery.headers.get(RETRY_HEADER, 0)
        retries = retries if isinstance(retries, int) else 0
        extra = {"message_id": delivery.message_id, "queue": self.config.queue}
        if retries < self.config.max_retries:
            delay = self.config.retry_delay(retries)
            attempt = f"retry {retries + 1} of {self.config.max_retries}"
            target = self.config.queue
            if delay is not None:  # the copy waits in the broker, then comes back to the queue
                attempt += f" in {delay:g} s"
                target = self._retry_queues[delay]
            logger.warning("%s failed (%s)", where, attempt, exc_info=error, extra=extra)
            headers = {**delivery.headers, RETRY_HEADER: retries + 1}
            try:  # the copy is confirmed before the original is acked: at least once
                async with asyncio.timeout(self.config.publish_timeout):
                    await conn.publish(
                        delivery.body,
                        exchange="",
                        routing_key=target,
                        properties={**delivery.properties, "headers": headers},
                        mandatory=True,
                    )
            except (AmqpExtError, TimeoutError) as exc:
                logger.error("%s could not be retried (%s); rejecting it", where, exc, extra=extra)
            else:
                await self._settle(conn, delivery, ack=True, result=RETRY)
                return
        else:
            logger.error("%s rejected: handler failed", where, exc_info=error, extra=extra)
        await self._settle(conn, delivery, ack=False)

    async def _settle(
        self, conn: Connection, delivery: Delivery, *, ack: bool, result: int | None = None
    ) -> None:
        """Ack or reject; ``result`` (a metrics index) defaults to ack or dead-letter."""
        try:
            if ack:
                # An ack with no other to share a write with is sent now rather than one loop
                # iteration later: at prefetch 1 always, else when this handler is the only
                # task (an eager handler finishing at once is not one: more deliveries of the
                # same read may follow it, and their acks go out together).
                lone = self.config.prefetch_count == 1 or (not _EAGER and len(self._tasks) <= 1)
                await conn.ack(delivery.delivery_tag, now=lone)
            else:
                await conn.reject(delivery.delivery_tag, requeue=False)
            if self._metrics is not None:
                self._metrics.counts[
                    (ACK if ack else DEAD_LETTER) if result is None else result
                ] += 1
        except AmqpConnectionError as exc:
            # Its delivery tag belongs to the lost channel: never settle it on a new one.
            logger.debug(
                "%s not %s (%s); the broker will redeliver it",
                self._where(delivery),
                "acked" if ack else "rejected",
                exc,
                extra={"message_id": delivery.message_id, "queue": self.config.queue},
            )

    async def _shutdown(self) -> None:
        """Stop taking messages, let in-flight handlers finish (up to close_timeout), close."""
        depth_task, self._depth_task = self._depth_task, None
        if depth_task is not None and not self._orphaned():
            depth_task.cancel()
            await asyncio.wait({depth_task})
        if self._metrics is not None:
            self._metrics.depth = None  # no reading any more, rather than a stale one
        conn = self._link.conn if self._link is not None else None
        tag = self._consumer_tag
        if conn is not None and tag is not None and conn.is_open and not self._orphaned():
            try:
                await conn.cancel(tag)
            except AmqpConnectionError as exc:
                logger.warning("%s: stopping the consumer: %s", type(self).__name__, exc)
        running = self._tasks - {asyncio.current_task()}  # a handler may call close() itself
        if running:
            _, pending = await asyncio.wait(running, timeout=self.config.close_timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
                logger.warning(
                    "%s: %d handler(s) still running after %g s were cancelled; "
                    "their messages stay unacked and the broker redelivers them",
                    type(self).__name__,
                    len(pending),
                    self.config.close_timeout,
                )
        await super()._shutdown()

    def _on_lost(self, error: AmqpConnectionError) -> None:
        if self._tasks:
            logger.info(
                "%s: %d handler(s) were running; their messages cannot be acked any more, "
                "the broker redelivers them",
                type(self).__name__,
                len(self._tasks),
            )
        if not self._closed and not self.config.reconnect:
            self._lost_error = error
            if self._stop is not None:
                self._stop.set()

    @property
    def in_flight(self) -> int:
        """Messages being handled right now."""
        return len(self._tasks)

    def stop(self) -> None:
        """Ask :meth:`run` (or :meth:`serve`) to close and return; safe from any thread."""
        if self._stop is not None and self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)

    async def serve(self, *, handle_signals: bool = True) -> None:
        """Consume until SIGINT/SIGTERM or :meth:`stop`, then close gracefully.

        Lost connections are healed underneath (with ``reconnect=False``, a loss ends it).

        Args:
            handle_signals: install SIGINT/SIGTERM handlers (main thread only); a second
                signal interrupts at once.

        Raises:
            AmqpConnectionError: the broker is unreachable at start, or, with
                ``reconnect=False``, the connection was lost.
        """
        loop = asyncio.get_running_loop()
        self._stop = stop = asyncio.Event()
        signals = (signal.SIGINT, signal.SIGTERM) if handle_signals else ()

        def on_signal(signum: int) -> None:
            logger.info(
                "%s: %s received, closing", type(self).__name__, signal.Signals(signum).name
            )
            for sig in signals:  # a second signal gets the default behaviour
                loop.remove_signal_handler(sig)
            stop.set()

        for sig in signals:
            loop.add_signal_handler(sig, on_signal, sig)
        try:
            # a stop while still connecting (a broker that never answers) ends it at once
            consuming = loop.create_task(self.consume())
            stopping = loop.create_task(stop.wait())
            try:
                await asyncio.wait({consuming, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if consuming.done():
                    consuming.result()  # a failure to connect at start is raised
                    await stopping
            finally:
                for task in (consuming, stopping):
                    task.cancel()  # a no-op for a finished one
                await asyncio.wait({consuming, stopping})
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
            await self._close()
        if self._lost_error is not None:
            raise self._lost_error

    def run(
        self,
        *,
        handle_signals: bool = True,
        monitoring_port: int | None = None,
        monitoring_host: str = "0.0.0.0",  # noqa: S104 - scraped and probed from outside
    ) -> None:
        """Blocking entry point for a worker's ``main``: :meth:`serve` on a new event loop.

        Args:
            handle_signals: install SIGINT/SIGTERM handlers that close gracefully.
            monitoring_port: also serve ``/ping``, ``/metrics`` (the ``amqp_*`` metrics) and
                ``/ready`` (200 while connected and consuming) on this port, through
                ``aiohttp_prometheus_monitoring.worker.serve_worker``; None: no HTTP server.
            monitoring_host: the address that server listens on: by default every address
                (as prometheus_client's ``start_http_server`` and aiohttp's ``run_app`` do),
                so that Prometheus and the orchestrator's probes reach it in a container;
                ``"127.0.0.1"`` keeps it on this machine.
        """
        if monitoring_port is None:
            asyncio.run(self.serve(handle_signals=handle_signals))
            return
        # imported here: the two libraries never import each other at module level
        from aiohttp_prometheus_monitoring.worker import serve_worker

        asyncio.run(
            serve_worker(
                self, host=monitoring_host, port=monitoring_port, handle_signals=handle_signals
            )
        )

    async def __aenter__(self) -> Self:
        await self.consume()
        return self


def _handler_form(handler: Callable[..., Any]) -> tuple[bool, str | None]:
    """Whether ``process_request`` takes ``(data, message)``, and what is wrong with it, if
    anything: its second positional parameter must be named ``message``."""
    try:
        parameters = list(inspect.signature(handler).parameters.values())[1:]  # after self
    except (TypeError, ValueError):  # a callable whose signature cannot be read: the old form
        return False, None
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) < 2 or positional[1].default is not positional[1].empty:
        return False, None
    second = positional[1]
    if second.name == "message" and len(positional) == 2:
        return True, None
    names = ", ".join(repr(p.name) for p in positional[1:])
    return False, (
        f"process_request: its parameters after data must be one named 'message' (it receives "
        f"the Message), got {names}"
    )
