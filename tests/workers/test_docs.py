"""docs/workers.md, executed: its samples must run as shown."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

from prometheus_client import generate_latest

from tests.conftest import AmqpNames
from tests.monitoring.conftest import poll
from tests.monitoring.test_web import ROOT, free_port
from tests.workers.conftest import get_text

PAGE = (ROOT / "docs" / "workers.md").read_text(encoding="utf-8")


def python_blocks() -> list[str]:
    """The page's fenced Python blocks, in order."""
    return re.findall(r"^```python\n(.*?)^```$", PAGE, flags=re.MULTILINE | re.DOTALL)


def test_docs_registry_sample_records_a_producers_metrics() -> None:
    """The registry= sample shows the amqp families, before the producer ever connects."""
    namespace: dict[str, Any] = {}
    exec(compile(python_blocks()[0], "docs/workers.md", "exec"), namespace)  # noqa: S102
    text = generate_latest(namespace["registry"]).decode()
    assert 'amqp_messages_published_total{exchange="shop",result="confirmed"} 0.0' in text
    assert "amqp_connection_up 0.0" in text


async def test_docs_worker_sample_serves_ready_and_pushes_at_shutdown(
    amqp_url: str, amqp_names: AmqpNames, pushgateway: str, tmp_path: Path
) -> None:
    """The serve_worker sample, pointed at this machine's services, becomes ready, pushes,
    and exits 0 on SIGTERM after its final push."""
    port = free_port()
    code = python_blocks()[1]
    for old, new in (
        ("amqp://guest:guest@localhost:5672/", amqp_url),
        ('exchange="shop"', f'exchange="{amqp_names.exchange}"'),
        ('queue="billing"', f'queue="{amqp_names.queue}"'),
        ('"shop.dead"', f'"{amqp_names.dead_letter_exchange}"'),
        ("http://localhost:9091", pushgateway),
        ("port=9101", f'host="127.0.0.1", port={port}'),  # the default: every address
    ):  # fmt: skip
        assert old in code, old
        code = code.replace(old, new)
    script = tmp_path / "worker_sample.py"
    script.write_text(code)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-W", "error", str(script), cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:

        async def ready() -> bool:
            assert process.returncode is None
            answer = await get_text(f"http://127.0.0.1:{port}/ready")
            return answer is not None and answer[0] == 200

        await poll(ready, timeout=20, interval=0.05)
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            output, _ = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, output.decode()
    answer = await get_text(f"{pushgateway}/metrics")
    assert answer is not None
    assert re.search(
        r'amqp_connection_up\{instance="worker-\d+",job="billing-worker"\} 0', answer[1]
    )
