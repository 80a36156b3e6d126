"""``consumer.run(monitoring_port=...)``: a worker's /ping, /metrics and /ready in one argument."""

from __future__ import annotations

import asyncio
import functools
import threading
from typing import Any

from aioamqp_ext import BaseConsumer
from tests.conftest import AmqpNames
from tests.monitoring.conftest import poll
from tests.monitoring.test_web import free_port
from tests.workers.conftest import get_text


class Quiet(BaseConsumer):
    """Takes anything and does nothing with it."""

    async def process_request(self, data: Any) -> None:
        return None


async def test_run_with_a_monitoring_port_serves_ping_metrics_and_ready(
    amqp_url: str, amqp_names: AmqpNames
) -> None:
    """One keyword gives a worker its monitoring; stopping the worker stops the server too."""
    port = free_port()
    consumer = Quiet(url=amqp_url, exchange=amqp_names.exchange, queue=amqp_names.queue,
                     routing_key="#")  # fmt: skip
    thread = threading.Thread(
        target=consumer.run,
        kwargs={"handle_signals": False, "monitoring_port": port, "monitoring_host": "127.0.0.1"},
    )
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:

        async def ready() -> bool:
            answer = await get_text(f"{base}/ready")
            return answer is not None and answer[0] == 200

        await poll(ready, timeout=15, interval=0.05)
        assert await get_text(f"{base}/ping") == (200, "pong")
        metrics = await get_text(f"{base}/metrics")
        assert metrics is not None
        assert "amqp_connection_up 1.0" in metrics[1]
    finally:
        consumer.stop()
        await asyncio.to_thread(thread.join, 15)
    assert not thread.is_alive()
    assert await get_text(f"{base}/ping") is None


async def test_by_default_the_worker_monitoring_listens_on_every_address(
    amqp_url: str, amqp_names: AmqpNames
) -> None:
    """In a container, Prometheus and the orchestrator's probes come from outside: run() and
    serve_worker() listen on every address unless told otherwise (127.0.0.2 stands in for an
    outside address here: a loopback-only server does not answer there), while an explicit
    monitoring_host="127.0.0.1" keeps it on loopback."""
    from aiohttp_prometheus_monitoring.worker import serve_worker

    default_port, loopback_port, served_port = free_port(), free_port(), free_port()
    options = {"url": amqp_url, "exchange": amqp_names.exchange, "queue": amqp_names.queue,
               "routing_key": "#"}  # fmt: skip
    by_default, on_loopback, served = Quiet(**options), Quiet(**options), Quiet(**options)
    threads = [
        threading.Thread(target=by_default.run,
                         kwargs={"handle_signals": False, "monitoring_port": default_port}),
        threading.Thread(target=on_loopback.run,
                         kwargs={"handle_signals": False, "monitoring_port": loopback_port,
                                 "monitoring_host": "127.0.0.1"}),
    ]  # fmt: skip
    for thread in threads:
        thread.start()
    serving = asyncio.create_task(serve_worker(served, port=served_port, handle_signals=False))
    try:

        async def answers(host: str, port: int) -> bool:
            return await get_text(f"http://{host}:{port}/ping") == (200, "pong")

        for port in (default_port, served_port, loopback_port):
            await poll(functools.partial(answers, "127.0.0.1", port), timeout=15, interval=0.05)
        assert await answers("127.0.0.2", default_port)
        assert await answers("127.0.0.2", served_port)
        assert await get_text(f"http://127.0.0.2:{loopback_port}/ping") is None
    finally:
        for consumer in (by_default, on_loopback, served):
            consumer.stop()
        for thread in threads:
            await asyncio.to_thread(thread.join, 15)
        await asyncio.wait_for(serving, 15)
    assert not any(thread.is_alive() for thread in threads)
