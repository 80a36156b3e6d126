"""A worker of the competing-workers tests, run as a process: ``python worker.py``.

It consumes the quorum queue named in its environment through ``BaseConsumer.run()`` (so
SIGTERM closes it gracefully, as in production) and prints ``start <id>`` and ``done <id>``
for each message it handles, flushed line by line, so the test sees exactly which messages
it began and finished even if it is killed. A message whose id starts with ``hold`` is held
mid-handler until the worker receives SIGUSR1 (the test's go); any other takes
WORKER_WORK seconds (a handler's I/O, default 0).

Environment: WORKER_URLS (space-separated), WORKER_EXCHANGE, WORKER_QUEUE, WORKER_PREFETCH,
WORKER_NAME (the connection name the broker shows), WORKER_WORK.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from typing import Any

from aioamqp_ext import BaseConsumer

WORK = float(os.environ.get("WORKER_WORK", "0"))


class Worker(BaseConsumer):
    """Prints what it handles; holds ``hold...`` messages until SIGUSR1."""

    async def serve(self, *, handle_signals: bool = True) -> None:
        self.go = asyncio.Event()  # installed before consuming: no SIGUSR1 finds it missing
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, self.go.set)
        await super().serve(handle_signals=handle_signals)

    async def process_request(self, data: Any) -> None:
        print(f"start {data}", flush=True)
        if str(data).startswith("hold"):
            await self.go.wait()
        elif WORK:
            await asyncio.sleep(WORK)
        print(f"done {data}", flush=True)


def main() -> None:
    logging.basicConfig(stream=sys.stdout, level=logging.WARNING, format="log %(message)s")
    logging.getLogger("aioamqp_ext").setLevel(logging.INFO)
    worker = Worker(
        url=os.environ["WORKER_URLS"].split(),
        exchange=os.environ["WORKER_EXCHANGE"],
        queue=os.environ["WORKER_QUEUE"],
        routing_key="k",
        prefetch_count=int(os.environ["WORKER_PREFETCH"]),
        queue_arguments={"x-queue-type": "quorum"},
        connection_name=os.environ["WORKER_NAME"],
    )
    worker.run()


if __name__ == "__main__":
    main()
