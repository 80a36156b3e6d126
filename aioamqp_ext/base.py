"""What producer and consumer share: options, the connection, closing, and the no-loop mode."""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Callable, Coroutine, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Self

from _aiohttp_booster.redact import shown

from ._amqp import Connection
from ._amqp.frames import table_problem
from ._legacy import Compat2018, accepts_2018_calls, moved, warn_deprecated
from ._noloop import DONE, awaitable, cancel_all
from ._reconnect import Link
from ._tracing import Tracing, tracing_for
from .config import DEFAULT_URL, AmqpConfig, check_side
from .errors import (
    AmqpConnectionError,
    AmqpExtError,
    AmqpTimeoutError,
    ClosedError,
    ConfigurationError,
)
from .serializers import Serializer

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from .metrics import ConsumerMetrics, ProducerMetrics

__all__ = ["BaseAmqp"]

logger = logging.getLogger(__name__)


class BaseAmqp(Compat2018):
    """Connection, topology options and lifecycle shared by producer and consumer.

    Args:
        url: broker URL (``amqp://`` or ``amqps://``), or a list of them tried in turn.
        exchange: exchange to publish to or bind to; ``''`` is the default exchange (None,
            aioamqp-ext 0.1's default, means ``''`` and warns).
        exchange_type: ``'topic'``, ``'direct'``, ``'fanout'``, ``'headers'`` or an ``x-`` type.
        routing_key: a routing key or a list of them (the consumer binds each).
        queue: the queue name (consumer: the queue to consume; producer: None means ``''``
            and warns).
        prefetch_count: unacknowledged messages a consumer may hold, 0 for no limit.
        prefetch_size: prefetch window in bytes, 0 for none (RabbitMQ supports only 0).
        serializer: ``'json'``, ``'msgpack'``, ``'raw'``/``bytes``, ``'text'`` or an object
            with ``content_type``, ``serialize`` and ``deserialize``.
        loop: ignored, accepted for compatibility; passing it warns (DeprecationWarning).
            An event loop as 4th positional argument, its place in aioamqp-ext 0.1, binds the
            arguments after it in that order, and warns.
        durable: declare the exchange and queue durable.
        passive: only check that the exchange and queue exist; declare and bind nothing.
        dead_letter_exchange: dead-letter rejected messages through this exchange into
            ``<queue>.dlq`` (both declared).
        queue_arguments: further arguments of the queue declaration (``x-queue-type`` ...).
        max_retries: times a failing message is retried before it is dead-lettered; by
            default as many as ``retry_delays`` (0 without them).
        retry_delays: seconds a failed message waits, in the broker, before each retry
            (``(1, 10, 60)``; the last one repeats); None: retried at once.
        handler_timeout: seconds a handler may run; then it is cancelled and the message
            counts as failed (retried or dead-lettered). None: no limit.
        queue_depth_interval: with metrics (``registry=``), read the queue's ready messages
            and consumers every so many seconds (at least 0.1), a passive declare on a
            channel of its own, for ``amqp_queue_messages`` and ``amqp_queue_consumers``;
            None or 0: never.
        publisher_confirms: wait for the broker's confirm of each publish.
        connect_timeout: seconds to connect to one URL, and for each broker call.
        publish_timeout: seconds ``publish_message()`` may take, confirm included, waiting
            for the connection to heal during an outage.
        close_timeout: seconds ``close()`` lets in-flight handlers finish.
        heartbeat: AMQP heartbeat in seconds, 0 to turn it off; a silent broker is noticed
            within about two heartbeats.
        reconnect: heal a lost connection in the background (False: fail, and reconnect
            on next use).
        reconnect_delay: seconds before the first reconnection attempt; doubled per attempt.
        reconnect_max_delay: cap of that delay.
        connection_name: the name the broker shows for the connection (management UI,
            ``rabbitmqctl list_connections``); by default the class, pid and host.
        registry: a prometheus-client ``CollectorRegistry`` to record the ``amqp_*`` metrics
            in (see :mod:`aioamqp_ext.metrics`); None records none.
        tracing: False turns OpenTelemetry tracing off. It is on when the ``otel`` extra is
            installed and a tracer provider is set (``tracer_provider``, or the global one)
            when the client connects.
        tracer_provider: an OpenTelemetry tracer provider to trace with instead of the
            global one.

    Raises:
        ConfigurationError: an invalid option (also a ValueError), naming it; also an option
            of the other side (a producer given ``max_retries``, a consumer given
            ``publisher_confirms``). ``prefetch_count`` and ``prefetch_size``, which the 2018
            API took on a producer, only warn there (DeprecationWarning): they are ignored.
        TypeError: None as 4th positional argument with more after it, which aioamqp-ext 0.1
            read as ``loop`` and today as ``routing_key``: pass them by keyword.
    """

    #: ``'producer'`` or ``'consumer'``: refuses the other side's options (None: both)
    _side: ClassVar[str | None] = None
    #: makes the connection for a URL; :mod:`aioamqp_ext.testing` sets an in-memory one
    _transport: Callable[..., Connection] = Connection

    @accepts_2018_calls  # loop 4th positional, exchange=None, queue=None (see _legacy)
    def __init__(
        self,
        url: str | Sequence[str] = DEFAULT_URL,
        exchange: str = "",
        exchange_type: str = "topic",
        routing_key: str | Sequence[str] | None = None,
        queue: str = "",
        prefetch_count: int = 1,
        prefetch_size: int = 0,
        serializer: str | Serializer | type[bytes] = "json",
        loop: object = None,
        *,
        durable: bool = True,
        passive: bool = False,
        dead_letter_exchange: str | None = None,
        queue_arguments: Mapping[str, Any] | None = None,
        max_retries: int | None = None,
        retry_delays: Sequence[float] | None = None,
        handler_timeout: float | None = None,
        queue_depth_interval: float | None = 15.0,
        publisher_confirms: bool = True,
        connect_timeout: float = 10.0,
        publish_timeout: float = 30.0,
        close_timeout: float = 30.0,
        heartbeat: float = 60.0,
        reconnect: bool = True,
        reconnect_delay: float = 0.5,
        reconnect_max_delay: float = 5.0,
        connection_name: str | None = None,
        registry: CollectorRegistry | None = None,
        tracing: bool = True,
        tracer_provider: Any = None,
    ) -> None:
        if self._side is not None:
            check_side(type(self).__name__, self._side, {
                "prefetch_count": prefetch_count, "prefetch_size": prefetch_size,
                "dead_letter_exchange": dead_letter_exchange, "queue_arguments": queue_arguments,
                "max_retries": max_retries, "close_timeout": close_timeout,
                "retry_delays": retry_delays, "handler_timeout": handler_timeout,
                "queue_depth_interval": queue_depth_interval,
                "publisher_confirms": publisher_confirms,
            })  # fmt: skip
        if loop is not None:
            warn_deprecated(f"{type(self).__name__}: loop= is ignored; the running loop is used")
        self.config = AmqpConfig.from_options(
            where=type(self).__name__,
            url=url,
            exchange=exchange,
            exchange_type=exchange_type,
            routing_key=routing_key,
            queue=queue,
            prefetch_count=prefetch_count,
            prefetch_size=prefetch_size,
            serializer=serializer,
            durable=durable,
            passive=passive,
            dead_letter_exchange=dead_letter_exchange,
            queue_arguments=queue_arguments,
            max_retries=max_retries,
            retry_delays=retry_delays,
            handler_timeout=handler_timeout,
            queue_depth_interval=queue_depth_interval,
            publisher_confirms=publisher_confirms,
            connect_timeout=connect_timeout,
            publish_timeout=publish_timeout,
            close_timeout=close_timeout,
            heartbeat=heartbeat,
            reconnect=reconnect,
            reconnect_delay=reconnect_delay,
            reconnect_max_delay=reconnect_max_delay,
            connection_name=connection_name,
        )
        problem = table_problem(self.config.queue_declare_arguments())
        if problem is not None:  # found now, not when the broker refuses the declaration
            raise ConfigurationError(f"{type(self).__name__}: queue_arguments: {problem}")
        self._link: Link | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._private_loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._close_done = asyncio.Event()
        self._metrics: ConsumerMetrics | ProducerMetrics | None = None
        self._reconnects = 0
        if not isinstance(tracing, bool):
            raise ConfigurationError(
                f"{type(self).__name__}: tracing: expected True or False, got {shown(tracing)}"
            )
        get_tracer = getattr(tracer_provider, "get_tracer", None)
        if tracer_provider is not None and not callable(get_tracer):
            raise ConfigurationError(
                f"{type(self).__name__}: tracer_provider: expected an OpenTelemetry "
                f"TracerProvider (with get_tracer), got {type(tracer_provider).__name__}"
            )
        self._tracing_options = (tracing, tracer_provider)
        #: spans of publishes and handler runs; decided on connecting (None: not traced)
        self._tracing: Tracing | None = tracing_for(tracing, tracer_provider)
        if registry is not None:
            self.attach_metrics(registry)

    def __repr__(self) -> str:
        cfg = self.config
        urls = ", ".join(url.masked for url in cfg.urls)
        link = self._link
        state = "closed" if self._closed else "connected" if self.is_connected else "idle"
        if state == "idle" and link is not None and link.busy:
            state = "reconnecting"
        return (
            f"<{type(self).__name__} url={urls!r} exchange={cfg.exchange!r} "
            f"queue={cfg.queue!r} {state}>"
        )

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called."""
        return self._closed

    @property
    def reconnects(self) -> int:
        """Connections healed after a loss so far."""
        return self._reconnects

    def attach_metrics(self, registry: CollectorRegistry) -> None:
        """Record this client's ``amqp_*`` metrics in ``registry``; idempotent.

        Args:
            registry: a prometheus-client ``CollectorRegistry``, e.g. a monitoring app's.
        """
        from .metrics import attach_metrics  # prometheus-client only when metrics are asked for

        attach_metrics(self, registry)

    def _healed(self) -> None:
        self._reconnects += 1

    @property
    def is_connected(self) -> bool:
        """True while a connection to the broker is open and set up (for readiness checks)."""
        return self._link is not None and self._link.is_connected

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until connected: at once if connected, else until the connection heals.

        It does not connect by itself: the first connection is made by :meth:`connect`, or
        on first use.

        Args:
            timeout: seconds to wait; None waits as long as it takes.

        Raises:
            AmqpTimeoutError: not connected within ``timeout``.
            ClosedError: closed meanwhile.
        """
        try:
            async with asyncio.timeout(timeout):
                await self._here().wait()
        except TimeoutError as exc:
            if type(exc) is not TimeoutError:
                raise
            raise AmqpTimeoutError(f"{self!r}: not connected within {timeout:g} s") from None

    async def connect(self) -> None:
        """Connect and declare the topology now instead of on first use.

        During an outage it waits up to ``connect_timeout`` for the connection to heal.

        Raises:
            AmqpConnectionError: the broker is unreachable within ``connect_timeout``.
            TopologyError: a declaration (or passive check) was refused.
        """
        await self._here().connection(outage_wait=self.config.connect_timeout)

    async def _connection(self) -> Connection:
        """The open connection: made on first use; during an outage, once healed."""
        link = self._link
        if link is not None and self._loop is asyncio.get_running_loop():
            conn = link.conn
            if conn is not None and conn.is_open:
                return conn  # the fast path of every publish
        return await self._here().connection()

    def _here(self) -> Link:
        """The link of the running event loop (a new one if the object moved loops)."""
        if self._closed:
            raise ClosedError(f"{self!r} is closed")
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._link is None:
            old = self._link
            if old is not None and old.busy and self._loop and not self._loop.is_closed():
                raise AmqpExtError(
                    f"{self!r} is connected on another event loop; use one instance per loop"
                )
            self._loop = loop
            self._link = Link(
                self.config,
                owner=type(self).__name__,
                setup=self._setup,
                on_lost=self._on_lost,
                on_healed=self._healed,
                transport=self._transport,
            )
        return self._link

    async def _setup(self, conn: Connection) -> None:
        """Declare what this side needs on a new connection (the exchange, here)."""
        self._tracing = tracing_for(*self._tracing_options)  # a provider set since is used
        cfg = self.config
        if cfg.exchange:
            await conn.declare_exchange(
                cfg.exchange, cfg.exchange_type, durable=cfg.durable, passive=cfg.passive
            )

    def _on_lost(self, error: AmqpConnectionError) -> None:
        """The connection broke under us (the link logged it and, if enabled, heals it)."""

    @awaitable
    def close(self) -> Coroutine[Any, Any, None]:
        """Close the connection; idempotent.

        In async code, await it. Called where no event loop runs, it closes before
        returning, and what it returns may still be awaited (it does nothing more).
        """
        return self._now_or_later(self._close)

    async def _close(self) -> None:
        if self._closed:  # idempotent; a second caller waits for the first to finish
            await self._close_done.wait()
            return
        self._closed = True
        try:
            if self._link is not None and not self._orphaned():
                await self._link.stop()  # no more healing; publishes waiting for it fail
            await self._shutdown()
        finally:
            self._close_done.set()

    def _orphaned(self) -> bool:
        """True when the connection's event loop was closed (e.g. by ``asyncio.run``)."""
        return self._loop is not None and self._loop.is_closed()

    async def _shutdown(self) -> None:
        """Release what this side holds (the connection, here); runs once."""
        conn = self._link.conn if self._link is not None else None
        if self._link is not None:
            self._link.conn = None
        if conn is not None and self._orphaned():
            logger.debug("%s: its event loop is closed; nothing left to close", type(self).__name__)
        elif conn is not None:
            await conn.close()
            logger.info("%s closed its connection to %s", type(self).__name__, conn.url)

    def _now_or_later(
        self, work: Callable[[], Coroutine[Any, Any, None]]
    ) -> Coroutine[Any, Any, None]:
        """``work()`` to await in a running loop; else ``work`` done now on a loop of ours."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            return work()
        loop = self._loop
        if loop is None or loop.is_closed() or loop.is_running():
            loop = self._private_loop = self._private_loop or asyncio.new_event_loop()
        try:
            loop.run_until_complete(work())
        finally:
            if self._closed and loop is self._private_loop:
                self._shutdown_private_loop()
        return DONE

    def _shutdown_private_loop(self) -> None:
        loop, self._private_loop = self._private_loop, None
        if loop is None:
            return
        try:
            loop.run_until_complete(cancel_all(asyncio.all_tasks(loop)))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __del__(self) -> None:
        link = getattr(self, "_link", None)
        if link is not None and link.conn is not None and not self._closed:
            warnings.warn(f"{self!r} was not closed", ResourceWarning, stacklevel=1)


#: aioamqp-ext 0.1's constants of this module: their values, and what to use instead
_MOVED: dict[str, tuple[object, str]] = {
    "DEFAULT_RABBIT_URL": (DEFAULT_URL, "aioamqp_ext.config.DEFAULT_URL"),
    "DEFAULT_EXCHANGE_TYPE": ("topic", "'topic', the default of exchange_type="),
    "DEFAULT_PREFETCH_COUNT": (1, "1, the default of prefetch_count="),
    "DEFAULT_PREFETCH_SIZE": (0, "0, the default of prefetch_size="),
}


def __getattr__(name: str) -> Any:
    """aioamqp-ext 0.1's constants of this module, deprecated (PEP 562)."""
    return moved(__name__, name, _MOVED)
