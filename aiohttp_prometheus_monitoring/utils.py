"""Deprecated: the utils module of aiohttp-prometheus-monitoring 0.1.5.

Its ``PeriodicTask`` is gone: ``setup_monitoring`` runs each check every ``sleep_time`` under
its ``timeout``. Reading it, or ``push_metrics`` and ``periodic_push_metrics``, raises an
``ImportError`` saying what replaces it; ``import_by_path`` works, with a
``DeprecationWarning``.
"""

from ._deprecation import module_getattr
from ._legacy import UTILS_NAMES

__all__: list[str] = []  # nothing of 0.1.5's utils works unchanged but import_by_path

__getattr__ = module_getattr(__name__, UTILS_NAMES)
