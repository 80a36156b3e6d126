"""The talk's samples (from docs/aioamqp_ext.md) and examples/ run as scripts on the real broker."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from pathlib import Path

import pytest

from tests.amqp.conftest import Broker
from tests.conftest import AmqpNames

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "aioamqp_ext.md"
TALK_URL = "'amqp://localhost:5672/'"


def doc_sample(marker: str) -> str:
    """The python code block of the docs page that contains ``marker``."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    (block,) = [str(b) for b in blocks if marker in b]
    return block


def for_test(sample: str, url: str, names: AmqpNames, exchange: str = "my_exchange") -> str:
    """The sample with only the broker URL and the names swapped for this test's own."""
    assert TALK_URL in sample
    return (
        sample.replace(TALK_URL, repr(url))
        .replace(repr(exchange), repr(names.exchange))
        .replace("'my_queue'", repr(names.queue))
    )


def _default_sigint() -> None:
    """SIGINT's default disposition in the child: the talk's sample ends by KeyboardInterrupt,
    which Python installs only over the default, and a test run started as a shell's
    background job has SIGINT ignored, which a child inherits."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


async def interrupt(proc: asyncio.subprocess.Process, *, presses: int = 15) -> None:
    """Press Ctrl-C (SIGINT) until ``proc`` exits, once a second, as a user would.

    A SIGINT that lands just before the sample's loop blocks in epoll is only seen when the
    loop next wakes (CPython runs the KeyboardInterrupt handler between bytecodes, and the
    sample installs no wake-up fd): here the AMQP heartbeat, up to a minute later. The
    second press ends it at once; seen about once in a hundred runs on a loaded machine.
    """
    for _ in range(presses):
        proc.send_signal(signal.SIGINT)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), timeout=1)
            return
    raise AssertionError(f"still running after {presses} SIGINTs, one a second")


async def read_until(stream: asyncio.StreamReader, pattern: str, seen: list[str]) -> None:
    while True:
        line = (await stream.readline()).decode()
        if not line:
            raise AssertionError(f"process ended before printing {pattern!r}: {seen}")
        seen.append(line)
        if pattern in line:
            return


async def test_talk_producer_sample_publishes_and_exits(
    amqp_url: str, amqp_names: AmqpNames, broker: Broker, tmp_path: Path
) -> None:
    """The talk's un-awaited producer calls must really publish (the 2018 one did not)."""
    await broker.declare(exchange=amqp_names.exchange, queue=amqp_names.queue, routing_key="bar")
    script = tmp_path / "producer_sample.py"
    script.write_text(for_test(doc_sample("BaseProducer(**{"), amqp_url, amqp_names))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-W", "error", str(script), cwd=ROOT, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 0, stderr.decode()
    assert stderr == b""  # no "coroutine was never awaited", no ResourceWarning
    message = await broker.get(amqp_names.queue)
    assert message is not None
    assert message.body == b'"foo"'
    assert message.properties.delivery_mode == 2


async def test_talk_consumer_sample_prints_messages_until_interrupted(
    amqp_url: str, amqp_names: AmqpNames, broker: Broker, tmp_path: Path
) -> None:
    """The talk's consumer (get_event_loop, run_until_complete, run_forever) must work as shown."""
    await broker.declare(
        exchange=amqp_names.exchange, queue=amqp_names.queue, routing_key="foo.bar"
    )
    await broker.channel.publish(
        b'{"hello":"talk"}',
        amqp_names.exchange,
        "foo.bar",
        properties={"content_type": "application/json"},
    )
    script = tmp_path / "consumer_sample.py"
    script.write_text(for_test(doc_sample("class Consumer(BaseConsumer)"), amqp_url, amqp_names))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-u",
        "-W",
        "error::RuntimeWarning",
        str(script),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        preexec_fn=_default_sigint,
    )
    seen: list[str] = []
    try:
        assert proc.stdout is not None
        await asyncio.wait_for(read_until(proc.stdout, "{'hello': 'talk'}", seen), timeout=30)
    finally:
        try:
            await interrupt(proc)
        finally:
            if proc.returncode is None:  # never leave it running, whatever failed
                proc.kill()
                await proc.wait()
    assert proc.returncode != 0  # the sample lets KeyboardInterrupt end it, as in the talk


@pytest.mark.slow
async def test_examples_worker_and_producer(amqp_url: str, amqp_names: AmqpNames) -> None:
    """examples/ must run: the worker consumes what the producer sends, and exits 0 on SIGTERM."""
    env = {
        **os.environ,
        "AMQP_URL": amqp_url,
        "EXCHANGE": amqp_names.exchange,
        "QUEUE": amqp_names.queue,
        "DEAD_LETTER_EXCHANGE": amqp_names.dead_letter_exchange,
        "PYTHONPATH": str(ROOT),
        "WORKER_PORT": "off",  # its monitoring server is tested in tests/workers
    }
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-W",
        "error",
        str(ROOT / "examples" / "shop_worker.py"),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    seen: list[str] = []
    try:
        assert worker.stdout is not None
        await asyncio.wait_for(read_until(worker.stdout, "consuming queue", seen), timeout=30)
        producer = await asyncio.create_subprocess_exec(
            sys.executable,
            "-W",
            "error",
            str(ROOT / "examples" / "producer.py"),
            "3",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(producer.communicate(), timeout=30)
        assert producer.returncode == 0, out.decode()
        assert b"published 3 orders, all confirmed" in out
        for _ in range(3):
            await asyncio.wait_for(read_until(worker.stdout, "billing order", seen), timeout=30)
        assert sorted(line for line in seen if "billing order" in line) == [
            f"billing order {n}\n" for n in range(3)
        ]
    finally:
        worker.send_signal(signal.SIGTERM)
        rest, _ = await asyncio.wait_for(worker.communicate(), timeout=30)
    assert worker.returncode == 0, "".join(seen) + rest.decode()
    assert b"SIGTERM received, closing" in rest


async def test_docs_async_producer_sample_publishes_1001_messages(
    amqp_url: str, amqp_names: AmqpNames, broker: Broker, tmp_path: Path
) -> None:
    """The docs' async sample must run as shown and have every message confirmed."""
    await broker.declare(
        exchange=amqp_names.exchange, queue=amqp_names.queue, routing_key="orders.created"
    )
    script = tmp_path / "async_sample.py"
    sample = doc_sample("async with BaseProducer(")
    script.write_text(for_test(sample, amqp_url, amqp_names, exchange="orders"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-W", "error", str(script), cwd=ROOT, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, stderr.decode()
    assert await broker.message_count(amqp_names.queue) == 1001
