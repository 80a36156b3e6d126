"""Request metrics: the app's own requests counted and timed by wrapping its route handlers.

Labels stay bounded: ``handler`` is the route's template (``/items/{id}``), never the raw
path, requests no route takes share one value (``unmatched``), and methods outside the
standard set are counted as ``other``. Per request the work is a dict look-up of the
(method, handler) numbers, two clock reads, a bisect and a few integer additions, with no
lock: the numbers live on the app's loop and are rendered into families at scrape time.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Collection, Coroutine, Iterator
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractView
from aiohttp.web_urldispatcher import UrlMappingMatchInfo
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

from .config import RequestMetricsConfig

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
_go_float: Callable[[float], str] = floatToGoString


class _Series:
    """The numbers of one (method, handler): plain ints, as everything runs on one loop."""

    __slots__ = ("by_status", "counts", "in_progress", "total")

    def __init__(self, buckets: int) -> None:
        self.in_progress = 0
        self.counts = [0] * (buckets + 1)  # per bucket, not cumulative; the last one is +Inf
        self.total = 0.0  # the histogram's sum
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
        self._les = [*(_go_float(bound) for bound in self._bounds), "+Inf"]
        self._excluded = frozenset(() if config.monitoring_routes else excluded)
        self._series: dict[tuple[str, str], _Series] = {}
        self._instrumented = False
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
            cumulative = itertools.accumulate(series.counts)
            duration.add_metric(
                [method, handler], list(zip(self._les, cumulative, strict=True)), series.total
            )
            in_progress.add_metric([method, handler], series.in_progress)
        yield from (requests, duration, in_progress)

    def instrument(self, app: web.Application) -> None:
        """Count the requests of ``app``: wrap each of its routes' handlers (its sub-apps'
        included) and, for requests no route takes, its router's resolution; call it once
        the router is frozen (the app's ``on_startup``), when no route can be added any more.

        Not a middleware: aiohttp runs a chain of middlewares for every request, which cost
        a hello-world app about a fifth of its throughput; a wrapped handler costs one call.
        """
        if self._instrumented:
            return
        self._instrumented = True
        for route in app.router.routes():
            resource = route.resource
            if resource is not None and resource.canonical not in self._excluded:
                route._handler = self._counted(route._handler, resource.canonical)
        resolve = app.router.resolve

        async def resolve_counting_unmatched(request: web.Request) -> UrlMappingMatchInfo:
            match_info = await resolve(request)
            route = match_info.route
            if route.resource is None:  # a 404 or 405 of aiohttp's: a route of its own each time
                route._handler = self._counted(route._handler, UNMATCHED)
            return match_info

        app.router.resolve = resolve_counting_unmatched  # type: ignore[method-assign]

    def _counted(self, handler: _Target, template: str) -> _Wrapped:
        """``handler``, counting and timing each request under ``template``."""
        series_of = self._series
        bounds = self._bounds

        async def counted(request: web.Request) -> web.StreamResponse:
            method = request.method if request.method in METHODS else OTHER_METHOD
            series = series_of.get((method, template))
            if series is None:
                series = series_of[method, template] = _Series(len(bounds))
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
                series.counts[bisect_left(bounds, took)] += 1  # `le`: bound >= took
                series.total += took
                series.by_status[status] = series.by_status.get(status, 0) + 1

        return counted
