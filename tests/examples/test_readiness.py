"""An app readiness test: /ready with a dependency down, hung or back, without any of them."""

import json

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpClient

from aiohttp_prometheus_monitoring import setup_monitoring
from aiohttp_prometheus_monitoring.testing import force, run_checks, sample

MONITORING = {
    "route_ready": "/ready",
    "metrics": [
        {"name": "monitoring_postgres", "url": "postgresql://core@localhost:5432/core",
         "timeout": 0.5},
        {"name": "monitoring_redis", "url": "redis://localhost:6379/0", "critical": False},
    ],
}  # fmt: skip


async def create_app() -> web.Application:
    app = web.Application()
    await setup_monitoring(MONITORING, app)
    return app


@pytest.fixture
async def app() -> web.Application:
    """The service's app, every dependency forced up before it starts: no check reaches one."""
    app = await create_app()
    force(app, "monitoring_postgres", "up")
    force(app, "monitoring_redis", "up")
    return app


async def test_ready_when_every_dependency_is_up(
    app: web.Application, aiohttp_client: AiohttpClient
) -> None:
    client = await aiohttp_client(app)
    await run_checks(app)
    response = await client.get("/ready")
    assert response.status == 200
    assert sample(app, "monitoring_ready") == 1.0


async def test_not_ready_without_postgres_and_ready_again_when_it_is_back(
    app: web.Application, aiohttp_client: AiohttpClient
) -> None:
    client = await aiohttp_client(app)
    force(app, "monitoring_postgres", "down")
    await run_checks(app)
    response = await client.get("/ready")
    assert response.status == 503
    body = json.loads(await response.text())
    assert body["status"] == "fail"
    assert body["checks"]["monitoring_postgres"][0]["status"] == "fail"

    force(app, "monitoring_postgres", "up")
    await run_checks(app)
    assert (await client.get("/ready")).status == 200


async def test_a_cache_down_does_not_take_the_app_out(
    app: web.Application, aiohttp_client: AiohttpClient
) -> None:
    force(app, "monitoring_redis", "down")  # "critical": False
    client = await aiohttp_client(app)
    await run_checks(app)
    assert (await client.get("/ready")).status == 200
    assert sample(app, "monitoring_check_up", {"check": "monitoring_redis"}) == 0.0


async def test_a_hung_database_takes_the_app_out_after_its_timeout(
    app: web.Application, aiohttp_client: AiohttpClient
) -> None:
    force(app, "monitoring_postgres", "hung")
    client = await aiohttp_client(app)
    await run_checks(app)  # returns once its run has timed out, after 0.5 s
    response = await client.get("/ready")
    assert response.status == 503
    report = json.loads(await response.text())["checks"]["monitoring_postgres"][0]
    assert report["output"] == "no answer within its timeout of 0.5 s"
    runs = {"check": "monitoring_postgres", "result": "timeout"}
    assert sample(app, "monitoring_check_runs_total", runs) == 2
