"""BaseConsumer: at-least-once consumption with concurrent handlers and dead-lettering."""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
import sys
from typing import TYPE_CHECKING, Any, Self

from ._amqp import Connection, Delivery
from .base import BaseAmqp
from .errors import AmqpConnectionError, AmqpExtError, ConfigurationError
from .serializers import Serializer, serializer_for

if TYPE_CHECKING:
    from .metrics import ConsumerMetrics

__all__ = ["BaseConsumer"]

logger = logging.getLogger(__name__)

RETRY_HEADER = "x-aioamqp-ext-retries"
ACK, DEAD_LETTER, RETRY = range(3)  # outcomes, as indexes of the metrics' counts
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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.config.queue:
            raise ConfigurationError(f"{type(self).__name__}: queue: a consumer needs one, got ''")
        self._consumer_tag: str | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stop: asyncio.Event | None = None
        self._lost_error: AmqpConnectionError | None = None
        self._serializers: dict[str | None, Serializer] = {}  # by content type, as received

    async def process_request(self, data: Any) -> None:
        """Handle one message's deserialized payload; raise to reject it.

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
        if cfg.exchange and not cfg.passive:
            default_key = _BINDING_BY_TYPE.get(cfg.exchange_type, cfg.queue)
            for key in cfg.routing_keys or (default_key,):
                await conn.bind_queue(cfg.queue, cfg.exchange, key)
        await conn.qos(cfg.prefetch_count, cfg.prefetch_size)
        self._consumer_tag = await conn.consume(cfg.queue, lambda d: self._dispatch(conn, d))
        logger.info("%s consuming queue %r", type(self).__name__, cfg.queue)

    def _dispatch(self, conn: Connection, delivery: Delivery) -> None:
        """Run the handler as a task: aioamqp would otherwise run one message at a time."""
        handling = self._handle(conn, delivery)
        metrics = self._metrics
        coro = handling if metrics is None else metrics.timed(handling)
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
            logger.error(
                "%s rejected: cannot deserialize (%s)",
                self._where(delivery),
                exc,
                extra={"message_id": delivery.message_id, "queue": self.config.queue},
            )
            await self._settle(conn, delivery, ack=False)
            return
        try:
            result = self.process_request(data)
            if inspect.isawaitable(result):  # a plain ``def`` handler works too
                await result
        except Exception as exc:
            await self._failed(conn, delivery, exc)
            return
        await self._settle(conn, delivery, ack=True)

    def _where(self, delivery: Delivery) -> str:
        """How log lines name a message."""
        return f"{type(self).__name__}: queue {self.config.queue!r}: message {delivery.message_id}"

    async def _failed(self, conn: Connection, delivery: Delivery, error: Exception) -> None:
        """Retry a failed message (republish with a counter, then ack) or reject it."""
        where = self._where(delivery)
        retries = delivery.headers.get(RETRY_HEADER, 0)
        retries = retries if isinstance(retries, int) else 0
        extra = {"message_id": delivery.message_id, "queue": self.config.queue}
        if retries < self.config.max_retries:
            attempt = f"retry {retries + 1} of {self.config.max_retries}"
            logger.warning("%s failed (%s)", where, attempt, exc_info=error, extra=extra)
            headers = {**delivery.headers, RETRY_HEADER: retries + 1}
            try:  # the copy is confirmed before the original is acked: at least once
                async with asyncio.timeout(self.config.publish_timeout):
                    await conn.publish(
                        delivery.body,
                        exchange="",
                        routing_key=self.config.queue,
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
        monitoring_host: str = "127.0.0.1",
    ) -> None:
        """Blocking entry point for a worker's ``main``: :meth:`serve` on a new event loop.

        Args:
            handle_signals: install SIGINT/SIGTERM handlers that close gracefully.
            monitoring_port: also serve ``/ping``, ``/metrics`` (the ``amqp_*`` metrics) and
                ``/ready`` (200 while connected and consuming) on this port, through
                ``aiohttp_prometheus_monitoring.worker.serve_worker``; None: no HTTP server.
            monitoring_host: the address that server listens on (``0.0.0.0`` in a container).
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
