"""OpenTelemetry tracing of publishes and handler runs (the ``otel`` extra).

A producer's publish is a PRODUCER span whose context goes into the message's headers
(W3C ``traceparent``/``tracestate``, through the global propagator); a consumer's handler run
is a CONSUMER span, child of the context its message carries, named and attributed by the
OpenTelemetry messaging conventions. Tracing is on when opentelemetry-api is installed and a
tracer provider is set (given as ``tracer_provider=``, or the global one), unless
``tracing=False``; otherwise :func:`tracing_for` returns None and the hot paths do nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import TYPE_CHECKING, Any

from _aiohttp_booster.version import __version__

from .message import RETRY_HEADER

try:
    from opentelemetry import propagate, trace
    from opentelemetry.propagators.textmap import Getter
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError:  # the otel extra is not installed: no tracing
    trace = None  # type: ignore[assignment]
    Getter = object  # type: ignore[assignment,misc]

if TYPE_CHECKING:
    from ._amqp import Delivery

__all__ = ["Tracing", "failed", "tracing_for"]

_SYSTEM = "rabbitmq"
_DEFAULT_EXCHANGE = "amq.default"  # how a span names the default exchange ''


class _Headers(Getter):  # type: ignore[type-arg]
    """Reads a context out of AMQP headers (values may arrive as bytes)."""

    def get(self, carrier: Mapping[str, Any], key: str) -> list[str] | None:
        value = carrier.get(key)
        if value is None:
            return None
        if isinstance(value, bytes | bytearray):
            value = bytes(value).decode("utf-8", "replace")
        return [str(value)]

    def keys(self, carrier: Mapping[str, Any]) -> list[str]:
        return list(carrier)


_GETTER = _Headers()


class Tracing:
    """Spans of one producer or consumer, from ``tracer``."""

    def __init__(self, tracer: Any) -> None:
        self.tracer = tracer

    async def publishing(
        self,
        publish: Awaitable[None],
        exchange: str,
        routing_key: str,
        properties: dict[str, Any],
    ) -> None:
        """Await ``publish`` in a PRODUCER span, its context added to ``properties``'
        headers first (the publish reads them when it runs)."""
        attributes: dict[str, Any] = {
            "messaging.system": _SYSTEM,
            "messaging.operation.type": "send",
            "messaging.operation.name": "publish",
            "messaging.destination.name": exchange,
            "messaging.message.id": str(properties.get("message_id", "")),
        }
        if routing_key:
            attributes["messaging.rabbitmq.destination.routing_key"] = routing_key
        if properties.get("correlation_id") is not None:
            attributes["messaging.message.conversation_id"] = str(properties["correlation_id"])
        name = f"publish {exchange or _DEFAULT_EXCHANGE}"
        with self.tracer.start_as_current_span(name, kind=SpanKind.PRODUCER,
                                               attributes=attributes):  # fmt: skip
            headers = dict(properties.get("headers") or {})
            propagate.inject(headers)
            properties["headers"] = headers
            await publish

    async def consuming(self, handling: Awaitable[None], delivery: Delivery, queue: str) -> None:
        """Await ``handling`` (a message's whole handling, settled) in a CONSUMER span, child
        of the context the message carries; :func:`failed` marks it failed."""
        headers = delivery.headers
        retries = headers.get(RETRY_HEADER, 0)
        attributes: dict[str, Any] = {
            "messaging.system": _SYSTEM,
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.destination.name": delivery.exchange,
            "messaging.destination.subscription.name": queue,
            "messaging.rabbitmq.message.delivery_tag": delivery.delivery_tag,
            "aioamqp_ext.message.retries": retries if type(retries) is int else 0,
        }
        if delivery.routing_key:
            attributes["messaging.rabbitmq.destination.routing_key"] = delivery.routing_key
        if delivery.message_id is not None:
            attributes["messaging.message.id"] = delivery.message_id
        if delivery.correlation_id is not None:
            attributes["messaging.message.conversation_id"] = delivery.correlation_id
        parent = propagate.extract(headers, getter=_GETTER)
        with self.tracer.start_as_current_span(
            f"process {queue}", context=parent, kind=SpanKind.CONSUMER, attributes=attributes,
            record_exception=False, set_status_on_exception=False,
        ):  # fmt: skip
            await handling


def failed(error: BaseException) -> None:
    """Mark the current span (a handler run's) failed with ``error``."""
    span = trace.get_current_span()
    span.set_attribute("error.type", type(error).__qualname__)
    span.record_exception(error)
    span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"[:200]))


def tracing_for(enabled: bool, provider: Any) -> Tracing | None:
    """The tracing of a client, or None (tracing off: nothing to do on any path).

    Args:
        enabled: False turns tracing off whatever is installed or set.
        provider: a tracer provider given to the client; None: the global one, if one was
            set (``opentelemetry.trace.set_tracer_provider``).
    """
    if not enabled or trace is None:
        return None
    if provider is None:
        provider = trace.get_tracer_provider()
        if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
            return None  # none set: spans would be dropped anyway
    return Tracing(provider.get_tracer("aioamqp_ext", __version__))
