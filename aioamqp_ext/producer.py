"""BaseProducer: publish with publisher confirms, pipelined."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Coroutine, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

from _aiohttp_booster.redact import shown

from ._amqp import Connection, Delivery
from ._noloop import awaitable
from .base import BaseAmqp
from .errors import (
    AmqpConnectionError,
    AmqpTimeoutError,
    ConfigurationError,
    DeserializationError,
    PublishTimeoutError,
)
from .serializers import serializer_for

if TYPE_CHECKING:
    from .metrics import ProducerMetrics

__all__ = ["BaseProducer"]

_TRANSIENT = 1
#: RabbitMQ's direct reply-to: replies come straight back on the requesting channel
DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"
logger = logging.getLogger(__name__)


def fresh_properties(content_type: str | None) -> dict[str, Any]:
    """What a message gets before ``DEFAULT_PROPERTIES`` and its own properties: a fresh
    ``message_id``, the ``timestamp`` (whole seconds, as AMQP carries it) and, when given, the
    serializer's ``content_type``."""
    props: dict[str, Any] = {
        "message_id": uuid.uuid4().hex,
        "timestamp": datetime.now(UTC).replace(microsecond=0),
    }
    if content_type is not None:
        props["content_type"] = content_type
    return props


class BaseProducer(BaseAmqp):
    """Publishes messages to ``exchange``; each publish returns once the broker confirmed it.

    Takes the options of :class:`~aioamqp_ext.base.BaseAmqp`. The producer connects (and
    declares its exchange, unless it is the default exchange ``''``) on first use.
    """

    _side = "producer"

    #: ``delivery_mode`` of a transient message (aioamqp-ext 0.1's name, kept)
    NON_PERSISTENT: ClassVar[int] = 1
    #: ``delivery_mode`` of a persistent message, the default (aioamqp-ext 0.1's name, kept)
    PERSISTENT: ClassVar[int] = 2
    #: the properties each publish starts from, under those it is given (a subclass may
    #: override them; without a ``delivery_mode`` there, messages are transient)
    DEFAULT_PROPERTIES: ClassVar[Mapping[str, Any]] = MappingProxyType(
        {"delivery_mode": PERSISTENT}
    )

    _metrics: ProducerMetrics | None

    # request/reply, set up by the first request (the constructor is BaseAmqp's own)
    _replies: dict[str, asyncio.Future[Any]] | None = None  # correlation_id -> its waiter
    _replying_on: Connection | None = None  # the connection consuming our replies
    _reply_lock: asyncio.Lock | None = None

    async def request(
        self,
        payload: Any = None,
        routing_key: str | None = None,
        *,
        timeout: float = 30.0,
        properties: Mapping[str, Any] | None = None,
    ) -> Any:
        """Publish ``payload`` as a request and return the reply's deserialized data.

        The request carries ``reply_to`` RabbitMQ's direct reply-to (``amq.rabbitmq.reply-to``)
        and a fresh ``correlation_id``; a consumer whose handler returns a value answers it (see
        :class:`~aioamqp_ext.BaseConsumer`). It is transient (``delivery_mode`` 1) unless
        ``properties`` say otherwise: only a requester still waiting can get its reply.
        Thousands may be in flight on one producer; each gets its own reply. A reply that
        comes after its request timed out is dropped (logged at debug). The reply comes back
        on the connection the request went out on: a request in flight when that connection
        is lost fails with ``AmqpConnectionError`` (send it again if handling it twice is
        harmless).

        Args:
            payload: what to send, as the serializer accepts it.
            routing_key: as for :meth:`publish_message`.
            timeout: seconds to wait for the reply, the publish included.
            properties: further AMQP properties (``reply_to`` and ``correlation_id`` are ours).

        Raises:
            AmqpTimeoutError: no reply within ``timeout``.
            AmqpConnectionError: the connection was lost before the reply came.
            DeserializationError: the reply's body cannot be decoded.
            ConfigurationError: a bad ``timeout``, property or routing key.
            PublishError: as for :meth:`publish_message`.
        """
        where = f"{type(self).__name__}.request"
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
            raise ConfigurationError(
                f"{where}: timeout: expected seconds > 0, got {shown(timeout)}"
            )
        key = self._routing_key(routing_key)
        body = self.config.serializer.serialize(payload)
        correlation_id = uuid.uuid4().hex
        # transient unless asked: a reply can only reach a requester that still waits
        props = self._properties({"delivery_mode": _TRANSIENT, **(properties or {})})
        props.update(reply_to=DIRECT_REPLY_TO, correlation_id=correlation_id)
        if self._replies is None:
            self._replies, self._reply_lock = {}, asyncio.Lock()
        replies = self._replies
        waiter = replies[correlation_id] = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout):
                await self._consume_replies()
                await self._observed(self._publish(body, key, props, False), key, props)
                return await waiter
        except TimeoutError as exc:
            if type(exc) is not TimeoutError:  # one of ours, e.g. the publish's own timeout
                raise
            raise AmqpTimeoutError(
                f"{where}: no reply to request {correlation_id} (routing key {key!r}) within "
                f"{timeout:g} s"
            ) from None
        finally:
            del replies[correlation_id]

    async def _consume_replies(self) -> None:
        """Consume our direct reply-to pseudo-queue on the current connection (once)."""
        conn = await self._connection()
        if self._replying_on is conn:
            return
        assert self._reply_lock is not None
        async with self._reply_lock:
            if self._replying_on is not conn:
                await self._start_replies(conn)

    async def _start_replies(self, conn: Connection) -> None:
        await conn.consume(DIRECT_REPLY_TO, self._on_reply, no_ack=True)
        self._replying_on = conn

    async def _setup(self, conn: Connection) -> None:
        await super()._setup(conn)
        if self._replying_on is not None:  # requests were made: replies come to this one now
            await self._start_replies(conn)

    def _on_reply(self, delivery: Delivery) -> None:
        correlation_id = delivery.correlation_id
        waiter = (self._replies or {}).get(correlation_id or "")
        if waiter is None or waiter.done():
            logger.debug(
                "%s: a reply to request %s came after it ended (timed out?); dropped",
                type(self).__name__,
                correlation_id,
            )
            return
        try:
            serializer = serializer_for(delivery.content_type, self.config.serializer)
            waiter.set_result(serializer.deserialize(delivery.body))
        except Exception as exc:  # any serializer failure: the requester learns why
            waiter.set_exception(
                DeserializationError(f"the reply to request {correlation_id}: {exc}")
            )

    def _on_lost(self, error: AmqpConnectionError) -> None:
        # Replies come back on the channel a request went out on: with it gone, none will.
        for correlation_id, waiter in (self._replies or {}).items():
            if not waiter.done():
                waiter.set_exception(
                    AmqpConnectionError(
                        f"request {correlation_id}: the connection was lost before its reply "
                        f"came ({error})"
                    )
                )
                waiter.exception()  # its request may be past awaiting it: no "never retrieved"

    @awaitable
    def publish_message(
        self,
        payload: Any = None,
        routing_key: str | None = None,
        properties: Mapping[str, Any] | None = None,
        mandatory: bool = False,
        immediate: bool = False,
    ) -> Coroutine[Any, Any, None]:
        """Serialize ``payload`` and publish it; await the result.

        Messages are persistent (``DEFAULT_PROPERTIES``) and carry ``content_type``, a fresh
        ``message_id`` and a ``timestamp`` unless ``properties`` says otherwise. Many calls may
        be in flight at once: they share the connection and their confirms are pipelined. If
        the connection is lost before the confirm, the message is published again once it
        heals (at least once: the consumer may see it twice, with the same ``message_id``).

        Called where no event loop runs, it publishes (and waits for the confirm) before
        returning, and what it returns may still be awaited.

        Args:
            payload: what to send, as the serializer accepts it.
            routing_key: routing key; defaults to the constructor's ``routing_key`` (or, on
                the default exchange, its ``queue``).
            properties: AMQP properties: ``headers``, ``correlation_id``, ``reply_to``,
                ``expiration``, ``priority``, ``delivery_mode``, ``message_id`` ...
            mandatory: raise :class:`~aioamqp_ext.UnroutableError` when no queue gets it.
            immediate: unsupported by RabbitMQ; True raises ConfigurationError.

        Raises:
            ConfigurationError: ``immediate=True``, a bad property, or no routing key.
            SerializationError: the serializer cannot encode ``payload``.
            PublishNackedError: the broker refused the message.
            UnroutableError: ``mandatory=True`` and no queue matched.
            PublishTimeoutError: no confirm within ``publish_timeout``, also when the
                connection was lost and not healed in that time (the message may or may
                not have been stored).
            AmqpConnectionError: the broker is unreachable on first use, or, with
                ``reconnect=False``, the connection was lost before the confirm.
            ClosedError: the producer was closed (also while waiting for a connection).
        """
        if immediate:
            raise ConfigurationError(
                f"{type(self).__name__}.publish_message: immediate: RabbitMQ does not support "
                "immediate=True (removed in RabbitMQ 3.0); use mandatory=True to learn of "
                "unroutable messages, or a queue TTL, got True"
            )
        key = self._routing_key(routing_key)
        body = self.config.serializer.serialize(payload)
        props = self._properties(properties)
        return self._now_or_later(
            lambda: self._observed(self._publish(body, key, props, mandatory), key, props)
        )

    def _observed(
        self, publishing: Coroutine[Any, Any, None], key: str, props: dict[str, Any]
    ) -> Coroutine[Any, Any, None]:
        """``publishing`` in a PRODUCER span (its context in ``props``' headers) when tracing,
        counted when metrics are on."""
        if self._tracing is not None:
            publishing = self._tracing.publishing(publishing, self.config.exchange, key, props)
        if self._metrics is not None:
            publishing = self._metrics.counted(publishing)
        return publishing

    def _routing_key(self, routing_key: str | None) -> str:
        if routing_key is not None:
            if not isinstance(routing_key, str):
                raise ConfigurationError(
                    f"{type(self).__name__}.publish_message: routing_key: expected a str, "
                    f"got {shown(routing_key)}"
                )
            return routing_key
        keys = self.config.routing_keys
        if len(keys) == 1:
            return keys[0]
        if keys:
            raise ConfigurationError(
                f"{type(self).__name__}.publish_message: routing_key: the producer has several "
                f"routing keys {list(keys)!r}; pass one, got None"
            )
        return "" if self.config.exchange else self.config.queue

    def _properties(self, properties: Mapping[str, Any] | None) -> dict[str, Any]:
        props = {**fresh_properties(self.config.serializer.content_type), **self.DEFAULT_PROPERTIES}
        if properties is not None:
            if not isinstance(properties, Mapping):
                raise ConfigurationError(
                    f"{type(self).__name__}.publish_message: properties: expected a dict, "
                    f"got {shown(properties)}"
                )
            props.update(properties)
        if props.get("message_id") is None:
            props["message_id"] = uuid.uuid4().hex
        return {name: value for name, value in props.items() if value is not None}

    async def _publish(
        self, body: bytes, routing_key: str, properties: dict[str, Any], mandatory: bool
    ) -> None:
        cfg = self.config
        lost: AmqpConnectionError | None = None
        waiting = False
        try:
            async with asyncio.timeout(cfg.publish_timeout):
                while True:
                    waiting = True
                    conn = await self._connection()  # during an outage: once healed
                    waiting = False
                    try:
                        await conn.publish(
                            body,
                            exchange=cfg.exchange,
                            routing_key=routing_key,
                            properties=properties,
                            mandatory=mandatory,
                        )
                        return
                    except AmqpConnectionError as exc:
                        if not cfg.reconnect or conn.is_open:
                            raise
                        lost = exc  # unconfirmed: publish it again once healed (at least once)
        except TimeoutError as exc:
            if type(exc) is not TimeoutError:  # already one of ours, e.g. a connect timeout
                raise
            message = f"{type(self).__name__}: message {properties['message_id']}"
            if waiting and lost is None:
                raise PublishTimeoutError(
                    f"{message} was not published: no connection to the broker within "
                    f"{cfg.publish_timeout:g} s (reconnecting)"
                ) from None
            if lost is not None:
                raise PublishTimeoutError(
                    f"{message} was not confirmed within {cfg.publish_timeout:g} s, the "
                    f"connection healing too late to publish it again: {lost}"
                ) from None
            raise PublishTimeoutError(
                f"{message} was not confirmed within {cfg.publish_timeout:g} s; "
                "it may or may not have been stored"
            ) from None
