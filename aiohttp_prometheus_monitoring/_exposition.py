"""The /metrics handler: prometheus-client's own aiohttp handler, which negotiates between the
text format and OpenMetrics from the scraper's Accept header (and gzips when asked)."""

from __future__ import annotations

from aiohttp.typedefs import Handler
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler


def metrics_handler(registry: CollectorRegistry) -> Handler:
    """A handler serving ``registry`` as text or OpenMetrics, as the scraper's Accept asks."""
    return make_aiohttp_handler(registry)
