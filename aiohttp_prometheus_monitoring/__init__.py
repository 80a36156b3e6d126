"""Health checks of an aiohttp service's dependencies, served as Prometheus gauges."""

from _aiohttp_booster.legacy import warn_legacy_distributions
from _aiohttp_booster.version import __version__

from ._deprecation import module_getattr
from ._legacy import PACKAGE_NAMES
from .errors import MonitoringError, WrongConfiguration
from .web import MONITORING_KEY, REGISTRY_KEY, get_monitoring, setup_monitoring

# the 2018 distributions own these packages too: say how to repair such an installation
warn_legacy_distributions()

__all__ = [
    "MONITORING_KEY",
    "REGISTRY_KEY",
    "MonitoringError",
    "WrongConfiguration",
    "__version__",
    "get_monitoring",
    "setup_monitoring",
]

# aiohttp-prometheus-monitoring 0.1.5's other names: each works with a DeprecationWarning, or
# raises an ImportError saying what replaces it (docs/migration.md)
__getattr__ = module_getattr(__name__, PACKAGE_NAMES)
