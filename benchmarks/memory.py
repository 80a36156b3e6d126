"""Memory: resident set size stays flat while a consumer works through many messages and
while checks run many times (the full mode: 1,000,000 messages, 100,000 check runs)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._amqp_clients import BODY
from ._procs import app_process, free_port, rss_bytes, sample_sum, wait_http
from .amqp import Admin

SIZES = {"smoke": (2_000, 1_000), "quick": (100_000, 20_000), "full": (1_000_000, 100_000)}
BACKLOG = 20_000  # messages the filler keeps ahead of the consumer


@dataclass(frozen=True, slots=True)
class Growth:
    """RSS once warmed up (after a tenth of the work) and at the end."""

    label: str
    warm: int
    end: int
    work: int

    @property
    def growth(self) -> float:
        return self.end / self.warm - 1.0


async def consumer_rss(url: str, total: int, log: Callable[[str], None]) -> Growth:
    """One BaseConsumer in this process consumes ``total`` messages fed by a raw filler."""
    from aioamqp_ext import BaseConsumer

    admin = Admin(url)
    await admin.open()
    queue = await admin.new_queue("memory")
    done = asyncio.Event()
    consumed = 0
    warm = 0

    class Consumer(BaseConsumer):
        async def process_request(self, data: Any) -> None:
            nonlocal consumed, warm
            consumed += 1
            if consumed == total // 10:
                warm = rss_bytes()
            if consumed == total:
                done.set()

    consumer = Consumer(url=url, queue=queue, prefetch_count=100)
    try:
        await consumer.consume()
        channel = admin._channel
        properties = {"delivery_mode": 2, "content_type": "application/json"}
        published = 0
        while published < total:
            while published - consumed > BACKLOG:
                await asyncio.sleep(0.01)
            for _ in range(min(5_000, total - published)):
                await channel.publish(BODY, "", queue, properties=properties)
                published += 1
            if published % 100_000 < 5_000:
                log(f"  consumer memory: {consumed:,} of {total:,} consumed")
        await done.wait()
        end = rss_bytes()
    finally:
        await consumer.close()
        await admin.delete(queue)
        await admin.close()
    return Growth(f"consumer, {total:,} messages", warm, end, total)


async def checks_rss(redis_port: int, total: int, log: Callable[[str], None]) -> Growth:
    """Our app with 100 TCP checks every 0.1 s (about 1,000 runs a second)."""
    import aiohttp

    checks = 100
    port = free_port()
    args = ("--checks", str(checks), "--kind", "tcp", "--sleep-time", "0.1",
            "--redis-port", str(redis_port))  # fmt: skip
    warm = 0
    with app_process(port, *args) as process:
        base = f"http://127.0.0.1:{port}"
        await wait_http(process, f"{base}/ping")
        async with aiohttp.ClientSession() as session:
            while True:
                async with session.get(f"{base}/metrics") as response:
                    runs = sample_sum(await response.text(), "monitoring_check_runs_total")
                if not warm and runs >= total // 10:
                    warm = rss_bytes(process.pid)
                if runs >= total:
                    end = rss_bytes(process.pid)
                    break
                await asyncio.sleep(1.0)
    log(f"  checks memory: {runs:,.0f} runs")
    return Growth(f"app, {total:,} check runs (100 TCP checks)", warm, end, int(runs))


async def run(url: str, redis_port: int, size: str, log: Callable[[str], None]) -> list[Growth]:
    messages, runs = SIZES[size]
    return [await consumer_rss(url, messages, log), await checks_rss(redis_port, runs, log)]
