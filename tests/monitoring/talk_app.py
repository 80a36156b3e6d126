"""The talk's app, both ways: ``python talk_app.py talk|modern PORT``.

``talk``: ``loop.run_until_complete(setup_monitoring(...))`` on a loop of its own, then
``web.run_app(app)``, which runs the app on another loop. ``modern``:
``web.run_app(create_app())`` with ``await setup_monitoring(...)`` inside. The talk's
MONITORING dict is used as printed, its hosts and credentials pointed at this machine.
"""

from __future__ import annotations

import asyncio
import os
import sys
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from aiohttp_prometheus_monitoring import setup_monitoring

MODE, PORT = sys.argv[1], int(sys.argv[2])
REDIS = urlsplit(os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
AMQP = urlsplit(os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"))
PG = urlsplit(os.environ.get("TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test"))

MONITORING: dict[str, Any] = {
    "route_ping": "/ping",
    "route_metrics": "/metrics",
    "metrics": [
        {
            "name": "monitoring_http",
            "description": "Check HTTP status",
            "module": "aiohttp_prometheus_monitoring.metrics.http.HttpMetric",
            "sleep_time": 1,  # the talk: 300; short here so that the app's own /ping is seen up
            "params": {"url": f"http://127.0.0.1:{PORT}/ping", "timeout": 1, "verify_ssl": True},
        },
        {
            "name": "monitoring_redis",
            "description": "Check redis connection",
            "module": "aiohttp_prometheus_monitoring.metrics.redis.RedisMetric",
            "sleep_time": 60,
            "params": {"host": REDIS.hostname, "port": str(REDIS.port or 6379)},
        },
        {
            "name": "monitoring_mq",
            "description": "Check MQ connection",
            "module": "aiohttp_prometheus_monitoring.metrics.amqp.AmqpMetric",
            "sleep_time": 60,
            "params": {
                "host": AMQP.hostname,
                "port": str(AMQP.port or 5672),
                "user": AMQP.username or "guest",
                "password": AMQP.password or "guest",
                "vhost": AMQP.path[1:] or "/",
            },
        },
        {
            "name": "monitoring_postgres",
            "description": "Check postgres connection",
            "module": "aiohttp_prometheus_monitoring.metrics.postgres.PostgresMetric",
            "sleep_time": 60,
            "params": {
                "database": PG.path[1:],
                "user": PG.username,
                "password": PG.password or "",
                "host": PG.hostname,
                "port": PG.port or 5432,
            },
        },
    ],
}
settings = SimpleNamespace(MONITORING=MONITORING)


def create_app(loop: asyncio.AbstractEventLoop) -> web.Application:  # the talk's code
    app = web.Application()
    loop.run_until_complete(setup_monitoring(settings.MONITORING, app))
    return app


async def create_app_async() -> web.Application:  # the modern form
    app = web.Application()
    await setup_monitoring(settings.MONITORING, app)
    return app


if __name__ == "__main__":
    if MODE == "talk":
        setup_loop = asyncio.new_event_loop()
        talk_app = create_app(setup_loop)
        web.run_app(talk_app, host="127.0.0.1", port=PORT, print=None)
        setup_loop.close()
    else:
        web.run_app(create_app_async(), host="127.0.0.1", port=PORT, print=None)
