"""Deprecated: the exceptions module of aiohttp-prometheus-monitoring 0.1.5.

``MonitoringException`` is :class:`aiohttp_prometheus_monitoring.MonitoringError` and
``WrongConfiguration`` is :class:`aiohttp_prometheus_monitoring.WrongConfiguration`; reading
either here emits a ``DeprecationWarning`` naming that spelling.
"""

from ._deprecation import module_getattr
from ._legacy import EXCEPTIONS_NAMES

__all__ = ["MonitoringException", "WrongConfiguration"]  # noqa: F822 - resolved by __getattr__

__getattr__ = module_getattr(__name__, EXCEPTIONS_NAMES)
