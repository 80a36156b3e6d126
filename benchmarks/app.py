"""The benchmarked app: aiohttp's hello world, with or without monitoring.

``python -m benchmarks.app --port 8080 [--checks 100 --kind tcp --sleep-time 1]
[--request-metrics]`` serves ``/`` (``Hello, world``) on 127.0.0.1 until killed.
Check kinds: ``redis`` (PING), ``tcp`` (connect and close) and ``http`` (GET ``--http-url``);
``mixed`` takes them in turn.
"""

from __future__ import annotations

import argparse
from typing import Any

from aiohttp import web

KINDS = {
    "redis": "aiohttp_prometheus_monitoring.metrics.redis.RedisMetric",
    "tcp": "aiohttp_prometheus_monitoring.metrics.tcp.TcpMetric",
    "http": "aiohttp_prometheus_monitoring.metrics.http.HttpMetric",
}


def monitoring_config(args: argparse.Namespace) -> dict[str, Any]:
    """The MONITORING dict for ``args``: ``--checks`` entries of the kind(s) asked."""
    kinds = list(KINDS) if args.kind == "mixed" else [args.kind]
    metrics = []
    for i in range(args.checks):
        kind = kinds[i % len(kinds)]
        params: dict[str, Any] = {"url": args.http_url} if kind == "http" else {
            "host": "127.0.0.1", "port": args.redis_port}  # fmt: skip
        metrics.append({
            "name": f"monitoring_{kind}_{i}", "description": f"{kind} check {i}",
            "module": KINDS[kind], "sleep_time": args.sleep_time, "params": params,
        })  # fmt: skip
    config: dict[str, Any] = {"route_ping": "/ping", "route_metrics": "/metrics",
                              "metrics": metrics}  # fmt: skip
    if args.request_metrics:
        config["request_metrics"] = True
    return config


async def hello(request: web.Request) -> web.Response:
    """The whole app: a fixed answer, so that only the framework and monitoring cost."""
    return web.Response(text="Hello, world")


async def create_app(args: argparse.Namespace) -> web.Application:
    app = web.Application()
    app.router.add_get("/", hello)
    if args.checks or args.request_metrics or args.monitoring:
        from aiohttp_prometheus_monitoring import setup_monitoring

        await setup_monitoring(monitoring_config(args), app)
    else:
        app.router.add_get("/ping", hello)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.app")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--checks", type=int, default=0)
    parser.add_argument("--kind", choices=[*KINDS, "mixed"], default="tcp")
    parser.add_argument("--sleep-time", type=float, default=1.0)
    parser.add_argument("--request-metrics", action="store_true")
    parser.add_argument("--monitoring", action="store_true", help="even with no checks")
    parser.add_argument("--redis-port", type=int, default=6379)
    parser.add_argument("--http-url", default="http://127.0.0.1:8080/")
    args = parser.parse_args()
    web.run_app(create_app(args), host="127.0.0.1", port=args.port, access_log=None,
                print=None)  # fmt: skip


if __name__ == "__main__":
    main()
