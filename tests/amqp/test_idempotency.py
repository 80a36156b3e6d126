"""docs/idempotency.md, executed: its worker, run as a script against the real broker and
Redis, does its work once per ``message_id`` and acks every copy."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aioamqp
import redis.asyncio as redis

from aioamqp_ext import BaseProducer
from tests.amqp.conftest import Broker
from tests.conftest import AmqpNames
from tests.monitoring.conftest import poll

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "idempotency.md"
ROUTING_KEY = "order.paid"


def page_sample() -> str:
    """The page's one Python block."""
    text = PAGE.read_text(encoding="utf-8")
    (block,) = re.findall(r"^```python\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)
    return str(block)


def for_test(
    amqp_url: str, names: AmqpNames, redis_url: str, prefix: str, claim_seconds: int = 120
) -> str:
    """The sample with only the services, the names, the key prefix and the claim's expiry
    swapped for this test's own."""
    code = page_sample()
    for old, new in (
        ('"amqp://localhost:5672/"', repr(amqp_url)),
        ('exchange="shop"', f"exchange={names.exchange!r}"),
        ('queue="billing"', f"queue={names.queue!r}"),
        ('"shop.dead"', repr(names.dead_letter_exchange)),
        ('"redis://localhost:6379/0"', repr(redis_url)),
        ('PREFIX = "billing:"', f"PREFIX = {prefix!r}"),
        ("CLAIM_SECONDS = 120 ", f"CLAIM_SECONDS = {claim_seconds} "),
    ):  # fmt: skip
        assert old in code, old
        code = code.replace(old, new)
    names.retry_queue(claim_seconds)  # the wait queue of its retries, deleted afterwards
    return code


async def consuming(broker: Broker, queue: str) -> bool:
    """Whether ``queue`` exists and has a consumer. A channel of its own per look: a passive
    declare of a queue not declared yet makes the broker close the channel."""
    channel = await broker.protocol.channel()
    try:
        result = await channel.queue_declare(queue, passive=True)
    except aioamqp.ChannelClosed:
        return False
    await channel.close()
    return int(result["consumer_count"]) > 0


@asynccontextmanager
async def worker(code: str, tmp_path: Path, broker: Broker, queue: str) -> AsyncIterator[list[str]]:
    """Run ``code`` as a script until it consumes ``queue``; on exit, stop it with SIGTERM
    (it must exit 0) and fill the yielded list with its output lines (stdout and stderr)."""
    script = tmp_path / "idempotent_worker.py"
    script.write_text(code, encoding="utf-8")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-W", "error", str(script), cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    lines: list[str] = []
    try:

        async def ready() -> bool:
            assert process.returncode is None, "the worker exited before consuming"
            return await consuming(broker, queue)

        await poll(ready, timeout=30, interval=0.05)
        yield lines
    except BaseException as exc:
        if process.returncode is None:
            process.kill()
        output, _ = await process.communicate()
        exc.add_note(f"the worker's output:\n{output.decode()}")
        raise
    try:
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            output, _ = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    lines.extend(output.decode().splitlines())
    assert process.returncode == 0, output.decode()


async def publish(amqp_url: str, names: AmqpNames, *messages: tuple[Any, str]) -> None:
    """Publish each (payload, message_id), confirmed, in order."""
    async with BaseProducer(url=amqp_url, exchange=names.exchange) as producer:
        for payload, message_id in messages:
            await producer.publish_message(
                payload, routing_key=ROUTING_KEY, properties={"message_id": message_id}
            )


async def states(redis_url: str, prefix: str) -> dict[str, bytes | str | None]:
    """Every key under ``prefix`` (without it) and its value."""
    async with redis.from_url(redis_url) as store:
        keys = [key async for key in store.scan_iter(match=f"{prefix}*")]
        values = await store.mget(keys) if keys else []
    return {
        key.decode().removeprefix(prefix): value for key, value in zip(keys, values, strict=True)
    }


async def left_in(broker: Broker, names: AmqpNames) -> dict[str, int]:
    """The messages waiting in the queue, its dead-letter queue and its retry wait queue."""
    return {q: await broker.message_count(q) for q in (names.queue, names.dlq, *names.more_queues)}


async def test_the_same_message_id_twice_is_charged_once_and_both_copies_are_acked(
    amqp_url: str, amqp_names: AmqpNames, broker: Broker, redis_url: str, redis_prefix: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    """Two copies of pay-1 and one pay-2 of the same payload: one charge per distinct id."""
    code = for_test(amqp_url, amqp_names, redis_url, redis_prefix)
    async with worker(code, tmp_path, broker, amqp_names.queue) as output:
        order = {"order": 1}
        await publish(amqp_url, amqp_names, (order, "pay-1"), (order, "pay-1"), (order, "pay-2"))

        async def all_handled() -> bool:
            done = await states(redis_url, redis_prefix) == {"pay-1": b"done", "pay-2": b"done"}
            return done and await broker.message_count(amqp_names.queue) == 0

        await poll(all_handled, timeout=30)
    # stopped gracefully: a copy still in its handler was finished and acked first
    assert output == ["charged order 1", "charged order 1"]  # and nothing logged
    assert set((await left_in(broker, amqp_names)).values()) == {0}
    async with redis.from_url(redis_url) as store:
        for message_id in ("pay-1", "pay-2"):
            assert await store.ttl(f"{redis_prefix}{message_id}") > 120  # the long expiry


async def test_a_message_claimed_by_a_dead_worker_is_charged_once_the_claim_expires(
    amqp_url: str, amqp_names: AmqpNames, broker: Broker, redis_url: str, redis_prefix: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    """A copy finding a claim is retried, not dropped, and charged after the claim expired."""
    code = for_test(amqp_url, amqp_names, redis_url, redis_prefix, claim_seconds=1)
    async with worker(code, tmp_path, broker, amqp_names.queue) as output:
        loop = asyncio.get_running_loop()
        claimed_at = loop.time()
        async with redis.from_url(redis_url) as store:  # as a worker killed mid-charge left it
            assert await store.set(f"{redis_prefix}pay-1", "claimed", nx=True, ex=1)
        await publish(amqp_url, amqp_names, ({"order": 7}, "pay-1"))

        async def done() -> bool:
            return await states(redis_url, redis_prefix) == {"pay-1": b"done"}

        await poll(done, timeout=30)
        waited = loop.time() - claimed_at
    assert waited >= 1.0, f"charged {waited:.2f} s after the claim, which held for 1 s"
    assert [line for line in output if line.startswith("charged")] == ["charged order 7"]
    assert any("AlreadyClaimed" in line for line in output), output  # it was retried
    assert set((await left_in(broker, amqp_names)).values()) == {0}


async def test_a_failing_charge_releases_its_claim_so_every_retry_runs_it_again(
    amqp_url: str, amqp_names: AmqpNames, broker: Broker, redis_url: str, redis_prefix: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    """A payload the work cannot handle is tried 1 + 3 times, never blocked by its own claim,
    then dead-lettered with no key left behind."""
    code = for_test(amqp_url, amqp_names, redis_url, redis_prefix, claim_seconds=1)
    async with worker(code, tmp_path, broker, amqp_names.queue) as output:
        await publish(amqp_url, amqp_names, ({"sku": "A1"}, "pay-1"))  # no "order": KeyError

        async def dead_lettered() -> bool:
            return await broker.message_count(amqp_names.dlq) == 1

        await poll(dead_lettered, timeout=30)
        assert await states(redis_url, redis_prefix) == {}  # the last claim was deleted too
    text = "\n".join(output)
    assert text.count("KeyError: 'order'") == 4, text  # the first attempt and three retries
    assert "AlreadyClaimed" not in text
    assert not any(line.startswith("charged") for line in output)
    (wait_queue,) = amqp_names.more_queues
    assert await left_in(broker, amqp_names) == {
        amqp_names.queue: 0,
        amqp_names.dlq: 1,
        wait_queue: 0,
    }


async def test_a_message_without_message_id_is_dead_lettered_uncharged(
    amqp_url: str, amqp_names: AmqpNames, broker: Broker, redis_url: str, redis_prefix: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    """A foreign client's message with no id fails before any claim, as the page says."""
    code = for_test(amqp_url, amqp_names, redis_url, redis_prefix, claim_seconds=1)
    async with worker(code, tmp_path, broker, amqp_names.queue) as output:
        await broker.channel.publish(
            b'{"order": 3}', amqp_names.exchange, ROUTING_KEY,
            properties={"content_type": "application/json"},
        )  # fmt: skip

        async def dead_lettered() -> bool:
            return await broker.message_count(amqp_names.dlq) == 1

        await poll(dead_lettered, timeout=30)
    failures = [line for line in output if line.startswith("TypeError:")]
    assert len(failures) == 4, output  # PREFIX + None: the first attempt and three retries
    assert not any(line.startswith("charged") for line in output)
    assert await states(redis_url, redis_prefix) == {}
    dead = await broker.get(amqp_names.dlq)
    assert dead is not None
    assert (dead.body, dead.properties.message_id) == (b'{"order": 3}', None)
