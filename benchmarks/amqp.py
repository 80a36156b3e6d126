"""The AMQP rows: consume, publish and request/reply throughput of each contender, interleaved.

Each run gets a fresh durable queue (deleted afterwards); a consume run's queue is filled
beforehand, untimed. A request/reply run's queue is declared by the contender's own server
(aio-pika's RPC declares it with its own arguments) and deleted by the harness. The order of
the contenders rotates from round to round, so none is always the first after a fill.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ._amqp_clients import (
    BODY,
    CONSUME,
    CONSUME_MESSAGE,
    PUBLISH,
    REQUEST,
    PublishMode,
    available,
    run_workers,
)
from ._report import Series


@dataclass(frozen=True, slots=True)
class Sizes:
    """Messages per run of each row, and rounds (runs per contender and row)."""

    rounds: int
    consume: int
    consume_p1: int
    pipelined: int
    one_by_one: int
    transient: int
    request: int


SIZES = {
    "smoke": Sizes(rounds=1, consume=300, consume_p1=100, pipelined=300, one_by_one=50,
                   transient=300, request=200),
    "quick": Sizes(rounds=3, consume=3000, consume_p1=1000, pipelined=3000, one_by_one=300,
                   transient=6000, request=3000),
    "full": Sizes(rounds=7, consume=60000, consume_p1=15000, pipelined=60000, one_by_one=3000,
                  transient=120000, request=20000),
}  # fmt: skip

CONSUME_100 = "consume, no-op handler, prefetch 100"
CONSUME_MESSAGE_100 = "consume, two-parameter handler reading message.message_id, prefetch 100"
CONSUME_1 = "consume, prefetch 1"
PIPELINED = "publish, persistent, confirms, 1000 in flight"
ONE_BY_ONE = "publish, confirms awaited one by one"
TRANSIENT = "publish, transient, no confirms"
REQUEST_REPLY = "request/reply, 100 in flight"
ROWS = (CONSUME_100, CONSUME_MESSAGE_100, CONSUME_1, PIPELINED, ONE_BY_ONE, TRANSIENT,
        REQUEST_REPLY)  # fmt: skip
#: the unit of each row's figures (the others: msg/s)
UNITS = {REQUEST_REPLY: "req/s"}


class Admin:
    """A raw connection of the harness: declares, fills, counts and deletes the run queues."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._transport: Any = None
        self._protocol: Any = None
        self._channel: Any = None

    async def open(self) -> None:
        import aioamqp

        parts = urlsplit(self.url)
        self._transport, self._protocol = await aioamqp.connect(
            parts.hostname or "localhost", parts.port or 5672, parts.username or "guest",
            parts.password or "guest", parts.path[1:] or "/",
        )  # fmt: skip
        self._channel = await self._protocol.channel()

    async def close(self) -> None:
        await self._protocol.close()
        self._transport.close()

    async def new_queue(self, label: str) -> str:
        name = self.new_name(label)
        await self._channel.queue_declare(name, durable=True)
        return name

    @staticmethod
    def new_name(label: str) -> str:
        """A fresh queue name, not declared (for a contender that declares its own)."""
        return f"bench.{label}.{uuid.uuid4().hex[:8]}"

    async def count(self, queue: str) -> int:
        result = await self._channel.queue_declare(queue, durable=True, passive=True)
        return int(result["message_count"])

    async def delete(self, queue: str) -> None:
        await self._channel.queue_delete(queue)

    async def fill(self, queue: str, n: int, *, message_ids: bool = False) -> None:
        """Put ``n`` persistent messages in ``queue`` and wait until the broker holds them all;
        with ``message_ids``, each with a ``message_id`` of its own (as BaseProducer sends)."""
        properties = {"delivery_mode": 2, "content_type": "application/json"}
        channel = self._channel
        ids = itertools.count()

        async def send() -> None:
            props = {**properties, "message_id": f"{next(ids):032x}"} if message_ids else properties
            await channel.publish(BODY, "", queue, properties=props)

        await run_workers(send, n, 1)
        while await self.count(queue) < n:
            await asyncio.sleep(0.01)


async def run(url: str, size: str, rows: tuple[str, ...] = ROWS,
              log: Any = print) -> list[Series]:  # fmt: skip
    """Every row, every contender, ``rounds`` times interleaved; returns the samples."""
    sizes = SIZES[size]
    contenders = available(url)
    admin = Admin(url)
    await admin.open()
    plans: list[tuple[str, int, str, Any]] = [
        (CONSUME_100, sizes.consume, CONSUME, 100),
        (CONSUME_MESSAGE_100, sizes.consume, CONSUME_MESSAGE, 100),
        (CONSUME_1, sizes.consume_p1, CONSUME, 1),
        (PIPELINED, sizes.pipelined, PUBLISH,
         PublishMode(confirms=True, in_flight=1000, persistent=True)),
        (ONE_BY_ONE, sizes.one_by_one, PUBLISH,
         PublishMode(confirms=True, in_flight=1, persistent=True)),
        (TRANSIENT, sizes.transient, PUBLISH,
         PublishMode(confirms=False, in_flight=1000, persistent=False)),
        (REQUEST_REPLY, sizes.request, REQUEST, 100),
    ]  # fmt: skip
    results: list[Series] = []
    try:
        for row, n, kind, how in plans:
            if row not in rows:
                continue
            runners = [c for c in contenders if kind in c.kinds
                       and row in (getattr(c, "rows", None) or (row,))]  # fmt: skip
            unit = UNITS.get(row, "msg/s")
            series = {c.name: Series(row, c.name, unit) for c in runners}
            results += series.values()
            for round_ in range(sizes.rounds):
                shift = round_ % len(runners)
                for contender in runners[shift:] + runners[:shift]:
                    label = re.sub(r"[^a-z0-9_]+", "-", contender.name.lower()).strip("-")
                    if kind == REQUEST:  # its server declares it
                        queue = admin.new_name(f"rpc.{label}")
                    else:
                        queue = await admin.new_queue(label)
                    try:
                        if kind == CONSUME:
                            await admin.fill(queue, n)
                            took = await contender.consume(queue, n, how)
                            rate = (n - 1) / took  # first to last delivery: n - 1 intervals
                        elif kind == CONSUME_MESSAGE:
                            await admin.fill(queue, n, message_ids=True)
                            took = await contender.consume_message(queue, n, how)
                            rate = (n - 1) / took
                        elif kind == REQUEST:
                            took = await contender.request_reply(queue, n, how)
                            rate = n / took  # first request sent to last reply received
                        else:

                            async def count(queue: str = queue) -> int:
                                return await admin.count(queue)

                            took = await contender.publish(queue, n, how, count)
                            rate = n / took
                    except Exception as exc:  # a contender that breaks is reported, not fatal
                        series[contender.name].note = f"failed: {type(exc).__name__}: {exc}"
                        log(f"  {row}: {contender.name} failed: {exc!r}")
                        continue
                    finally:
                        await admin.delete(queue)
                    series[contender.name].samples.append(rate)
                    log(f"  {row}: {contender.name}: {rate:,.0f} {unit}")
    finally:
        await admin.close()
    return results
