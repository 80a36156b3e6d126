"""The monitoring docs page and examples/shop_api.py, executed: what we show must work."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from aiohttp_prometheus_monitoring import WrongConfiguration
from aiohttp_prometheus_monitoring.config import load_config
from tests.monitoring.conftest import ServeFactory, samples
from tests.monitoring.test_config import talk_monitoring
from tests.monitoring.test_web import free_port, run_until_gauges

ROOT = Path(__file__).resolve().parents[2]
PAGE = (ROOT / "docs" / "monitoring.md").read_text(encoding="utf-8")


def blocks(language: str) -> list[str]:
    """The fenced code blocks of the monitoring page in ``language``, in order."""
    return re.findall(rf"^```{language}\n(.*?)^```$", PAGE, flags=re.MULTILINE | re.DOTALL)


@pytest.fixture
def docs_namespace(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Every Python block of the page run in order; the custom check lives in
    ``myservice.checks``, as the page tells the reader to put it."""
    package, module = types.ModuleType("myservice"), types.ModuleType("myservice.checks")
    package.checks = module  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "myservice", package)
    monkeypatch.setitem(sys.modules, "myservice.checks", module)
    namespace: dict[str, Any] = {}
    for code in blocks("python"):
        target = module.__dict__ if "class FreeDiskMetric" in code else namespace
        exec(compile(code, str(PAGE), "exec"), target)  # noqa: S102 - our own docs
    return namespace


def test_page_configs_are_valid(docs_namespace: dict[str, Any]) -> None:
    """A config copied from the docs must load as shown."""
    assert [c.name for c in load_config(docs_namespace["MONITORING"]).metrics] == [
        "monitoring_redis", "monitoring_postgres",
    ]  # fmt: skip
    assert load_config(docs_namespace["CUSTOM_MONITORING"]).metrics[0].kind == "disk"


async def test_page_create_app_sets_up_monitoring(docs_namespace: dict[str, Any]) -> None:
    """The first sample of the page builds an app with /ping and /metrics."""
    app = await docs_namespace["create_app"]()
    paths = {route.resource.canonical for route in app.router.routes() if route.resource}
    assert {"/ping", "/metrics"} <= paths


async def test_custom_check_from_the_docs_runs(
    docs_namespace: dict[str, Any], serve: ServeFactory
) -> None:
    """The documented custom check works end to end, up and down."""
    config = docs_namespace["CUSTOM_MONITORING"]
    served = await serve(config)
    text = await served.wait_gauges({"monitoring_disk": 1.0})
    labels = (("check", "monitoring_disk"), ("kind", "disk"))
    assert samples(text)[("monitoring_check_up", labels)] == 1.0
    too_much = {"path": "/", "min_free_bytes": 1 << 62}
    full = {"metrics": [{**config["metrics"][0], "params": too_much}]}
    await (await serve(full)).wait_gauges({"monitoring_disk": 0.0})


def test_error_sample_on_the_page_is_what_users_get() -> None:
    """The page shows a WrongConfiguration message; it must be the real one, verbatim."""
    config = talk_monitoring()
    config["metrics"][1]["sleep_time"] = 0
    config["metrics"][1], config["metrics"][0] = config["metrics"][0], config["metrics"][1]
    config["metrics"][2]["params"]["hots"] = config["metrics"][2]["params"].pop("host")
    with pytest.raises(WrongConfiguration) as caught:
        load_config(config)
    sample = next(block for block in blocks("text") if "invalid MONITORING" in block)
    assert str(caught.value) + "\n" == sample


async def test_example_api_serves_all_gauges_up(redis_url: str, amqp_url: str, pg_dsn: str) -> None:
    """examples/shop_api.py is the main job's program: its four checks must all come up, it
    must be ready, and its own requests (the HTTP check's) must be counted."""
    port = free_port()
    env = {"API_PORT": str(port), "REDIS_URL": redis_url, "AMQP_URL": amqp_url, "PG_DSN": pg_dsn}
    output = await run_until_gauges(
        [str(ROOT / "examples" / "shop_api.py")], port,
        dict.fromkeys(["monitoring_http", "monitoring_redis", "monitoring_mq",
                       "monitoring_postgres", "monitoring_ready"], 1.0),
        env=env,
    )  # fmt: skip
    assert f"http://127.0.0.1:{port}/ping" in output
    assert f"http://127.0.0.1:{port}/metrics" in output
    assert 'http_requests_total{handler="/hello",method="GET",status="200"}' in output


def test_page_compact_config_is_valid(docs_namespace: dict[str, Any]) -> None:
    """The compact sample of the page loads, one built-in check per scheme."""
    checks = load_config(docs_namespace["COMPACT_MONITORING"]).metrics
    assert [c.kind for c in checks] == ["redis", "postgres", "amqp", "http", "tcp"]
    assert [c.sleep_time for c in checks] == [5.0, 5.0, 5.0, 5.0, 30.0]
