"""docs/quickstart.md, run as a reader would: its worker and its API as written, an order sent
to the API, consumed by the worker, and both /metrics showing what the page says."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientSession

from tests.conftest import AmqpNames
from tests.monitoring.conftest import poll, samples
from tests.monitoring.test_web import free_port

ROOT = Path(__file__).resolve().parent.parent
PAGE = (ROOT / "docs" / "quickstart.md").read_text(encoding="utf-8")
WORKER, API = re.findall(r"```python\n(.*?)```", PAGE, re.S)


def test_the_page_shows_the_two_programs_it_names() -> None:
    """The blocks are the files the page tells the reader to save."""
    assert WORKER.startswith("# worker.py\n")
    assert API.startswith("# api.py\n")


async def metrics(session: ClientSession, port: int) -> str | None:
    try:
        async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
            return await response.text()
    except OSError:
        return None


async def start(program: Path, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-W", "error", program.name, cwd=program.parent, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


# what the page shows on the API's /metrics: both gauges, and both checks' labelled family
CHECKS_UP = [
    ("monitoring_redis", ()),
    ("monitoring_rabbitmq", ()),
    ("monitoring_check_up", (("check", "monitoring_redis"), ("kind", "redis"))),
    ("monitoring_check_up", (("check", "monitoring_rabbitmq"), ("kind", "amqp"))),
]


@pytest.fixture
async def session() -> AsyncIterator[ClientSession]:
    async with ClientSession() as client:
        yield client


async def test_quickstart_worker_and_api_as_written(
    tmp_path: Path, amqp_url: str, redis_url: str, amqp_names: AmqpNames, session: ClientSession
) -> None:
    """The page's promises: an order POSTed to the API reaches the worker, the API's
    /metrics shows both checks up, the worker's counts the message acked, and both stop
    cleanly on Ctrl-C."""
    api_port, worker_port = free_port(), free_port()
    names = {
        'exchange="shop"': f"exchange={amqp_names.exchange!r}",
        'queue="orders"': f"queue={amqp_names.queue!r}",
        'dead_letter_exchange="shop.dead"': (
            f"dead_letter_exchange={amqp_names.dead_letter_exchange!r}"
        ),
    }
    worker, api = WORKER, API
    for old, new in names.items():
        worker, api = worker.replace(old, new), api.replace(old, new)
    worker = worker.replace(  # the page's worker listens on every address; here on loopback
        ".run(monitoring_port=9101)",
        f".run(monitoring_port={worker_port}, monitoring_host='127.0.0.1')",
    )
    api = api.replace("port=8080", f"port={api_port}")
    assert f"port={api_port}" in api
    assert worker.count(amqp_names.exchange) == api.count(amqp_names.exchange) == 1
    assert f"monitoring_port={worker_port}" in worker
    (tmp_path / "worker.py").write_text(worker)
    (tmp_path / "api.py").write_text(api)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AMQP_URL": amqp_url, "REDIS_URL": redis_url}
    processes = []
    try:
        processes.append(await start(tmp_path / "worker.py", env))

        async def consuming() -> bool:  # the page: start the worker first
            text = await metrics(session, worker_port)
            return text is not None and "amqp_messages_consumed_total" in text

        await poll(consuming, timeout=20, interval=0.1)
        processes.append(await start(tmp_path / "api.py", env))

        async def checks_up() -> str | None:
            text = await metrics(session, api_port)
            if text is None:
                return None
            found = samples(text)
            return text if all(found.get(key) == 1.0 for key in CHECKS_UP) else None

        await poll(checks_up, timeout=20, interval=0.1)
        async with session.post(f"http://127.0.0.1:{api_port}/orders", data='{"id": 1}') as r:
            assert r.status == 202
            assert await r.json() == {"queued": 1}

        async def acked() -> bool:
            text = await metrics(session, worker_port)
            key = ("amqp_messages_consumed_total",
                   (("queue", amqp_names.queue), ("result", "ack")))  # fmt: skip
            return text is not None and samples(text).get(key) == 1.0

        await poll(acked, timeout=20, interval=0.1)
        outputs = []
        for process in processes:
            process.send_signal(signal.SIGINT)
            async with asyncio.timeout(20):
                _, err = await process.communicate()
            assert process.returncode == 0, err.decode()
            outputs.append(err.decode())
        assert "INFO:orders:order 1" in outputs[0]
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
