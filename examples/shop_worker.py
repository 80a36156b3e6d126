"""A worker: consumes orders until SIGINT/SIGTERM, then finishes what it holds and exits.

    AMQP_URL=amqp://guest:guest@127.0.0.1:5672/ python examples/shop_worker.py
    curl http://127.0.0.1:9101/metrics      # amqp_messages_consumed_total{queue="billing",...}
    curl http://127.0.0.1:9101/ready        # 200 while connected and consuming

Failed orders (``{"order": 7, "fail": true}``) go to the queue ``billing.dlq`` after two
retries. Restart the broker while it runs: the worker logs the loss, reconnects by itself
and goes on consuming (``amqp_reconnects_total`` counts it).

Its metrics are served on ``WORKER_HOST``:``WORKER_PORT`` (default 127.0.0.1:9101;
``WORKER_PORT=off`` for none) and, when ``PUSHGATEWAY_URL`` is set, pushed there every
``PUSH_INTERVAL`` seconds (default 15) and once more at shutdown.
"""

import asyncio
import logging
import os
import socket
from typing import Any

from aioamqp_ext import BaseConsumer
from aiohttp_prometheus_monitoring.worker import serve_worker

URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
EXCHANGE = os.environ.get("EXCHANGE", "shop")
QUEUE = os.environ.get("QUEUE", "billing")
DEAD_LETTERS = os.environ.get("DEAD_LETTER_EXCHANGE", "shop.dead")
HOST = os.environ.get("WORKER_HOST", "127.0.0.1")
PORT = os.environ.get("WORKER_PORT", "9101")
PUSHGATEWAY = os.environ.get("PUSHGATEWAY_URL")

MONITORING: dict[str, Any] = {"route_ping": "/ping", "route_metrics": "/metrics",
                              "route_ready": "/ready"}  # fmt: skip
if PUSHGATEWAY:
    MONITORING["pushgateway"] = {
        "url": PUSHGATEWAY,
        "job": "billing-worker",
        "grouping_key": {"instance": f"{socket.gethostname()}:{os.getpid()}"},
        "interval": float(os.environ.get("PUSH_INTERVAL", "15")),
    }


class Billing(BaseConsumer):
    async def process_request(self, data: Any) -> None:
        if data.get("fail"):
            raise ValueError(f"order {data['order']}: payment refused")
        print(f"billing order {data['order']}", flush=True)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("aioamqp").setLevel(logging.WARNING)
    billing = Billing(
        url=URL,
        exchange=EXCHANGE,
        queue=QUEUE,
        routing_key="orders.*",
        prefetch_count=10,
        dead_letter_exchange=DEAD_LETTERS,
        max_retries=2,
        connection_name=f"billing worker pid {os.getpid()}",  # as the broker lists it
    )
    port = None if PORT == "off" else int(PORT)
    asyncio.run(serve_worker(billing, MONITORING, host=HOST, port=port))
