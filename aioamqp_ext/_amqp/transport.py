"""A connection with one channel over aioamqp (untyped), typed outward.

aioamqp 0.15 is unmaintained; what it gets wrong is covered here:

- it ignores ``multiple`` on publisher-confirm acks
  (https://github.com/Polyconseil/aioamqp/issues/233), so confirms are tracked here:
  delivery tag -> future, and an ack or nack with ``multiple`` settles every tag up to it;
- it awaits each delivery callback inside its frame reader
  (https://github.com/Polyconseil/aioamqp/issues/150), so the callback handed to
  :meth:`Connection.consume` must be quick: it only hands the delivery over;
- with heartbeats off it still starts a heartbeat sender that then busy-loops, which is
  stopped here;
- on missed heartbeats it closes the socket gracefully, which never completes on a stalled
  link, so the socket is aborted here instead;
- a lost connection or a channel closed by the broker fails every waiting publish at once,
  and ``on_lost`` is told, so the owner can heal the connection underneath its API;
- an aioamqp call given up on leaves its waiter behind (a second call of the same kind then
  fails, and a late answer is set on a cancelled future), so :meth:`Connection.queue_state`
  never cancels its passive declare: a round that times out leaves it pending, and the next
  round waits for that one instead of sending another.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import aioamqp
import aioamqp.channel
import aioamqp.protocol

from ..config import BrokerUrl
from ..errors import AmqpConnectionError, AmqpTimeoutError, TopologyError
from .confirms import ConfirmTracker, unroutable
from .delivery import Delivery
from .frames import Outbox

#: the channel-close codes of a declaration the broker refuses (access, not found, locked,
#: inequivalent arguments)
_REFUSED = (403, 404, 405, 406)

logger = logging.getLogger(__name__)
T = TypeVar("T")
_DRAIN_ABOVE = 256 * 1024  # bytes buffered before a publish waits for the socket


class _Channel(aioamqp.channel.Channel):  # type: ignore[misc]  # aioamqp is untyped
    """aioamqp's channel, reporting confirms and closure to its :class:`Connection`.

    A side channel (``owner`` None, for queue statistics) reports nothing: its closure by the
    broker (a queue that does not exist) leaves the connection and the main channel alone.
    """

    def __init__(self, *args: Any, owner: Connection | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.owner = owner

    async def basic_server_ack(self, frame: Any) -> None:
        if self.owner is not None:  # a side channel confirms nothing
            self.owner._settle(frame.delivery_tag, frame.multiple, nacked=False)

    async def basic_server_nack(self, frame: Any, delivery_tag: Any = None) -> None:
        if self.owner is not None:
            self.owner._settle(frame.delivery_tag, frame.multiple, nacked=True)

    def connection_closed(
        self, server_code: Any = None, server_reason: Any = None, exception: Any = None
    ) -> None:
        super().connection_closed(server_code, server_reason, exception)
        if self.owner is None:  # a side channel: its caller gets the error
            return
        if self.protocol.close_reason:
            reason = self.protocol.close_reason
        elif server_code:
            reason = f"closed by the broker ({server_code} {server_reason})"
        elif isinstance(exception, aioamqp.ChannelClosed) and exception.code:
            reason = f"closed by the broker ({exception.code} {exception.message})"
        elif exception is not None and not isinstance(exception, aioamqp.ChannelClosed):
            reason = f"connection lost ({_describe(exception)})"
        else:
            reason = "connection lost"
        self.owner._closed(reason)


class _Protocol(aioamqp.protocol.AmqpProtocol):  # type: ignore[misc]  # aioamqp is untyped
    CHANNEL_FACTORY = _Channel
    close_reason: str | None = None

    async def server_close(self, frame: Any) -> None:
        self.close_reason = f"closed by the broker ({frame.reply_code} {frame.reply_text})"
        await super().server_close(frame)

    async def _heartbeat_recv(self) -> None:
        # aioamqp closes the stream on missed heartbeats, and closing waits for buffered frames
        # to reach a peer that may never read again (a stalled link): abort it instead.
        loop = asyncio.get_running_loop()
        while self.state != aioamqp.protocol.CLOSED and self.server_heartbeat:
            limit = 2 * self.server_heartbeat
            silent = loop.time() - self._heartbeat_last_recv
            if silent >= limit:
                self.close_reason = f"no heartbeat from the broker for {silent:.1f} s"
                self._stream_writer.transport.abort()
                return
            await asyncio.sleep(limit - silent)


class Connection:
    """One AMQP connection and its channel (publisher confirms on when asked).

    Every call has a timeout and raises only aioamqp_ext errors naming the masked URL.
    """

    def __init__(self, url: BrokerUrl, *, timeout: float) -> None:
        self.url = url
        self.timeout = timeout
        self.on_lost: Callable[[AmqpConnectionError], None] | None = None
        self._transport: asyncio.Transport | None = None
        self._protocol: Any = None
        self._channel: Any = None
        self._confirms = False
        self._tracker = ConfirmTracker(str(url))
        self._lost: str | None = None
        self._closing = False
        self._outbox: Outbox | None = None  # publishes, acks and rejects, written in batches
        self._side: Any = None  # the side channel of queue_state, opened on first use
        self._side_opening = asyncio.Lock()  # callers for two queues open one channel
        self._states: dict[str, asyncio.Task[tuple[int, int]]] = {}  # passive declares sent

    async def connect(self, *, heartbeat: int, confirms: bool, name: str) -> None:
        """Connect, open the channel, enable confirms if asked; ``name`` is shown by the broker.

        Raises:
            AmqpConnectionError: the broker refused or dropped the handshake;
                :class:`AmqpTimeoutError` if it did not answer within ``timeout``.
        """
        url = self.url
        loop = asyncio.get_running_loop()
        context = ssl.create_default_context() if url.ssl else None
        client_properties = {"connection_name": name}
        try:
            async with asyncio.timeout(self.timeout):
                self._transport, self._protocol = await loop.create_connection(
                    lambda: _Protocol(heartbeat=heartbeat, client_properties=client_properties),
                    url.host,
                    url.port,
                    ssl=context,
                )
                await self._protocol.start_connection(
                    url.host, url.port, url.login, url.password, url.virtualhost, ssl=url.ssl
                )
                self._stop_stray_heartbeats()
                self._channel = await self._protocol.channel(
                    owner=self, return_callback=self._on_return
                )
                self._outbox = Outbox(
                    self._channel.channel_id,
                    self._protocol._stream_writer.writelines,
                    self._protocol.server_frame_max or 0,
                )
                if confirms:
                    await self._channel.confirm_select()
                    self._confirms = True
        except BaseException as exc:
            await self._abort()
            if isinstance(exc, TimeoutError):
                raise AmqpTimeoutError(
                    f"cannot connect to {url}: no answer within {self.timeout:g} s"
                ) from None
            if isinstance(exc, OSError | aioamqp.AioamqpException):
                reason = getattr(self._protocol, "close_reason", None) or _describe(exc)
                if isinstance(exc, aioamqp.AmqpClosedConnection) and reason == _describe(exc):
                    reason = (
                        f"the broker closed the connection during login as {url.login!r} to "
                        f"vhost {url.virtualhost!r} (wrong user, password or vhost?)"
                    )
                raise AmqpConnectionError(f"cannot connect to {url}: {reason}") from None
            raise

    def _stop_stray_heartbeats(self) -> None:
        # With heartbeats off, aioamqp still starts its heartbeat sender while the broker's
        # proposal is being answered; once the interval is 0 that task sends a heartbeat on
        # every loop iteration, a busy loop for the life of the connection. Stop it.
        protocol = self._protocol
        worker = protocol._heartbeat_send_worker
        if not protocol.server_heartbeat and worker is not None:
            worker.cancel()
            protocol._heartbeat_send_worker = None

    @property
    def is_open(self) -> bool:
        """True while the connection and its channel are usable."""
        return self._lost is None and not self._closing and self._channel is not None

    async def _call(
        self, what: str, call: Callable[[], Awaitable[T]], *, topology: bool = False
    ) -> T:
        """Check the connection, then await ``call()`` within the timeout, translating errors."""
        self._check_open(what)
        try:
            async with asyncio.timeout(self.timeout):
                return await call()
        except TimeoutError:
            # An unanswered call leaves aioamqp's waiters in an unknown state: drop the connection.
            self._closed(f"no answer within {self.timeout:g} s")
            if self._transport is not None:
                self._transport.abort()
            raise AmqpTimeoutError(
                f"{what}: no answer from {self.url} within {self.timeout:g} s"
            ) from None
        except (OSError, aioamqp.AioamqpException) as exc:
            raise self._failure(what, exc, topology=topology) from None

    def _failure(
        self, what: str, exc: OSError | aioamqp.AioamqpException, *, topology: bool
    ) -> AmqpConnectionError | TopologyError:
        """Our error for a broker call that failed with ``exc``: a declaration the broker
        refused (a channel closed with 403-406) is a TopologyError, anything else a lost
        connection or channel."""
        if topology and isinstance(exc, aioamqp.ChannelClosed) and exc.code in _REFUSED:
            return TopologyError(f"{what}: refused by {self.url}: {exc.code} {exc.message}")
        return AmqpConnectionError(f"{what}: {self._lost or _describe(exc)} ({self.url})")

    def _check_open(self, what: str) -> None:
        if not self.is_open:
            raise AmqpConnectionError(f"{what}: {self._lost or 'connection closed'} ({self.url})")

    async def declare_exchange(self, name: str, kind: str, *, durable: bool, passive: bool) -> None:
        """Declare (or with ``passive`` only check) an exchange."""
        what = f"exchange {name!r}" + (" (passive check)" if passive else "")
        declare = self._channel.exchange_declare
        await self._call(
            what, lambda: declare(name, kind, passive=passive, durable=durable), topology=True
        )

    async def declare_queue(
        self, name: str, *, durable: bool, passive: bool, arguments: Mapping[str, Any]
    ) -> int:
        """Declare (or check) a queue; returns the number of messages ready in it."""
        what = f"queue {name!r}" + (" (passive check)" if passive else "")
        declare = self._channel.queue_declare
        args = dict(arguments)
        result = await self._call(
            what,
            lambda: declare(name, passive=passive, durable=durable, arguments=args),
            topology=True,
        )
        return int(result["message_count"])

    async def queue_state(self, queue: str) -> tuple[int, int]:
        """``queue``'s ready messages and consumers: ``(message_count, consumer_count)``.

        A passive ``queue.declare`` on a second channel of this connection (opened on the
        first call, kept, reopened after the broker closed it), never on the main channel:
        consuming, acks and confirms are untouched. Not for a hot path: one round trip.

        Raises:
            TopologyError: the queue does not exist (or is exclusive to another connection);
                the broker closed the side channel only, the connection stays up.
            AmqpTimeoutError: no answer within ``timeout``. The connection stays up (unlike
                the other calls), and the declare stays pending: the next call for the same
                queue waits for that answer instead of sending another.
            AmqpConnectionError: the connection is closed or lost.
        """
        what = f"queue {queue!r} (passive check for its depth)"
        self._check_open(what)
        pending = self._states.get(queue)
        if pending is None or pending.done():
            pending = asyncio.ensure_future(self._declare_passive(what, queue))
            pending.add_done_callback(_retrieved)
            self._states[queue] = pending
        try:
            async with asyncio.timeout(self.timeout):
                return await asyncio.shield(pending)
        except TimeoutError:
            raise AmqpTimeoutError(
                f"{what}: no answer from {self.url} within {self.timeout:g} s"
            ) from None

    async def _declare_passive(self, what: str, queue: str) -> tuple[int, int]:
        try:
            async with self._side_opening:
                side = self._side
                if side is None or not side.is_open:
                    side = self._side = await self._protocol.channel()  # a _Channel, no owner
            result = await side.queue_declare(queue, passive=True)
        except (OSError, aioamqp.AioamqpException) as exc:
            raise self._failure(what, exc, topology=True) from None
        finally:
            if self._states.get(queue) is asyncio.current_task():
                del self._states[queue]
        return int(result["message_count"]), int(result["consumer_count"])

    async def bind_queue(self, queue: str, exchange: str, routing_key: str) -> None:
        """Bind ``queue`` to ``exchange`` with ``routing_key``."""
        what = f"binding of queue {queue!r} to exchange {exchange!r} with key {routing_key!r}"
        bind = self._channel.queue_bind
        await self._call(what, lambda: bind(queue, exchange, routing_key), topology=True)

    async def qos(self, prefetch_count: int, prefetch_size: int) -> None:
        """Limit unacknowledged deliveries (per consumer)."""
        qos = self._channel.basic_qos
        await self._call(
            "basic.qos", lambda: qos(prefetch_size=prefetch_size, prefetch_count=prefetch_count)
        )

    async def consume(
        self, queue: str, on_delivery: Callable[[Delivery], None], *, no_ack: bool = False
    ) -> str:
        """Start consuming ``queue``; ``on_delivery`` is called (synchronously) per message.
        With ``no_ack`` the broker counts a message delivered as settled (RabbitMQ's direct
        reply-to needs it)."""

        async def deliver(channel: Any, body: bytes, envelope: Any, properties: Any) -> None:
            on_delivery(
                Delivery(
                    body,
                    envelope.delivery_tag,
                    envelope.exchange_name,
                    envelope.routing_key,
                    bool(envelope.is_redeliver),
                    properties,
                )
            )

        async def cancelled(channel: Any, consumer_tag: Any) -> None:
            self._closed(f"consumer cancelled by the broker (was queue {queue!r} deleted?)")

        self._channel.add_cancellation_callback(cancelled)
        start = self._channel.basic_consume
        result = await self._call(
            f"basic.consume on {queue!r}", lambda: start(deliver, queue_name=queue, no_ack=no_ack)
        )
        return str(result["consumer_tag"])

    async def cancel(self, consumer_tag: str) -> None:
        """Stop a consumer: the broker sends it no more messages."""
        self._flush()
        await self._call("basic.cancel", lambda: self._channel.basic_cancel(consumer_tag))

    async def ack(self, delivery_tag: int, *, now: bool = False) -> None:
        """Acknowledge one delivery: written with the next batch of frames or, with ``now``
        and nothing else queued, at once (a lone handler: nothing to batch it with)."""
        self._check_open("basic.ack")
        self._outbox.ack(delivery_tag, now=now)  # type: ignore[union-attr]  # open: an outbox
        await self._backpressure("basic.ack")

    async def reject(self, delivery_tag: int, *, requeue: bool) -> None:
        """Reject one delivery (dead-lettered, or dropped, unless ``requeue``)."""
        self._check_open("basic.reject")
        self._outbox.reject(delivery_tag, requeue=requeue)  # type: ignore[union-attr]
        await self._backpressure("basic.reject")

    async def publish(
        self,
        body: bytes,
        *,
        exchange: str,
        routing_key: str,
        properties: Mapping[str, Any],
        mandatory: bool,
    ) -> None:
        """Publish one message and, with confirms on, wait for the broker's confirm.

        Raises:
            ConfigurationError: ``properties`` holds an unknown or ill-typed property.
            PublishNackedError: the broker nacked the message.
            UnroutableError: ``mandatory`` and no queue matched.
            AmqpConnectionError: the connection or channel was lost first.
        """
        self._check_open("publish")
        assert self._outbox is not None
        # The frames are queued and the tag taken with no await in between, so tags follow
        # the broker's count even with thousands of publishes in flight.
        # A lone confirmed publish (one awaited at a time) is written at once: a round trip
        # to the broker follows, and nothing would share the write.
        self._outbox.publish(
            body, properties, (exchange, routing_key, mandatory),
            now=self._confirms and not self._tracker,
        )  # fmt: skip
        waiter: asyncio.Future[None] | None = None
        if self._confirms:
            mandatory_id = str(properties.get("message_id")) if mandatory else None
            waiter = self._tracker.add(mandatory_id=mandatory_id)
        await self._backpressure("publish")
        if waiter is not None:
            await waiter

    async def _backpressure(self, what: str) -> None:
        if self._transport.get_write_buffer_size() > _DRAIN_ABOVE:  # type: ignore[union-attr]
            await self._call(what, self._protocol._drain)

    def _flush(self) -> None:
        if self._outbox is not None:
            self._outbox.flush()

    async def _on_return(self, channel: Any, body: Any, envelope: Any, properties: Any) -> None:
        error = unroutable(
            str(properties.message_id),
            exchange=str(envelope.exchange_name),
            routing_key=str(envelope.routing_key),
            reply_code=int(envelope.reply_code),
            reply_text=str(envelope.reply_text),
        )
        if not self._tracker.returned(str(properties.message_id), error):
            logger.warning("%s", error)

    def _settle(self, tag: int, multiple: bool, *, nacked: bool) -> None:
        self._tracker.settle(tag, multiple=multiple, nacked=nacked)

    def _closed(self, reason: str) -> None:
        if self._lost is not None:
            return
        self._lost = reason
        if self._outbox is not None:
            self._outbox.closed = True
        error = AmqpConnectionError(
            f"{reason} ({self.url}) before the broker confirmed the message; "
            "it may or may not have been stored"
        )
        self._tracker.fail_all(error)
        if not self._closing and self.on_lost is not None:
            self.on_lost(AmqpConnectionError(f"{reason} ({self.url})"))

    async def close(self) -> None:
        """Close the connection (a no-op if it is already closed or lost); never raises."""
        if self._closing:
            return
        self._closing = True
        self._flush()
        protocol = self._protocol
        if protocol is not None and protocol.state == aioamqp.protocol.OPEN:
            try:
                async with asyncio.timeout(self.timeout):
                    await protocol.close()
            except (TimeoutError, OSError, aioamqp.AioamqpException) as exc:
                logger.debug("closing %s: %r", self.url, exc)
        await self._abort()

    async def _abort(self) -> None:
        # abort, not close: close() waits for buffered frames a dead peer will never read
        if self._transport is not None:
            self._transport.abort()
        names = ("worker", "_heartbeat_recv_worker", "_heartbeat_send_worker")
        tasks = [getattr(self._protocol, name, None) for name in names]
        tasks += self._states.values()  # passive declares nobody will answer now
        running = [t for t in tasks if t is not None and t is not asyncio.current_task()]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        self._closed("connection closed")


def _retrieved(task: asyncio.Task[Any]) -> None:
    """Mark a task's outcome read: a declare nobody waits for any more must not warn."""
    if not task.cancelled():
        task.exception()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, aioamqp.ChannelClosed) and exc.code:
        return f"channel closed ({exc.code} {exc.message})"
    return str(exc) or type(exc).__name__


__all__ = ["Connection", "Delivery"]
