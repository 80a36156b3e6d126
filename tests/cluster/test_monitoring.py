"""Monitoring a cluster: the AMQP check and a worker's readiness follow node loss and failover."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from aioamqp_ext import BaseConsumer
from aiohttp_prometheus_monitoring.metrics.amqp import AmqpMetric
from aiohttp_prometheus_monitoring.worker import serve_worker
from tests.amqp.conftest import wait_until
from tests.cluster.conftest import Cluster
from tests.conftest import AmqpNames
from tests.monitoring.conftest import poll
from tests.monitoring.test_web import free_port
from tests.workers.conftest import get_text

pytestmark = pytest.mark.cluster


class Quiet(BaseConsumer):
    """Takes anything and does nothing with it."""

    async def process_request(self, data: Any) -> None:
        return None


@asynccontextmanager
async def served(consumer: BaseConsumer) -> AsyncIterator[str]:
    """The consumer run by ``serve_worker`` (as ``run(monitoring_port=...)`` does): its
    monitoring's base URL; stopped, and its task awaited, afterwards."""
    port = free_port()
    task = asyncio.create_task(
        serve_worker(consumer, host="127.0.0.1", port=port, handle_signals=False)
    )
    base = f"http://127.0.0.1:{port}"
    try:
        await poll(lambda: ready(base), timeout=30, interval=0.05)
        yield base
    finally:
        consumer.stop()
        async with asyncio.timeout(30):
            await task


async def ready(base: str) -> bool:
    answer = await get_text(f"{base}/ready")
    return answer is not None and answer[0] == 200


async def not_ready(base: str) -> bool:
    answer = await get_text(f"{base}/ready")
    return answer is not None and answer[0] == 503


async def check_up(check: AmqpMetric) -> bool:
    """The check's verdict as the scheduler takes it: raising is down."""
    try:
        async with asyncio.timeout(5):
            return await check.check()
    except Exception:  # a check that raises is a check that says down
        return False


@pytest.mark.slow
async def test_checks_and_readiness_go_down_with_their_node_and_up_again_after_failover(
    cluster: Cluster, cluster_names: AmqpNames, unique_name: str
) -> None:
    """An alert must fire when a client has no broker left, and clear once it failed over."""
    first, _, third = cluster.nodes
    options: dict[str, Any] = {
        "exchange": cluster_names.exchange, "queue": cluster_names.queue, "routing_key": "k",
        "queue_arguments": {"x-queue-type": "quorum"},
    }  # fmt: skip
    # "alone" knows only the third node; "failing" knows the first too. Its first reconnection
    # waits 1.5-3 s, longer than the readiness period (1 s), so its failover is seen on /ready.
    alone = Quiet(url=[third.url], reconnect_max_delay=1.0,
                  connection_name=f"{unique_name} alone", **options)  # fmt: skip
    failing = Quiet(url=[third.url, first.url], reconnect_delay=3.0,
                    connection_name=f"{unique_name} failing", **options)  # fmt: skip
    single_check = AmqpMetric(url=third.url)
    cluster_check = AmqpMetric(url=[third.url, first.url])
    loop = asyncio.get_running_loop()
    async with served(alone) as alone_base, served(failing) as failing_base:
        assert await cluster.node_of(f"{unique_name} failing") == third
        assert await check_up(single_check)
        assert await check_up(cluster_check)
        seen: list[tuple[float, bool]] = []

        async def watch_failing() -> None:
            while True:
                seen.append((loop.time(), await ready(failing_base)))
                await asyncio.sleep(0.05)  # sampling /ready as a prober would

        watcher = asyncio.create_task(watch_failing())
        stopped = loop.time()
        await cluster.stop(third)
        try:
            await poll(lambda: not_ready(alone_base), timeout=10, interval=0.05)
            alone_down = loop.time() - stopped
            assert not await check_up(single_check)
            assert await check_up(cluster_check)  # the first node still accepts us
            await wait_until(lambda: any(not up for _, up in seen), 10, "failing unready")
            await wait_until(lambda: _back(seen), 15, "failing ready again")
            failover = next(t for t, up in seen if up and t > _first_down(seen)) - stopped
            assert await cluster.node_of(f"{unique_name} failing") == first
            assert not await ready(alone_base)  # still nowhere to go
            # a client whose first URL is down connects to the next one at once
            async with Quiet(url=[third.url, first.url], connection_name=f"{unique_name} late",
                             **options) as late:  # fmt: skip
                assert late.is_connected
                assert await cluster.node_of(f"{unique_name} late") == first
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        await cluster.start(third)
        restarted = loop.time()
        await poll(lambda: ready(alone_base), timeout=15, interval=0.05)
        alone_back = loop.time() - restarted
        assert await check_up(single_check)
    print(
        f"\nmonitoring: node {third} stopped; single-node client unready after {alone_down:.2f} s, "
        f"ready {alone_back:.2f} s after the node was back; the two-node client unready, then "
        f"ready on {first} {failover:.2f} s after the stop; the cluster check stayed up"
    )


def _first_down(seen: list[tuple[float, bool]]) -> float:
    return next(t for t, up in seen if not up)


def _back(seen: list[tuple[float, bool]]) -> bool:
    """Ready again after having been unready."""
    down = [t for t, up in seen if not up]
    return bool(down) and any(up and t > down[0] for t, up in seen)
