"""A worker of the delayed-retry kill test, run as a process: ``python retry_worker.py``.

It consumes RETRY_QUEUE (bound to RETRY_EXCHANGE with key ``k``) with ``retry_delays`` of
RETRY_DELAY seconds, and prints ``fail <data>`` when a message's first attempt fails (every
first attempt does) and ``done <data>`` when its retry succeeds, flushed line by line, so the
test knows which messages wait in the broker when it kills the process.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from aioamqp_ext import BaseConsumer, Message


class Worker(BaseConsumer):
    """Fails each message once, then handles it."""

    async def process_request(self, data: Any, message: Message) -> None:
        if message.retries == 0:
            print(f"fail {data}", flush=True)
            raise RuntimeError("the first attempt always fails here")
        print(f"done {data}", flush=True)


if __name__ == "__main__":
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="log %(message)s")
    Worker(
        url=os.environ["RETRY_URL"],
        exchange=os.environ["RETRY_EXCHANGE"],
        queue=os.environ["RETRY_QUEUE"],
        routing_key="k",
        prefetch_count=50,
        retry_delays=[float(os.environ["RETRY_DELAY"])],
    ).run()
