"""Request metrics: the app's own requests counted and timed by wrapping its route handlers.

The wrapping uses aiohttp's private hooks, fenced in ``_aiohttp_hooks`` (checked against the
versions they are tested with); with an aiohttp they do not fit, a public middleware counts
the same requests under the same labels, at the cost of a middleware chain per request.

Labels stay bounded: ``handler`` is the route's template (``/items/{id}``), never the raw
path, requests no route takes share one value (``unmatched``), and methods outside the
standard set are counted as ``other``. Per request the work is a dict look-up of the
(method, handler) numbers, two clock reads, a bisect and a few integer additions, with no
lock: the numbers live on the app's loop and are rendered into families at scrape time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Coroutine, Iterator
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractView
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from _aiohttp_booster.prometheus import Histogram

from . import _aiohttp_hooks
from ._aiohttp_hooks import Target
from .config import RequestMetricsConfig

__all__ = ["RequestMetrics"]

logger = logging.getLogger(__name__)

UNMATCHED = "unmatched"
OTHER_METHOD = "other"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE",
                     "CONNECT"})  # fmt: skip
CLIENT_GONE = 499  # the status counted when the client went away before the answer
REQUESTS_HELP = "HTTP requests answered, by method, route template and status."
DURATION_HELP = "Time to answer HTTP requests, by method and route template."
IN_PROGRESS_HELP = "HTTP requests being answered right now, by method and route template."

# what a route calls: a coroutine function, or a class-based view (awaitable once built)
_Target = Callable[[web.Request], Awaitable[web.StreamResponse]] | type[AbstractView]
_Wrapped = Callable[[web.Request], Coroutine[Any, Any, web.StreamResponse]]
# `le` labels written as prometheus-client writes them (it leaves this helper unannotated)


class _Series:
    """The numbers of one (method, handler): plain numbers, as everything runs on one loop."""

    __slots__ = ("by_status", "duration", "in_progress")

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.in_progress = 0
        self.duration = Histogram(buckets)
        self.by_status: dict[int, int] = {}


class RequestMetrics:
    """The three request families, kept as plain numbers and rendered at scrape time, and
    the handler wrappers that feed them.

    prometheus-client's own metrics take a lock on every update; the wrappers run on the
    app's loop only, so plain ints do, at a fraction of the cost.

    Args:
        registry: the app's own registry; the families are registered there.
        config: buckets, and whether monitoring routes count.
        excluded: route templates not to count (the monitoring routes).
    """

    def __init__(
        self, registry: CollectorRegistry, config: RequestMetricsConfig, excluded: Collection[str]
    ) -> None:
        self._bounds = config.buckets
        self._excluded = frozenset(() if config.monitoring_routes else excluded)
        self._series: dict[tuple[str, str], _Series] = {}
        self._instrumented = False  # by the hooks, or by a middleware
        registry.register(self)

    def describe(self) -> Iterator[Metric]:
        """The names we expose, so that the registry refuses a collector that clashes."""
        yield from self._families()

    def _families(self) -> tuple[CounterMetricFamily, HistogramMetricFamily, GaugeMetricFamily]:
        return (
            CounterMetricFamily("http_requests", REQUESTS_HELP,
                                labels=["method", "handler", "status"]),
            HistogramMetricFamily("http_request_duration_seconds", DURATION_HELP,
                                  labels=["method", "handler"]),
            GaugeMetricFamily("http_requests_in_progress", IN_PROGRESS_HELP,
                              labels=["method", "handler"]),
        )  # fmt: skip

    def collect(self) -> Iterator[Metric]:
        """The three families from the numbers so far."""
        requests, duration, in_progress = self._families()
        for (method, handler), series in list(self._series.items()):
            for status, count in sorted(series.by_status.items()):
                requests.add_metric([method, handler, str(status)], count)
            duration.add_metric([method, handler], series.duration.buckets(),
                                series.duration.total)  # fmt: skip
            in_progress.add_metric([method, handler], series.in_progress)
        yield from (requests, duration, in_progress)

    def install(self, app: web.Application) -> None:
        """Count the requests of ``app`` once it starts; call it before the app starts
        (``setup_monitoring`` does), while its middlewares can still change.

        With aiohttp's hooks (``_aiohttp_hooks.hooks_available()``), the app's ``on_startup``
        wraps its routes' handlers (``instrument``), and nothing else runs per request.
        Without them, a public middleware is appended to ``app.middlewares``: it counts what
        the handler (and any middleware added after it) answers, like the wrapped handlers.
        """
        if _aiohttp_hooks.hooks_available():
            app.on_startup.append(self._instrument_on_startup)
        else:
            logger.info(
                "aiohttp %s: request metrics count through a middleware, as the hooks they "
                "use are untested with this version or missing from it",
                aiohttp.__version__,
            )
            app.middlewares.append(self._middleware())
            self._instrumented = True

    async def _instrument_on_startup(self, app: web.Application) -> None:
        self.instrument(app)  # the router is frozen by now

    def instrument(self, app: web.Application) -> None:
        """Count the requests of ``app``: wrap each of its routes' handlers (its sub-apps'
        included) and, for requests no route takes, its router's resolution; call it once
        the router is frozen (the app's ``on_startup``), when no route can be added any more.
        Does nothing without aiohttp's hooks (``install`` put a middleware in instead).

        Not a middleware: aiohttp runs a chain of middlewares for every request, which cost
        a hello-world app about a fifth of its throughput; a wrapped handler costs one call.
        """
        if self._instrumented or not _aiohttp_hooks.hooks_available():
            return
        self._instrumented = True
        _aiohttp_hooks.wrap_route_handlers(app, self._counted_unless_excluded)
        _aiohttp_hooks.count_unmatched(app, self._counted, UNMATCHED)

    def _counted_unless_excluded(self, handler: Target, template: str) -> Target:
        return handler if template in self._excluded else self._counted(handler, template)

    def _middleware(self) -> Middleware:
        """The public-API way to count: the same labels and statuses as the wrapped handlers,
        at the cost of a middleware chain on every request."""
        excluded = self._excluded
        counted = self._counted

        @web.middleware
        async def request_metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
            resource = request.match_info.route.resource
            if resource is None:  # a 404 or 405 of aiohttp's
                return await counted(handler, UNMATCHED)(request)
            template = resource.canonical
            if template in excluded:
                return await handler(request)
            return await counted(handler, template)(request)

        return request_metrics

    def _counted(self, handler: _Target, template: str) -> _Wrapped:
        """``handler``, counting and timing each request under ``template``."""
        series_of = self._series
        bounds = self._bounds

        async def counted(request: web.Request) -> web.StreamResponse:
            method = request.method if request.method in METHODS else OTHER_METHOD
            series = series_of.get((method, template))
            if series is None:
                series = series_of[method, template] = _Series(bounds)
            series.in_progress += 1
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
                took = time.perf_counter() - started
                series.in_progress -= 1
                series.duration.observe(took)
                series.by_status[status] = series.by_status.get(status, 0) + 1

        return counted
