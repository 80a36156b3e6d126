"""The README's two short samples run as written, against the real services."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path
from urllib.parse import urlsplit

from tests.conftest import AmqpNames, amqp_connect
from tests.monitoring.conftest import poll
from tests.monitoring.test_web import free_port, run_until_gauges

ROOT = Path(__file__).resolve().parent.parent
WORKER, API = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)[:2]


async def test_readme_worker_consumes_and_stops_cleanly_on_sigint(
    tmp_path: Path, amqp_url: str, amqp_names: AmqpNames
) -> None:
    """The first code a newcomer copies must consume, dead-letter poison and stop gracefully."""
    source = (
        WORKER.replace("amqp://localhost:5672/", amqp_url)
        .replace("'my_exchange'", repr(amqp_names.exchange))
        .replace("'my_queue'", repr(amqp_names.queue))
        .replace("'my_dlx'", repr(amqp_names.dead_letter_exchange))
    )
    assert source != WORKER
    script = tmp_path / "worker.py"
    script.write_text(source)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-W", "error", str(script), cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"},  # print() as it runs
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    transport, protocol = await amqp_connect(amqp_url)
    try:
        channel = await protocol.channel()

        async def consuming() -> bool:
            probe = await protocol.channel()
            try:
                info = await probe.queue_declare(amqp_names.queue, passive=True)
            except Exception:  # not declared yet; the broker closed the probe's channel
                return False
            await probe.close()
            return bool(info["consumer_count"] == 1)

        await poll(consuming, timeout=20, interval=0.1)
        await channel.basic_publish(
            b'{"order": 1}', exchange_name=amqp_names.exchange, routing_key="foo.bar",
            properties={"content_type": "application/json"},
        )  # fmt: skip
        assert process.stdout is not None
        async with asyncio.timeout(10):
            assert (await process.stdout.readline()).strip() == b"{'order': 1}"
        await channel.basic_publish(
            b"not json", exchange_name=amqp_names.exchange, routing_key="foo.bar",
            properties={"content_type": "application/json"},
        )  # fmt: skip

        async def dead_lettered() -> bool:
            dlq = await channel.queue_declare(amqp_names.dlq, passive=True)
            return bool(dlq["message_count"] == 1)

        await poll(dead_lettered, timeout=10, interval=0.05)
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(15):
            _, stderr = await process.communicate()
        assert process.returncode == 0, stderr.decode()
        queue = await channel.queue_declare(amqp_names.queue, passive=True)
        assert queue["message_count"] == 0  # everything settled: nothing left unacked
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await protocol.close()
        transport.close()


async def test_readme_api_serves_the_redis_gauge(tmp_path: Path, redis_url: str) -> None:
    """The README's monitored API shows its Redis gauge at 1.0, then stops cleanly."""
    redis = urlsplit(redis_url)
    port = free_port()
    source = (
        API.replace("'host': '127.0.0.1'", f"'host': {redis.hostname!r}")
        .replace("'port': '6379'", f"'port': '{redis.port or 6379}'")
        .replace("web.run_app(create_app())", f"web.run_app(create_app(), port={port})")
    )
    assert f"port={port}" in source
    script = tmp_path / "api.py"
    script.write_text(source)
    text = await run_until_gauges([str(script)], port, {"monitoring_redis": 1.0})
    assert "# HELP monitoring_redis Check redis connection" in text
