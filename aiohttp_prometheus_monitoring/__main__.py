"""``python -m aiohttp_prometheus_monitoring``: the standalone exporter (see ``exporter``)."""

from .exporter import main

raise SystemExit(main())
