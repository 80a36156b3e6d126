"""Program B, an API that monitors its dependencies: GET /hello, /ping and /metrics.

    REDIS_URL=redis://127.0.0.1:6379/0 PG_DSN=postgresql://postgres@127.0.0.1:5432/test \\
    AMQP_URL=amqp://guest:guest@127.0.0.1:5672/ python examples/api.py
    curl http://127.0.0.1:8080/metrics      # monitoring_redis 1.0, monitoring_postgres 1.0, ...

Each check runs every 5 s in the background under a 4 s timeout; /metrics shows the last
results and never waits. The check of the app's own /hello waits for the port to listen
before its first run, so it never reads a false 0 at start-up.
"""

import os

from aiohttp import web

from aiohttp_prometheus_monitoring import setup_monitoring


async def hello(request: web.Request) -> web.Response:
    return web.Response(text="hello")


async def create_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/hello", hello)
    await setup_monitoring({"metrics": [
        {"name": "monitoring_redis", "url": os.environ["REDIS_URL"]},
        {"name": "monitoring_postgres", "url": os.environ["PG_DSN"]},
        {"name": "monitoring_rabbitmq", "url": os.environ["AMQP_URL"]},
        {"name": "monitoring_hello", "url": f"http://127.0.0.1:{PORT}/hello"},
    ]}, app)  # fmt: skip
    return app


PORT = int(os.environ.get("PORT", "8080"))
web.run_app(create_app(), port=PORT)
