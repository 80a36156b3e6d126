"""The names of aiohttp-prometheus-monitoring 0.1.5, and what each resolves to now.

``docs/migration.md`` has the table and the reasons. The package, and its deprecated modules
``exceptions``, ``utils`` and ``views``, look their 0.1.5 names up here through
:func:`~aiohttp_prometheus_monitoring._deprecation.module_getattr`.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

import prometheus_client
from aiohttp import web

from ._deprecation import Legacy, Removed, Renamed
from .errors import MonitoringError, WrongConfiguration
from .web import get_monitoring, ping

__all__ = [
    "EXCEPTIONS_NAMES", "PACKAGE_NAMES", "UTILS_NAMES", "VIEWS_NAMES", "import_by_path",
    "stop_monitoring_tasks",
]  # fmt: skip

PACKAGE = "aiohttp_prometheus_monitoring"


def import_by_path(dotted_path: str) -> Any:
    """The object at ``package.module.name``, as 0.1.5 imported a check class.

    Raises:
        WrongConfiguration: not a dotted path, a module that does not import, or no such
            name in it (0.1.5's three messages).
    """
    module_path, _, name = dotted_path.rpartition(".")
    if not module_path:
        raise WrongConfiguration([f"{dotted_path} doesn't look like a module path"])
    try:
        module = importlib.import_module(module_path)
    except ImportError as exc:
        raise WrongConfiguration([f"Error importing module {module_path}: {exc}"]) from exc
    try:
        return getattr(module, name)
    except AttributeError:
        raise WrongConfiguration([f'Module "{module_path}" has no "{name}" object']) from None


async def stop_monitoring_tasks(app: web.Application) -> None:
    """Stop the checks of ``app`` now (0.1.5's ``on_shutdown`` handler). They stop by
    themselves when the app is cleaned up; calling this earlier is harmless, and so is
    calling it twice."""
    await get_monitoring(app).scheduler.close()


_PUSH = (
    "MONITORING['pushgateway'] = {'url': url, 'job': job_name, 'grouping_key': grouping_key} "
    "pushes the app's registry, the checks' gauges included, every 'interval' seconds and "
    "at shutdown. The checks' gauges are no longer in prometheus_client's default registry, "
    "which this pushed; to push that registry alone, call prometheus_client.push_to_gateway("
    "url, job=job_name, registry=prometheus_client.REGISTRY), which blocks (asyncio.to_thread)"
)
_PERIODIC_PUSH = _PUSH.replace("grouping_key}", "grouping_key, 'interval': sleep_time}")
_PERIODIC_TASK = (
    "setup_monitoring(MONITORING, app) runs each check every 'sleep_time' seconds under its "
    "'timeout', from the app's start to its cleanup"
)
_RESOLVE_NAME = "use pkgutil.resolve_name() (it raises ImportError or AttributeError)"

#: the names of 0.1.5's ``aiohttp_prometheus_monitoring`` (beside ``setup_monitoring`` and
#: ``WrongConfiguration``, which the package still has)
PACKAGE_NAMES: dict[str, Legacy] = {
    "import_by_path": Renamed(lambda: import_by_path, _RESOLVE_NAME),
    "stop_monitoring_tasks": Renamed(
        lambda: stop_monitoring_tasks,
        "nothing needs calling, the checks stop when the app is cleaned up (await "
        "get_monitoring(app).scheduler.close() stops them earlier)",
    ),
    "ping": Renamed(
        lambda: ping,
        "use MONITORING['route_ping'] (setup_monitoring() adds the route, '/ping' by default)",
    ),
    "logger": Renamed(lambda: logging.getLogger(PACKAGE), f"use logging.getLogger({PACKAGE!r})"),
    "init_metrics": Removed(
        "setup_monitoring(MONITORING, app) builds the checks and runs them while the app "
        "runs; get_monitoring(app).scheduler holds them"
    ),
    "init_monitoring_routes": Removed(
        "setup_monitoring(MONITORING, app) adds the routes MONITORING's 'route_ping', "
        "'route_metrics' and 'route_ready' name"
    ),
    "push_metrics": Removed(_PUSH),
    "coro": Removed(_PUSH),
    "periodic_push_metrics": Removed(_PERIODIC_PUSH),
    "periodic_coro": Removed(_PERIODIC_PUSH),
    "PeriodicTask": Removed(_PERIODIC_TASK),
    # what 0.1.5's __init__ imported from prometheus_client and prometheus_async
    "Gauge": Renamed(lambda: prometheus_client.Gauge, "use prometheus_client.Gauge"),
    "push_to_gateway": Renamed(
        lambda: prometheus_client.push_to_gateway, "use prometheus_client.push_to_gateway"
    ),
    "REGISTRY": Renamed(
        lambda: prometheus_client.REGISTRY,
        "use prometheus_client.REGISTRY (the checks' gauges are in the app's own registry, "
        "app[aiohttp_prometheus_monitoring.REGISTRY_KEY], not there)",
    ),
    "server_stats": Removed(
        "setup_monitoring() serves the app's registry at MONITORING['route_metrics'] "
        "('/metrics' by default); prometheus-async is not a dependency any more"
    ),
}

#: 0.1.5's ``aiohttp_prometheus_monitoring.exceptions``
EXCEPTIONS_NAMES: dict[str, Legacy] = {
    "MonitoringException": Renamed(lambda: MonitoringError, f"use {PACKAGE}.MonitoringError"),
    "WrongConfiguration": Renamed(lambda: WrongConfiguration, f"use {PACKAGE}.WrongConfiguration"),
}

#: 0.1.5's ``aiohttp_prometheus_monitoring.utils`` held ``PeriodicTask``; the functions the
#: package itself had are resolved here too, where they have been looked for
UTILS_NAMES: dict[str, Legacy] = {
    name: PACKAGE_NAMES[name]
    for name in ("PeriodicTask", "import_by_path", "push_metrics", "periodic_push_metrics")
}

#: 0.1.5's ``aiohttp_prometheus_monitoring.views``
VIEWS_NAMES: dict[str, Legacy] = {"ping": PACKAGE_NAMES["ping"]}
