"""Health checks of an aiohttp service's dependencies, served as Prometheus gauges."""

from _aiohttp_booster.version import __version__

from .errors import MonitoringError, WrongConfiguration
from .web import MONITORING_KEY, REGISTRY_KEY, get_monitoring, setup_monitoring

__all__ = [
    "MONITORING_KEY",
    "REGISTRY_KEY",
    "MonitoringError",
    "WrongConfiguration",
    "__version__",
    "get_monitoring",
    "setup_monitoring",
]
