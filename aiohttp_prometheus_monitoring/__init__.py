"""Health checks of an aiohttp service's dependencies, served as Prometheus gauges."""

from ._version import __version__

__all__ = ["__version__"]
