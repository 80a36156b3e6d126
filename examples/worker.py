"""A worker: consumes orders until SIGINT/SIGTERM, then finishes what it holds and exits.

    AMQP_URL=amqp://guest:guest@127.0.0.1:5672/ python examples/worker.py

Failed orders go to the queue ``billing.dlq`` after two retries. Restart the broker while it
runs: the worker logs the loss, reconnects by itself and goes on consuming.
"""

import logging
import os
from typing import Any

from aioamqp_ext import BaseConsumer

URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
EXCHANGE = os.environ.get("EXCHANGE", "shop")
QUEUE = os.environ.get("QUEUE", "billing")
DEAD_LETTERS = os.environ.get("DEAD_LETTER_EXCHANGE", "shop.dead")


class Billing(BaseConsumer):
    async def process_request(self, data: Any) -> None:
        print(f"billing order {data['order']}", flush=True)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    Billing(
        url=URL,
        exchange=EXCHANGE,
        queue=QUEUE,
        routing_key="orders.*",
        prefetch_count=10,
        dead_letter_exchange=DEAD_LETTERS,
        max_retries=2,
        connection_name=f"billing worker pid {os.getpid()}",  # as the broker lists it
    ).run()
