"""Deprecated: the views module of aiohttp-prometheus-monitoring 0.1.5.

``ping`` still answers ``pong``, with a ``DeprecationWarning``: ``setup_monitoring`` adds it
at ``MONITORING['route_ping']`` (``/ping`` by default).
"""

from ._deprecation import module_getattr
from ._legacy import VIEWS_NAMES

__all__ = ["ping"]  # noqa: F822 - resolved by __getattr__

__getattr__ = module_getattr(__name__, VIEWS_NAMES)
