"""Prometheus metrics of producers and consumers, kept as plain numbers and rendered at scrape time.

A consumer or producer given a registry (``registry=`` or :func:`attach_metrics`) records
each outcome with a few integer additions on its own loop: no prometheus-client child
look-up and no lock per message. One collector per registry renders every client attached
to it:

- ``amqp_messages_consumed_total{queue,result}``: settled messages, ``result`` one of
  ``ack``, ``dead_letter`` (rejected: it goes to the dead-letter exchange) or ``retry``
  (republished for another attempt);
- ``amqp_message_handling_seconds{queue}``: time from delivery to settlement (histogram);
- ``amqp_messages_in_flight{queue}``: handlers running now;
- ``amqp_handler_timeouts_total{queue}``: handlers cancelled at ``handler_timeout`` (their
  messages also count as ``retry`` or ``dead_letter``);
- ``amqp_queue_messages{queue}`` and ``amqp_queue_consumers{queue}``: the messages ready in
  the consumer's queue and the consumers it has (all processes'), as the broker answered the
  consumer's last passive declare (every ``queue_depth_interval`` seconds, on a channel of its
  own); absent until the first answer and after a round that failed;
- ``amqp_messages_published_total{exchange,result}``: publishes, ``result`` one of
  ``confirmed``, ``nacked``, ``returned`` (unroutable) or ``failed`` (timeout, lost
  connection, closed);
- ``amqp_connection_up``: 1 while every open client of the registry is connected;
- ``amqp_reconnects_total``: connections healed, over all clients of the registry.

This module imports prometheus-client; the rest of the package only imports it when
metrics are asked for.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Coroutine, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from _aiohttp_booster.prometheus import Histogram

from .errors import PublishNackedError, UnroutableError

if TYPE_CHECKING:
    from .base import BaseAmqp

__all__ = [
    "CONSUMED_RESULTS",
    "DEFAULT_BUCKETS",
    "PUBLISHED_RESULTS",
    "ConsumerMetrics",
    "ProducerMetrics",
    "attach_metrics",
]

#: The ``result`` label values of ``amqp_messages_consumed_total``.
CONSUMED_RESULTS = ("ack", "dead_letter", "retry")
#: The ``result`` label values of ``amqp_messages_published_total``.
PUBLISHED_RESULTS = ("confirmed", "nacked", "returned", "failed")
#: handling-time buckets in seconds, from a fast in-memory handler to a slow external call
DEFAULT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0, 30.0)  # fmt: skip

_CONFIRMED, _NACKED, _RETURNED, _FAILED = range(4)


class _ClientMetrics:
    """What every client records; the client itself is held weakly."""

    __slots__ = ("_client",)

    def __init__(self, client: BaseAmqp) -> None:
        self._client = weakref.ref(client)

    @property
    def client(self) -> BaseAmqp | None:
        """The client, or None once it was garbage-collected."""
        return self._client()


class ConsumerMetrics(_ClientMetrics):
    """The numbers of one consumer's queue: settled messages by result and handling times."""

    __slots__ = ("counts", "depth", "handling", "queue", "timeouts")

    def __init__(self, client: BaseAmqp, queue: str, bounds: Sequence[float]) -> None:
        super().__init__(client)
        self.queue = queue
        self.counts = [0, 0, 0]  # ack, dead_letter, retry
        self.handling = Histogram(bounds)
        self.timeouts = 0  # handlers cancelled at handler_timeout
        #: the queue's (ready messages, consumers, ``time.monotonic()`` when read), or None
        self.depth: tuple[int, int, float] | None = None

    async def timed(self, handling: Coroutine[Any, Any, None]) -> None:
        """Await ``handling`` (one message, delivery to settlement) and record how long it took."""
        started = time.perf_counter()
        try:
            await handling
        finally:
            self.handling.observe(time.perf_counter() - started)

    @property
    def in_flight(self) -> int:
        """Handlers of the consumer running now."""
        client = self.client
        return 0 if client is None else int(getattr(client, "in_flight", 0))


class ProducerMetrics(_ClientMetrics):
    """The numbers of one producer: publishes by result."""

    __slots__ = ("counts", "exchange")

    def __init__(self, client: BaseAmqp, exchange: str) -> None:
        super().__init__(client)
        self.exchange = exchange
        self.counts = [0, 0, 0, 0]  # confirmed, nacked, returned, failed

    async def counted(self, publishing: Coroutine[Any, Any, None]) -> None:
        """Await ``publishing`` (one publish, until its confirm) and count its result."""
        try:
            await publishing
        except PublishNackedError:
            self.counts[_NACKED] += 1
            raise
        except UnroutableError:
            self.counts[_RETURNED] += 1
            raise
        except BaseException:
            self.counts[_FAILED] += 1
            raise
        self.counts[_CONFIRMED] += 1


class AmqpCollector:
    """Renders the ``amqp_*`` families of every client attached to one registry."""

    def __init__(self) -> None:
        self.consumers: list[ConsumerMetrics] = []
        self.producers: list[ProducerMetrics] = []
        self.clients: weakref.WeakSet[BaseAmqp] = weakref.WeakSet()

    def describe(self) -> Iterator[Metric]:
        """The names we expose, so that the registry refuses a collector that clashes."""
        yield from self._families()

    @staticmethod
    def _families() -> tuple[
        CounterMetricFamily,
        HistogramMetricFamily,
        GaugeMetricFamily,
        CounterMetricFamily,
        GaugeMetricFamily,
        CounterMetricFamily,
        CounterMetricFamily,
        GaugeMetricFamily,
        GaugeMetricFamily,
    ]:
        return (
            CounterMetricFamily("amqp_messages_consumed", "Messages a consumer settled, by "
                                "queue and result (ack, dead_letter, retry).",
                                labels=["queue", "result"]),
            HistogramMetricFamily("amqp_message_handling_seconds", "Time from the delivery "
                                  "of a message to its settlement, by queue.", labels=["queue"]),
            GaugeMetricFamily("amqp_messages_in_flight", "Messages being handled right now, "
                              "by queue.", labels=["queue"]),
            CounterMetricFamily("amqp_messages_published", "Messages a producer published, by "
                                "exchange and result (confirmed, nacked, returned, failed).",
                                labels=["exchange", "result"]),
            GaugeMetricFamily("amqp_connection_up", "Whether every open AMQP client of this "
                              "process is connected to a broker (1) or not (0)."),
            CounterMetricFamily("amqp_reconnects", "AMQP connections healed after a loss."),
            CounterMetricFamily("amqp_handler_timeouts", "Handlers cancelled at "
                                "handler_timeout, by queue.", labels=["queue"]),
            GaugeMetricFamily("amqp_queue_messages", "Messages ready in the queue, as the "
                              "broker last answered the consumer's passive declare.",
                              labels=["queue"]),
            GaugeMetricFamily("amqp_queue_consumers", "Consumers of the queue (every "
                              "process's), as the broker last answered the consumer's "
                              "passive declare.", labels=["queue"]),
        )  # fmt: skip

    def collect(self) -> Iterator[Metric]:
        """The families from the numbers so far (several clients of a queue are summed)."""
        (consumed, handling, in_flight, published, up, reconnects, timeouts, messages,
         consumers) = self._families()  # fmt: skip
        by_queue: dict[str, tuple[list[int], Histogram, list[int]]] = {}
        depths: dict[str, tuple[int, int, float]] = {}  # the latest answer per queue
        for series in list(self.consumers):
            depth = series.depth
            if depth is not None and (series.queue not in depths or
                                      depth[2] > depths[series.queue][2]):  # fmt: skip
                depths[series.queue] = depth
            counts, handled, running = by_queue.setdefault(
                series.queue, ([0] * 3, Histogram(series.handling.bounds), [0, 0])
            )
            for index, value in enumerate(series.counts):
                counts[index] += value
            handled.add(series.handling)
            running[0] += series.in_flight
            running[1] += series.timeouts
        for queue, (counts, handled, running) in by_queue.items():
            for result, value in zip(CONSUMED_RESULTS, counts, strict=True):
                consumed.add_metric([queue, result], value)
            handling.add_metric([queue], handled.buckets(), handled.total)
            in_flight.add_metric([queue], running[0])
            timeouts.add_metric([queue], running[1])
        for queue, (ready, consuming, _) in depths.items():
            messages.add_metric([queue], ready)
            consumers.add_metric([queue], consuming)
        by_exchange: dict[str, list[int]] = {}
        for pub in list(self.producers):
            counts = by_exchange.setdefault(pub.exchange, [0] * 4)
            for index, value in enumerate(pub.counts):
                counts[index] += value
        for exchange, counts in by_exchange.items():
            for result, value in zip(PUBLISHED_RESULTS, counts, strict=True):
                published.add_metric([exchange, result], value)
        clients = list(self.clients)
        open_clients = [client for client in clients if not client.closed]
        connected = bool(open_clients) and all(client.is_connected for client in open_clients)
        up.add_metric([], float(connected))
        reconnects.add_metric([], sum(client.reconnects for client in clients))
        yield from (consumed, handling, in_flight, published, up, reconnects, timeouts,
                    messages, consumers)  # fmt: skip


_collectors: weakref.WeakKeyDictionary[CollectorRegistry, AmqpCollector] = (
    weakref.WeakKeyDictionary()
)


def _collector_of(registry: CollectorRegistry) -> AmqpCollector:
    collector = _collectors.get(registry)
    if collector is None:
        collector = _collectors[registry] = AmqpCollector()
        registry.register(collector)
    return collector


def attach_metrics(
    client: BaseAmqp,
    registry: CollectorRegistry,
    *,
    buckets: Sequence[float] = DEFAULT_BUCKETS,
) -> ConsumerMetrics | ProducerMetrics | None:
    """Record ``client``'s metrics in ``registry`` (the ``amqp_*`` families); idempotent.

    Several clients may share a registry: their numbers are summed per queue or exchange.
    A client attached to several registries is shown in each.

    Args:
        client: a :class:`~aioamqp_ext.BaseConsumer` or :class:`~aioamqp_ext.BaseProducer`.
        registry: where the families are rendered (e.g. the monitoring app's registry).
        buckets: upper bounds of the handling-time histogram, in seconds.

    Returns:
        What the client records into (None for a client that is neither).
    """
    from .consumer import BaseConsumer
    from .producer import BaseProducer

    collector = _collector_of(registry)
    if client in collector.clients:
        return client._metrics
    collector.clients.add(client)
    metrics = client._metrics  # a client in two registries records once, shown in both
    if isinstance(client, BaseConsumer):
        if not isinstance(metrics, ConsumerMetrics):
            metrics = ConsumerMetrics(client, client.config.queue, sorted(buckets))
        collector.consumers.append(metrics)
    elif isinstance(client, BaseProducer):
        if not isinstance(metrics, ProducerMetrics):
            metrics = ProducerMetrics(client, client.config.exchange)
        collector.producers.append(metrics)
    client._metrics = metrics
    return metrics
