"""docs/scaling.md, executed against the test cluster: its samples must run as shown."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from aioamqp_ext import BaseProducer
from aiohttp_prometheus_monitoring import setup_monitoring
from aiohttp_prometheus_monitoring.metrics.amqp import AmqpMetric
from tests.cluster.conftest import Cluster
from tests.conftest import AmqpNames
from tests.monitoring.test_web import ROOT

pytestmark = pytest.mark.cluster

PAGE = (ROOT / "docs" / "scaling.md").read_text(encoding="utf-8")
DOC_NODES = [f"amqp://guest:guest@rabbit{n}:5672/" for n in (1, 2, 3)]


def python_blocks() -> list[str]:
    """The page's fenced Python blocks, in order."""
    return re.findall(r"^```python\n(.*?)^```$", PAGE, flags=re.MULTILINE | re.DOTALL)


def on_cluster(code: str, cluster: Cluster) -> str:
    """``code`` with the page's node URLs replaced by the test cluster's."""
    for doc_url, node in zip(DOC_NODES, cluster.nodes, strict=True):
        assert doc_url in code, doc_url
        code = code.replace(doc_url, node.url)
    return code


async def test_docs_worker_sample_consumes_a_quorum_queue_and_exits_0_on_sigterm(
    cluster: Cluster, cluster_names: AmqpNames, tmp_path: Path
) -> None:
    """The N-workers sample, pointed at the cluster, handles a message and scales in cleanly."""
    code = on_cluster(python_blocks()[0], cluster)
    for old, new in (("exchange='shop'", f"exchange='{cluster_names.exchange}'"),
                     ("queue='billing'", f"queue='{cluster_names.queue}'")):  # fmt: skip
        assert old in code, old
        code = code.replace(old, new)
    script = tmp_path / "billing.py"
    script.write_text(code)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-W", "error", "-u", str(script), cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "WORKER_INDEX": "1"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output: list[str] = []

    async def read() -> None:
        assert process.stdout is not None
        async for line in process.stdout:
            output.append(line.decode())

    reader = asyncio.create_task(read())
    try:
        async with BaseProducer(url=cluster.urls(0), exchange=cluster_names.exchange) as producer:

            async def handled() -> bool:
                await producer.publish_message({"order": 7}, routing_key="order.paid")
                return any("billing {'order': 7}" in line for line in output)

            # publishing until the worker, which declares the queue, has taken one
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30
            while not await handled():
                assert process.returncode is None, "".join(output)
                assert loop.time() < deadline, "".join(output)
                await asyncio.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await reader
    assert process.returncode == 0, "".join(output)
    assert await cluster.leader_of(cluster_names.queue)  # a quorum queue has a leader


async def test_docs_monitoring_sample_is_valid_and_up_on_the_cluster(cluster: Cluster) -> None:
    """The cluster check of the page passes validation and, pointed at the cluster, is up."""
    namespace: dict[str, Any] = {}
    exec(compile(python_blocks()[1], "docs/scaling.md", "exec"), namespace)  # noqa: S102
    await setup_monitoring(namespace["MONITORING"], web.Application())
    entry = namespace["MONITORING"]["metrics"][0]
    check = AmqpMetric(**{**entry["params"], "url": [node.url for node in cluster.nodes]})
    assert await check.check() is True
