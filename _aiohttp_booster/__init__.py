"""Internals shared by ``aioamqp_ext`` and ``aiohttp_prometheus_monitoring``; not a public API.

The two libraries never import each other at module level, and ``aioamqp_ext`` cannot be
imported without its extra, so what both need lives here, once: the optional-import guard,
the distribution's version, URL masking, and the one place that touches prometheus-client's
internals. Nothing here is re-exported or documented for users; it may change in any release.
"""

__all__: list[str] = []
