"""``consumer.run(monitoring_port=...)``: a worker's /ping, /metrics and /ready in one argument."""

from __future__ import annotations

import asyncio
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
        target=consumer.run, kwargs={"handle_signals": False, "monitoring_port": port}
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
