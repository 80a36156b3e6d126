"""A check test: a check of your own, run by the real scheduler, read as /metrics shows it."""

import asyncio
import shutil

from aiohttp import web
from pytest_aiohttp import AiohttpClient

from aiohttp_prometheus_monitoring import setup_monitoring
from aiohttp_prometheus_monitoring.metrics.base import BaseMetric
from aiohttp_prometheus_monitoring.testing import run_checks, sample


class FreeDiskMetric(BaseMetric):
    """Up while the file system holding `path` has at least `min_free_bytes` free."""

    kind = "disk"

    def __init__(self, path: str = "/", min_free_bytes: int = 1 << 30) -> None:
        self.path = path
        self.min_free_bytes = min_free_bytes

    async def check(self) -> bool:
        usage = await asyncio.to_thread(shutil.disk_usage, self.path)
        return usage.free >= self.min_free_bytes


async def create_app(min_free_bytes: int) -> web.Application:
    app = web.Application()
    disk = {
        "name": "monitoring_disk",
        "description": "Free space on the data volume",
        "module": f"{__name__}.FreeDiskMetric",  # in a service: "myservice.checks.FreeDiskMetric"
        "sleep_time": 30,
        "params": {"path": "/", "min_free_bytes": min_free_bytes},
    }
    await setup_monitoring({"metrics": [disk]}, app)
    return app


async def test_up_with_room_to_spare(aiohttp_client: AiohttpClient) -> None:
    app = await create_app(min_free_bytes=1)
    client = await aiohttp_client(app)  # starts the app, and so its checks
    await run_checks(app)  # every check runs once more, now: no sleeping
    assert sample(app, "monitoring_disk") == 1.0
    assert sample(app, "monitoring_check_up", {"check": "monitoring_disk", "kind": "disk"}) == 1.0
    metrics = await (await client.get("/metrics")).text()
    assert "\nmonitoring_disk 1.0\n" in metrics


async def test_down_when_the_disk_is_full(aiohttp_client: AiohttpClient) -> None:
    app = await create_app(min_free_bytes=1 << 62)  # 4 EiB: more than any disk has
    await aiohttp_client(app)
    await run_checks(app)
    assert sample(app, "monitoring_disk") == 0.0
    # the run at start-up and ours; "failure": the check returned False (it did not raise)
    runs = {"check": "monitoring_disk", "result": "failure"}
    assert sample(app, "monitoring_check_runs_total", runs) == 2
