"""An HTTP API that monitors its dependencies: the talk's MONITORING, on this machine's services.

    python examples/api.py          # then: curl http://127.0.0.1:8080/metrics
                                    #       curl http://127.0.0.1:8080/ready

Where it listens: ``API_HOST`` and ``API_PORT`` (default 127.0.0.1:8080). What it watches:
``REDIS_URL``, ``AMQP_URL`` and ``PG_DSN`` (loopback defaults, as ``scripts/services`` brings
up), and its own ``/hello`` over HTTP. Stop it with Ctrl-C.
"""

from __future__ import annotations

import logging
import os
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from aiohttp_prometheus_monitoring import setup_monitoring

HOST = os.environ.get("API_HOST", "127.0.0.1")
PORT = int(os.environ.get("API_PORT", "8080"))
REDIS = urlsplit(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
PG_DSN = os.environ.get("PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")

MONITORING: dict[str, Any] = {
    "route_ping": "/ping",
    "route_metrics": "/metrics",
    "route_ready": "/ready",
    "request_metrics": True,  # http_requests_total{handler="/hello",...} and friends
    "metrics": [
        {
            "name": "monitoring_http",
            "description": "Check HTTP status",
            "module": "aiohttp_prometheus_monitoring.metrics.http.HttpMetric",
            # The first run happens while the server is still binding its port, so it
            # sees "down"; the next one, 5 s later, sees the API answer.
            "sleep_time": 5,
            "critical": False,  # the API checking itself must not keep it out of rotation
            "params": {"url": f"http://{HOST}:{PORT}/hello", "timeout": 1, "verify_ssl": True},
        },
        {
            "name": "monitoring_redis",
            "description": "Check redis connection",
            "module": "aiohttp_prometheus_monitoring.metrics.redis.RedisMetric",
            "sleep_time": 15,
            "params": {"host": REDIS.hostname or "127.0.0.1", "port": str(REDIS.port or 6379)},
        },
        {
            "name": "monitoring_mq",
            "description": "Check MQ connection",
            "module": "aiohttp_prometheus_monitoring.metrics.amqp.AmqpMetric",
            "sleep_time": 15,
            "params": {"url": AMQP_URL},
        },
        {
            "name": "monitoring_postgres",
            "description": "Check postgres connection",
            "module": "aiohttp_prometheus_monitoring.metrics.postgres.PostgresMetric",
            "sleep_time": 15,
            "params": {"dsn": PG_DSN},
        },
    ],
}


async def hello(request: web.Request) -> web.Response:
    """The API itself: one JSON greeting."""
    return web.json_response({"hello": request.query.get("name", "world")})


async def create_app() -> web.Application:
    """The API, with health checks of its dependencies and /ping and /metrics."""
    app = web.Application()
    app.router.add_get("/hello", hello)
    await setup_monitoring(MONITORING, app)
    return app


def announce(_: str) -> None:
    base = f"http://{HOST}:{PORT}"
    print(f"API on {base}/hello\n  liveness: {base}/ping\n  readiness: {base}/ready\n"
          f"  metrics:  {base}/metrics\n(Ctrl-C to stop)", flush=True)  # fmt: skip


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("aioamqp").setLevel(logging.WARNING)
    web.run_app(create_app(), host=HOST, port=PORT, print=announce)
