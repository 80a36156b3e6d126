"""A received message, in plain typed values (what the transport hands the consumer)."""

from __future__ import annotations

from typing import Any


class Delivery:
    """A message received by a consumer, in plain Python values.

    Its properties are copied out of the transport's properties object only when first
    asked for: the hot path of a consumer reads just the content type.
    """

    __slots__ = ("_properties", "_raw", "body", "delivery_tag", "exchange", "redelivered",
                 "routing_key")  # fmt: skip

    def __init__(
        self,
        body: bytes,
        delivery_tag: int,
        exchange: str,
        routing_key: str,
        redelivered: bool,
        raw_properties: Any,
    ) -> None:
        self.body = body
        self.delivery_tag = delivery_tag
        self.exchange = exchange
        self.routing_key = routing_key
        self.redelivered = redelivered
        self._raw = raw_properties  # an object with one slot per AMQP property, or None
        self._properties: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return (
            f"<Delivery tag={self.delivery_tag} exchange={self.exchange!r} "
            f"routing_key={self.routing_key!r} redelivered={self.redelivered}>"
        )

    @property
    def properties(self) -> dict[str, Any]:
        """The message's AMQP properties that are set (a dict of their own, built once)."""
        if self._properties is None:
            raw = self._raw
            names = getattr(raw, "__slots__", ())
            self._properties = {
                name: value for name in names if (value := getattr(raw, name)) is not None
            }
        return self._properties

    @property
    def raw_properties(self) -> Any:
        """The transport's properties object (one attribute per AMQP property), as received."""
        return self._raw

    @property
    def reply_to(self) -> str | None:
        """The message's ``reply_to`` property, if any."""
        value = getattr(self._raw, "reply_to", None)
        return None if value is None else str(value)

    @property
    def correlation_id(self) -> str | None:
        """The message's ``correlation_id`` property, if any."""
        value = getattr(self._raw, "correlation_id", None)
        return None if value is None else str(value)

    @property
    def message_id(self) -> str | None:
        """The message's ``message_id`` property, if any."""
        value = getattr(self._raw, "message_id", None)
        return None if value is None else str(value)

    @property
    def content_type(self) -> str | None:
        """The message's ``content_type`` property, if any."""
        value = getattr(self._raw, "content_type", None)
        return None if value is None else str(value)

    @property
    def headers(self) -> dict[str, Any]:
        """The message's headers (empty when it has none)."""
        return dict(getattr(self._raw, "headers", None) or {})
