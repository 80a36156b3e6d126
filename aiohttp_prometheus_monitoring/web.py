"""The aiohttp side: ``setup_monitoring``, its AppKeys, and the monitoring routes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CollectorRegistry

from ._exposition import metrics_handler
from .config import MonitoringConfig, load_config
from .errors import MonitoringError
from .pushgateway import pushing
from .readiness import ready_handler
from .registry import create_registry
from .request_metrics import RequestMetrics
from .scheduler import CheckState, Scheduler

__all__ = ["MONITORING_KEY", "REGISTRY_KEY", "Monitoring", "get_monitoring", "setup_monitoring"]


@dataclass(frozen=True, slots=True)
class Monitoring:
    """What ``setup_monitoring`` attached to an app: its config, scheduler and registry."""

    config: MonitoringConfig
    scheduler: Scheduler
    states: tuple[CheckState, ...]
    registry: CollectorRegistry
    request_metrics: RequestMetrics | None = None


#: The key of the app's :class:`Monitoring` (``app[MONITORING_KEY]``), set by
#: :func:`setup_monitoring`.
MONITORING_KEY = web.AppKey("aiohttp_prometheus_monitoring.monitoring", Monitoring)
#: The key of the app's own Prometheus registry (``app[REGISTRY_KEY]``), which ``/metrics``
#: serves.
REGISTRY_KEY = web.AppKey("aiohttp_prometheus_monitoring.registry", CollectorRegistry)


async def setup_monitoring(config: Mapping[str, Any], app: web.Application) -> None:
    """Add health checks, ``/ping``, ``/metrics`` and, when configured, a readiness route
    and request metrics to an app, as ``config`` says.

    The checks start when the app starts, on the app's own loop, and stop when it shuts
    down, whichever loop ran this coroutine. The app's registry is ``app[REGISTRY_KEY]``.

    Args:
        config: the MONITORING dict; it is validated whole and never changed.
        app: the application, before it starts.

    Raises:
        WrongConfiguration: the config has problems; the message lists all of them.
        MonitoringError: monitoring is already set up on this app, or the app has started.
    """
    if MONITORING_KEY in app:
        raise MonitoringError("setup_monitoring() was already called for this app")
    if app.frozen:
        raise MonitoringError("setup_monitoring() must be called before the app starts")
    settings = load_config(config)
    checks = [(entry, entry.check, CheckState.of(entry)) for entry in settings.metrics]
    states = tuple(state for _, _, state in checks)
    registry = create_registry(
        states, settings.include_default_registry, settings.request_metrics is not None
    )
    request_metrics = None
    if settings.request_metrics is not None:
        routes = (settings.route_ping, settings.route_metrics, settings.route_ready)
        excluded = [route for route in routes if route is not None]
        request_metrics = RequestMetrics(registry, settings.request_metrics, excluded)
        request_metrics.install(app)  # before the app freezes: a middleware may be needed
    app[MONITORING_KEY] = Monitoring(settings, Scheduler(checks), states, registry, request_metrics)
    app[REGISTRY_KEY] = registry
    guard = settings.auth.protect if settings.auth is not None else _open
    if settings.route_ping is not None:
        app.router.add_get(settings.route_ping, ping)  # liveness stays open: it tells nothing
    if settings.route_metrics is not None:
        app.router.add_get(settings.route_metrics, guard(metrics_handler(registry, states)))
    if settings.route_ready is not None:
        app.router.add_get(settings.route_ready, guard(ready_handler(states)))
    app.cleanup_ctx.append(_run_checks)
    if settings.pushgateway is not None:
        app.cleanup_ctx.append(pushing(settings.pushgateway, registry))


def _open(handler: Handler) -> Handler:
    return handler


def get_monitoring(app: web.Application) -> Monitoring:
    """The monitoring of ``app``.

    Raises:
        MonitoringError: ``setup_monitoring(config, app)`` was not called first.
    """
    try:
        return app[MONITORING_KEY]
    except KeyError:
        raise MonitoringError("no monitoring on this app: call setup_monitoring() first") from None


async def _run_checks(app: web.Application) -> AsyncIterator[None]:
    scheduler = app[MONITORING_KEY].scheduler
    scheduler.start()
    try:
        yield
    finally:
        await scheduler.close()


async def ping(request: web.Request) -> web.Response:
    """Liveness: answers ``pong`` while the app serves requests."""
    return web.Response(text="pong")
