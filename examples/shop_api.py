"""An HTTP API that monitors its dependencies: the talk's MONITORING, on this machine's services.

    python examples/shop_api.py          # then: curl http://127.0.0.1:8080/metrics
                                    #       curl http://127.0.0.1:8080/ready
    curl -X POST -d '{"order": 1}' http://127.0.0.1:8080/orders   # for examples/shop_worker.py

``POST /orders`` publishes the order with a ``BaseProducer`` (publisher confirms) to the
exchange ``EXCHANGE`` (default ``shop``), routing key ``orders.created``; its
``amqp_messages_published_total`` shows on ``/metrics`` beside the checks.

Where it listens: ``API_HOST`` and ``API_PORT`` (default 127.0.0.1:8080). What it watches:
``REDIS_URL``, ``AMQP_URL`` and ``PG_DSN`` (loopback defaults, as ``scripts/services`` brings
up), and its own ``/hello`` over HTTP. Stop it with Ctrl-C.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from aioamqp_ext import AmqpExtError, BaseProducer
from aiohttp_prometheus_monitoring import REGISTRY_KEY, setup_monitoring

HOST = os.environ.get("API_HOST", "127.0.0.1")
PORT = int(os.environ.get("API_PORT", "8080"))
REDIS = urlsplit(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
PG_DSN = os.environ.get("PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
EXCHANGE = os.environ.get("EXCHANGE", "shop")
PRODUCER = web.AppKey("producer", BaseProducer)

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
            # A check of the app itself: its first run waits until the port listens.
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


async def create_order(request: web.Request) -> web.Response:
    """Publish an order for the worker; 202 once the broker confirmed it, 503 if it could not."""
    try:
        order = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="expected a JSON order") from None
    if not isinstance(order, dict) or "order" not in order:
        raise web.HTTPBadRequest(text='expected {"order": ...}')
    try:
        await request.app[PRODUCER].publish_message(order, routing_key="orders.created")
    except AmqpExtError as exc:
        raise web.HTTPServiceUnavailable(text=f"order not queued: {exc}") from None
    return web.json_response({"queued": order["order"]}, status=202)


async def run_producer(app: web.Application) -> AsyncIterator[None]:
    """Connect the producer at start-up (a broker down now is retried on first publish)."""
    producer = app[PRODUCER]
    try:
        await producer.connect()
    except AmqpExtError as exc:
        logging.getLogger(__name__).warning("no broker yet (%s); orders will wait for it", exc)
    try:
        yield
    finally:
        await producer.close()


async def create_app() -> web.Application:
    """The API, with health checks of its dependencies and /ping and /metrics."""
    app = web.Application()
    app.router.add_get("/hello", hello)
    app.router.add_post("/orders", create_order)
    await setup_monitoring(MONITORING, app)
    app[PRODUCER] = BaseProducer(url=AMQP_URL, exchange=EXCHANGE, registry=app[REGISTRY_KEY],
                                 connect_timeout=5, publish_timeout=10)  # fmt: skip
    app.cleanup_ctx.append(run_producer)
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
