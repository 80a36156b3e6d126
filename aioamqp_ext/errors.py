"""The exceptions of aioamqp_ext: one root, :class:`AmqpExtError`, and a type per failure.

Messages name the broker URL with its password masked (``amqp://guest:***@host/``).
"""

from __future__ import annotations

__all__ = [
    "AmqpConnectionError",
    "AmqpExtError",
    "AmqpTimeoutError",
    "ClosedError",
    "ConfigurationError",
    "DeserializationError",
    "HandlerTimeoutError",
    "PublishError",
    "PublishNackedError",
    "PublishTimeoutError",
    "SerializationError",
    "TopologyError",
    "UnroutableError",
]


class AmqpExtError(Exception):
    """Root of every error raised by aioamqp_ext."""


class ConfigurationError(AmqpExtError, ValueError):
    """A constructor or call argument is invalid; raised before any network traffic.

    The message reads ``<where>: <argument>: <problem>, got <value>``.
    """


class SerializationError(AmqpExtError, ValueError):
    """A payload could not be serialized for publishing."""


class DeserializationError(AmqpExtError, ValueError):
    """A message body could not be deserialized (a poison message)."""


class AmqpConnectionError(AmqpExtError):
    """The broker could not be reached, or the connection or channel was lost."""


class AmqpTimeoutError(AmqpConnectionError, TimeoutError):
    """A network operation did not finish within its timeout."""


class TopologyError(AmqpExtError):
    """Declaring (or, with ``passive=True``, checking) an exchange, queue or binding failed."""


class ClosedError(AmqpExtError):
    """The producer or consumer was used after ``close()``."""


class PublishError(AmqpExtError):
    """A message was not confirmed by the broker; it may not have been stored."""


class PublishNackedError(PublishError):
    """The broker answered a publish with a negative acknowledgement (basic.nack)."""


class UnroutableError(PublishError):
    """A ``mandatory=True`` message matched no queue and was returned by the broker.

    Attributes:
        reply_code: the broker's reply code (312 NO_ROUTE).
        reply_text: the broker's reply text.
        exchange: the exchange the message was published to.
        routing_key: the routing key it was published with.
    """

    def __init__(
        self, message: str, *, reply_code: int, reply_text: str, exchange: str, routing_key: str
    ) -> None:
        super().__init__(message)
        self.reply_code = reply_code
        self.reply_text = reply_text
        self.exchange = exchange
        self.routing_key = routing_key


class PublishTimeoutError(PublishError, TimeoutError):
    """The broker did not confirm a publish within ``publish_timeout``."""


class HandlerTimeoutError(AmqpExtError, TimeoutError):
    """A consumer's handler ran past ``handler_timeout`` and was cancelled (the message counts
    as failed: retried or dead-lettered)."""
