"""The /metrics handler: prometheus-client's own aiohttp handler, or a stand-in for releases
that predate ``prometheus_client.aiohttp`` (0.23 and older still satisfy our requirement)."""

from __future__ import annotations

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder


def metrics_handler(registry: CollectorRegistry) -> Handler:
    """A handler serving ``registry`` as text or OpenMetrics, as the scraper's Accept asks."""
    try:
        from prometheus_client.aiohttp import make_aiohttp_handler
    except ImportError:  # pragma: no cover - exercised only with prometheus-client < 0.24
        return _negotiating_handler(registry)
    return make_aiohttp_handler(registry)


def _negotiating_handler(registry: CollectorRegistry) -> Handler:
    async def metrics(request: web.Request) -> web.Response:
        accept = ",".join(request.headers.getall(hdrs.ACCEPT, []))
        encoder, content_type = choose_encoder(accept)
        return web.Response(body=encoder(registry), headers={"Content-Type": content_type})

    return metrics
