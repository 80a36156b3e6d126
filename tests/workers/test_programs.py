"""The two programs of docs/why.md, examples/worker.py (A) and examples/api.py (B): their size, and
each requirement verified against the real services."""

from __future__ import annotations

import asyncio
import io
import json
import signal
import socket
import time
import tokenize
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from tests.amqp.conftest import Broker, broker  # noqa: F401 - the fixture, used below
from tests.conftest import AmqpNames
from tests.monitoring.conftest import poll, samples
from tests.monitoring.test_web import ROOT, free_port
from tests.proxy import FaultProxy
from tests.workers.conftest import Program, get_text

EXAMPLES = ROOT / "examples"
# Runs a program with its worker's monitoring on loopback (worker.py sets no host: in
# production it listens on every address) and, with HANDLER_DELAY set, every handler of its
# BaseConsumer subclass slowed down by that many seconds, so that concurrency and in-flight
# shutdown can be watched.
HARNESS = """
import asyncio, functools, os, runpy, sys
import aioamqp_ext

DELAY = os.environ.get("HANDLER_DELAY")


def slow_down(cls, **kwargs):
    handler = cls.__dict__["process_request"]

    async def process_request(self, data):
        await asyncio.sleep(float(DELAY))
        return await handler(self, data)

    cls.process_request = process_request


if DELAY:
    aioamqp_ext.BaseConsumer.__init_subclass__ = classmethod(slow_down)
aioamqp_ext.BaseConsumer.run = functools.partialmethod(
    aioamqp_ext.BaseConsumer.run, monitoring_host="127.0.0.1"
)
runpy.run_path(sys.argv[1], run_name="__main__")
"""


def code_lines(path: Path) -> int:
    """Non-blank, non-comment lines outside imports and the module docstring."""
    source = path.read_text(encoding="utf-8")
    skipped: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.STRING and token.start[1] == 0:  # the module docstring
            skipped.update(range(token.start[0], token.end[0] + 1))
    lines = source.splitlines()
    statement_is_import = False
    count = 0
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#") or number in skipped:
            continue
        if not line.startswith((" ", "\t", ")", "]", "}")):
            statement_is_import = text.startswith(("import ", "from "))
        if not statement_is_import:
            count += 1
    return count


def test_program_a_is_at_most_12_lines_and_program_b_at_most_15() -> None:
    """The project's thesis, measured the way the peers were: 12 and 15 lines at most."""
    assert code_lines(EXAMPLES / "worker.py") <= 12
    assert code_lines(EXAMPLES / "api.py") <= 15


def test_the_why_page_shows_the_counts_measured_here() -> None:
    """docs/why.md's table must say what the programs really cost."""
    page = (ROOT / "docs" / "why.md").read_text(encoding="utf-8")
    assert f"| 51 | 22 | - | - | **{code_lines(EXAMPLES / 'worker.py')}** |" in page
    assert f"| - | - | 46 | 25 | **{code_lines(EXAMPLES / 'api.py')}** |" in page


Start = Callable[..., Awaitable[Program]]


@pytest.fixture
def start(tmp_path: Path, example: Callable[..., Awaitable[Program]]) -> Start:
    """Factory: ``await start("worker.py", env, delay=...)``; killed afterwards."""
    harness = tmp_path / "harness.py"
    harness.write_text(HARNESS)

    async def run(name: str, env: dict[str, str], delay: float | None = None) -> Program:
        wrapper = () if delay is None and name != "worker.py" else (str(harness),)
        delayed = {} if delay is None else {"HANDLER_DELAY": str(delay)}
        return await example(name, {**env, **delayed}, wrapper=wrapper)

    return run


def worker_env(url: str, names: AmqpNames, port: int) -> dict[str, str]:
    return {
        "AMQP_URL": url, "EXCHANGE": names.exchange, "QUEUE": names.queue,
        "DEAD_LETTER_EXCHANGE": names.dead_letter_exchange, "MONITORING_PORT": str(port),
    }  # fmt: skip


async def status(url: str) -> int | None:
    answer = await get_text(url)
    return None if answer is None else answer[0]


async def metric(port: int, name: str, **labels: str) -> float | None:
    answer = await get_text(f"http://127.0.0.1:{port}/metrics")
    return None if answer is None else samples(answer[1]).get((name, tuple(sorted(labels.items()))))


async def publish(raw: Broker, exchange: str, key: str, body: bytes | dict[str, object]) -> None:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    await raw.channel.basic_publish(payload, exchange_name=exchange, routing_key=key)


async def test_program_a_consumes_both_keys_dead_letters_and_reconnects(
    start: Start, amqp_url: str, amqp_names: AmqpNames, broker: Broker,  # noqa: F811
    fault_proxy: Callable[[str], Awaitable[tuple[FaultProxy, str]]],
) -> None:  # fmt: skip
    """Both routing keys reach the handler, which logs the data; a raising handler and a
    non-JSON body go to the DLQ; /ready flips to 503 when the broker connection is cut and
    back to 200 once it is healed, and consuming resumes."""
    proxy, proxied = await fault_proxy(amqp_url)
    port = free_port()
    worker = await start("worker.py", worker_env(proxied, amqp_names, port))
    ready = f"http://127.0.0.1:{port}/ready"
    await poll(lambda: _is(status(ready), 200), timeout=30, interval=0.05)
    assert (await get_text(f"http://127.0.0.1:{port}/ping")) == (200, "pong")
    await publish(broker, amqp_names.exchange, "order.created", {"id": 1})
    await publish(broker, amqp_names.exchange, "order.paid", {"id": 2})
    await publish(broker, amqp_names.exchange, "order.shipped", {"id": 3})  # not bound
    await publish(broker, amqp_names.exchange, "order.paid", {"no_id": True})  # raises
    await publish(broker, amqp_names.exchange, "order.created", b"not json")
    dead = await broker.take(amqp_names.dlq, 2)
    assert sorted(m.body for m in dead) == [b"not json", b'{"no_id": true}']
    await poll(lambda: _true("order 2: {'id': 2}" in worker.output()), timeout=10)
    assert "order 1: {'id': 1}" in worker.output()
    assert "order 3" not in worker.output()
    queue = amqp_names.queue

    async def two_acked() -> bool:
        return await metric(port, "amqp_messages_consumed_total", queue=queue, result="ack") == 2

    await poll(two_acked, timeout=5)
    assert (
        await metric(port, "amqp_messages_consumed_total", queue=queue, result="dead_letter") == 2
    )
    assert await metric(port, "amqp_message_handling_seconds_count", queue=queue) == 4

    proxy.refuse()
    proxy.cut()
    await poll(lambda: _is(status(ready), 503), timeout=10, interval=0.05)
    proxy.refuse(False)
    await poll(lambda: _is(status(ready), 200), timeout=30, interval=0.05)
    await publish(broker, amqp_names.exchange, "order.paid", {"id": 4})
    await poll(lambda: _true("order 4: {'id': 4}" in worker.output()), timeout=10)
    assert await metric(port, "amqp_reconnects_total") == 1
    assert await worker.stop(signal.SIGINT) == 0


async def test_program_a_handles_10_at_once_and_finishes_them_on_sigterm(
    start: Start, amqp_url: str, amqp_names: AmqpNames, broker: Broker,  # noqa: F811
) -> None:  # fmt: skip
    """Prefetch 10 with concurrent handlers: 25 slow messages run 10 at a time, never more;
    SIGTERM with handlers in flight lets them finish and acks them, then exits 0."""
    port = free_port()
    worker = await start("worker.py", worker_env(amqp_url, amqp_names, port), delay=1.5)
    await poll(lambda: _is(status(f"http://127.0.0.1:{port}/ready"), 200), timeout=30)
    for n in range(25):
        await publish(broker, amqp_names.exchange, "order.created", {"id": n})
    seen: set[float] = set()

    async def ten_in_flight() -> bool:
        value = await metric(port, "amqp_messages_in_flight", queue=amqp_names.queue)
        seen.add(value or 0.0)
        return value == 10

    await poll(ten_in_flight, timeout=10, interval=0.02)
    await asyncio.sleep(0.5)
    await ten_in_flight()
    assert max(seen) == 10
    assert await worker.stop(signal.SIGTERM) == 0
    handled = worker.output().count("INFO:orders:order ")
    assert handled >= 10  # the ten in flight at SIGTERM finished
    assert await broker.message_count(amqp_names.queue) == 25 - handled  # and were acked


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (in the kernel's backlog) and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(100)
    yield sock.getsockname()[1]
    sock.close()


async def test_program_b_serves_hello_ping_and_all_four_gauges_up(
    start: Start, redis_url: str, pg_dsn: str, amqp_url: str
) -> None:
    """GET /hello, /ping "pong", and /metrics with Redis, PostgreSQL, RabbitMQ and its own
    /hello up; the self-check's first value is already 1."""
    port = free_port()
    env = {"REDIS_URL": redis_url, "PG_DSN": pg_dsn, "AMQP_URL": amqp_url, "PORT": str(port)}
    api = await start("api.py", env)
    names = ("monitoring_redis", "monitoring_postgres", "monitoring_rabbitmq", "monitoring_hello")
    first_hello: list[float] = []

    async def all_up() -> bool:
        answer = await get_text(f"http://127.0.0.1:{port}/metrics")
        if answer is None:
            return False
        values = samples(answer[1])
        if not first_hello and (hello := values.get(("monitoring_hello", ()))) is not None:
            first_hello.append(hello)
        return all(values.get((name, ())) == 1.0 for name in names)

    await poll(all_up, timeout=20, interval=0.02)
    assert first_hello == [1.0]
    assert await get_text(f"http://127.0.0.1:{port}/hello") == (200, "hello")
    assert await get_text(f"http://127.0.0.1:{port}/ping") == (200, "pong")
    assert await api.stop() == 0


async def test_program_b_reads_0_for_hosts_that_never_answer_and_exits_promptly(
    start: Start, silent_port: int
) -> None:
    """Dependencies that accept and never answer read 0 after the 4 s timeout, /metrics
    answers at once meanwhile, and SIGTERM still ends the program promptly."""
    port = free_port()
    env = {
        "REDIS_URL": f"redis://127.0.0.1:{silent_port}/0",
        "PG_DSN": f"postgresql://postgres@127.0.0.1:{silent_port}/test",
        "AMQP_URL": f"amqp://guest:guest@127.0.0.1:{silent_port}/", "PORT": str(port),
    }  # fmt: skip
    api = await start("api.py", env)
    names = ("monitoring_redis", "monitoring_postgres", "monitoring_rabbitmq")

    async def all_down() -> bool:
        started = time.monotonic()
        answer = await get_text(f"http://127.0.0.1:{port}/metrics")
        if answer is None:
            return False
        assert time.monotonic() - started < 1.0  # a scrape never waits on a check
        values = samples(answer[1])
        return all(values.get((name, ())) == 0.0 for name in names)

    await poll(all_down, timeout=15, interval=0.1)
    stopped = time.monotonic()
    assert await api.stop() == 0
    assert time.monotonic() - stopped < 5


async def test_program_a_exits_promptly_on_sigterm_while_the_broker_never_answers(
    start: Start, amqp_names: AmqpNames, silent_port: int
) -> None:
    """A broker that accepts and never answers: not ready, and SIGTERM still ends it soon."""
    port = free_port()
    url = f"amqp://guest:guest@127.0.0.1:{silent_port}/"
    worker = await start("worker.py", worker_env(url, amqp_names, port))
    await poll(lambda: _is(status(f"http://127.0.0.1:{port}/ready"), 503), timeout=15)
    stopped = time.monotonic()
    assert await worker.stop(signal.SIGTERM) == 0
    assert time.monotonic() - stopped < 5


async def _is(value: Awaitable[int | None], expected: int) -> bool:
    return await value == expected


async def _true(value: bool) -> bool:
    return value
