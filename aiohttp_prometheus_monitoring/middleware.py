"""Request metrics: an aiohttp middleware counting and timing the app's own requests.

Labels stay bounded: ``handler`` is the route's template (``/items/{id}``), never the raw
path, requests no route takes share one value (``unmatched``), and methods outside the
standard set are counted as ``other``. Per request the work is a dict look-up, a clock
read and three metric updates: label children are cached per (method, handler).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection
from typing import NamedTuple

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .config import RequestMetricsConfig

UNMATCHED = "unmatched"
OTHER_METHOD = "other"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE",
                     "CONNECT"})  # fmt: skip
CLIENT_GONE = 499  # the status counted when the client went away before the answer


class _Children(NamedTuple):
    """The label children of one (method, handler), and its counters by status."""

    duration: Histogram
    in_progress: Gauge
    by_status: dict[int, Counter]


class RequestMetrics:
    """The three request families in ``registry``, and the middleware that feeds them.

    Args:
        registry: the app's own registry.
        config: buckets, and whether monitoring routes count.
        excluded: route templates not to count (the monitoring routes).
    """

    def __init__(
        self, registry: CollectorRegistry, config: RequestMetricsConfig, excluded: Collection[str]
    ) -> None:
        self.requests = Counter(
            "http_requests", "HTTP requests answered, by method, route template and status.",
            ["method", "handler", "status"], registry=registry,
        )  # fmt: skip
        self.duration = Histogram(
            "http_request_duration_seconds", "Time to answer HTTP requests, by route template.",
            ["method", "handler"], buckets=config.buckets, registry=registry,
        )  # fmt: skip
        self.in_progress = Gauge(
            "http_requests_in_progress", "HTTP requests being answered right now.",
            ["method", "handler"], registry=registry,
        )  # fmt: skip
        self._excluded = frozenset(() if config.monitoring_routes else excluded)
        self._children: dict[tuple[str, str], _Children] = {}

    def _children_of(self, method: str, handler: str) -> _Children:
        children = self._children.get((method, handler))
        if children is None:
            children = _Children(
                self.duration.labels(method, handler), self.in_progress.labels(method, handler), {}
            )
            self._children[method, handler] = children
        return children

    def _count(self, children: _Children, method: str, handler: str, status: int) -> None:
        counter = children.by_status.get(status)
        if counter is None:
            counter = children.by_status[status] = self.requests.labels(method, handler, status)
        counter.inc()

    @property
    def middleware(self) -> Middleware:
        """The middleware; put it first in ``app.middlewares`` so it sees the final status."""

        @web.middleware
        async def request_metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
            resource = request.match_info.route.resource
            template = UNMATCHED if resource is None else resource.canonical
            if template in self._excluded:
                return await handler(request)
            method = request.method if request.method in METHODS else OTHER_METHOD
            children = self._children_of(method, template)
            children.in_progress.inc()
            started = time.perf_counter()
            status = 500  # whatever the handler raises, bar an HTTP answer, is a 500
            try:
                response = await handler(request)
                status = response.status
                return response
            except web.HTTPException as exc:
                status = exc.status
                raise
            except asyncio.CancelledError:
                status = CLIENT_GONE
                raise
            finally:
                children.duration.observe(time.perf_counter() - started)
                children.in_progress.dec()
                self._count(children, method, template, status)

        return request_metrics
