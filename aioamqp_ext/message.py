"""The message a handler may ask for: its body, data and every property, read-only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from ._amqp import Delivery

__all__ = ["RETRY_HEADER", "Message"]

#: the header carrying our retry counter (absent, or 0, on a message's first attempt)
RETRY_HEADER = "x-aioamqp-ext-retries"
_NO_HEADERS: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """One delivered message, as a handler declaring a second parameter named ``message``
    receives it: ``async def process_request(self, data, message)``.

    Attributes:
        body: the raw body.
        data: the body deserialized (what the handler's ``data`` is).
        message_id: the ``message_id`` property (deduplicate on it: delivery is at least once).
        correlation_id: the ``correlation_id`` property.
        reply_to: where the sender waits for a reply: a value the handler returns is sent there.
        headers: the message's headers (a read-only mapping).
        routing_key: the routing key it was published with (tells bindings apart).
        exchange: the exchange it was published to (``''``: the default exchange).
        queue: the queue it was consumed from.
        redelivered: the broker delivered it before (to this or another consumer).
        delivery_count: RabbitMQ's ``x-delivery-count`` (quorum queues), else None.
        retries: our retry counter: 0 on the first attempt, 1 on the first retry...
        timestamp: the ``timestamp`` property, an aware datetime (UTC), or None.
        content_type: the ``content_type`` property.
    """

    body: bytes = field(repr=False)
    data: Any = field(repr=False)
    message_id: str | None
    correlation_id: str | None = None
    reply_to: str | None = None
    headers: Mapping[str, Any] = field(default_factory=lambda: _NO_HEADERS, repr=False)
    routing_key: str = ""
    exchange: str = ""
    queue: str = ""
    redelivered: bool = False
    delivery_count: int | None = None
    retries: int = 0
    timestamp: datetime | None = None
    content_type: str | None = None

    @classmethod
    def of(cls, delivery: Delivery, data: Any, queue: str) -> Message:
        """The message of a delivery, its body deserialized into ``data``."""
        raw = delivery.raw_properties
        headers = getattr(raw, "headers", None) or {}
        count = headers.get("x-delivery-count")
        retries = headers.get(RETRY_HEADER, 0)
        return cls(
            body=delivery.body,
            data=data,
            message_id=_text(getattr(raw, "message_id", None)),
            correlation_id=_text(getattr(raw, "correlation_id", None)),
            reply_to=_text(getattr(raw, "reply_to", None)),
            headers=MappingProxyType(dict(headers)) if headers else _NO_HEADERS,
            routing_key=delivery.routing_key,
            exchange=delivery.exchange,
            queue=queue,
            redelivered=delivery.redelivered,
            delivery_count=count
            if isinstance(count, int) and not isinstance(count, bool)
            else None,
            retries=retries if isinstance(retries, int) and not isinstance(retries, bool) else 0,
            timestamp=getattr(raw, "timestamp", None),
            content_type=_text(getattr(raw, "content_type", None)),
        )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
