"""BaseProducer: publish with publisher confirms, pipelined."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .base import BaseAmqp
from .errors import AmqpConnectionError, ConfigurationError, PublishTimeoutError

if TYPE_CHECKING:
    from .metrics import ProducerMetrics

__all__ = ["BaseProducer"]

_PERSISTENT = 2


class BaseProducer(BaseAmqp):
    """Publishes messages to ``exchange``; each publish returns once the broker confirmed it.

    Takes the options of :class:`~aioamqp_ext.base.BaseAmqp`. The producer connects (and
    declares its exchange, unless it is the default exchange ``''``) on first use.
    """

    _side = "producer"

    _metrics: ProducerMetrics | None

    def publish_message(
        self,
        payload: Any = None,
        routing_key: str | None = None,
        properties: Mapping[str, Any] | None = None,
        mandatory: bool = False,
        immediate: bool = False,
    ) -> Coroutine[Any, Any, None]:
        """Serialize ``payload`` and publish it; await the result.

        Messages are persistent and carry ``content_type``, a fresh ``message_id`` and a
        ``timestamp`` unless ``properties`` says otherwise. Many calls may be in flight at once:
        they share the connection and their confirms are pipelined. If the connection is lost
        before the confirm, the message is published again once it heals (at least once: the
        consumer may see it twice, with the same ``message_id``).

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
        metrics = self._metrics
        if metrics is not None:
            return self._now_or_later(
                lambda: metrics.counted(self._publish(body, key, props, mandatory))
            )
        return self._now_or_later(lambda: self._publish(body, key, props, mandatory))

    def _routing_key(self, routing_key: str | None) -> str:
        if routing_key is not None:
            if not isinstance(routing_key, str):
                raise ConfigurationError(
                    f"{type(self).__name__}.publish_message: routing_key: expected a str, "
                    f"got {routing_key!r}"
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
        props: dict[str, Any] = {
            "content_type": self.config.serializer.content_type,
            "delivery_mode": _PERSISTENT,
            "message_id": uuid.uuid4().hex,
            "timestamp": datetime.now(UTC).replace(microsecond=0),
        }
        if properties is not None:
            if not isinstance(properties, Mapping):
                raise ConfigurationError(
                    f"{type(self).__name__}.publish_message: properties: expected a dict, "
                    f"got {properties!r}"
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
