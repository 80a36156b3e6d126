"""``python -m aiohttp_prometheus_monitoring``: the standalone exporter (see ``exporter``)."""

from .exporter import main

__all__: list[str] = []

raise SystemExit(main())
