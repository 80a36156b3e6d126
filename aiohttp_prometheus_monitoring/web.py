"""The aiohttp side: ``setup_monitoring``, its AppKeys, and the /ping and /metrics handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from ._exposition import metrics_handler
from .config import MonitoringConfig, load_config
from .errors import MonitoringError
from .registry import create_registry
from .scheduler import CheckState, Scheduler


@dataclass(frozen=True, slots=True)
class Monitoring:
    """What ``setup_monitoring`` attached to an app: its config, scheduler and registry."""

    config: MonitoringConfig
    scheduler: Scheduler
    states: tuple[CheckState, ...]
    registry: CollectorRegistry


MONITORING_KEY = web.AppKey("aiohttp_prometheus_monitoring.monitoring", Monitoring)
REGISTRY_KEY = web.AppKey("aiohttp_prometheus_monitoring.registry", CollectorRegistry)


async def setup_monitoring(config: Mapping[str, Any], app: web.Application) -> None:
    """Add health checks, ``/ping`` and ``/metrics`` to an app, as configured by ``config``.

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
    checks = [(entry, entry.create_check(), CheckState.of(entry)) for entry in settings.metrics]
    states = tuple(state for _, _, state in checks)
    registry = create_registry(states, settings.include_default_registry)
    app[MONITORING_KEY] = Monitoring(settings, Scheduler(checks), states, registry)
    app[REGISTRY_KEY] = registry
    if settings.route_ping is not None:
        app.router.add_get(settings.route_ping, ping)
    if settings.route_metrics is not None:
        app.router.add_get(settings.route_metrics, metrics_handler(registry))
    app.cleanup_ctx.append(_run_checks)


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
