"""A received message, in plain typed values (what the transport hands the consumer)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """A message received by a consumer, in plain Python values."""

    body: bytes = field(repr=False)
    delivery_tag: int
    exchange: str
    routing_key: str
    redelivered: bool
    properties: dict[str, Any] = field(repr=False)

    @property
    def message_id(self) -> str | None:
        """The message's ``message_id`` property, if any."""
        value = self.properties.get("message_id")
        return None if value is None else str(value)

    @property
    def content_type(self) -> str | None:
        """The message's ``content_type`` property, if any."""
        value = self.properties.get("content_type")
        return None if value is None else str(value)

    @property
    def headers(self) -> dict[str, Any]:
        """The message's headers (empty when it has none)."""
        return dict(self.properties.get("headers") or {})
