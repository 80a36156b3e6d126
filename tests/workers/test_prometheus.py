"""The examples scraped by a real Prometheus: every dashboard and alert expression has data."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import subprocess
from typing import Any

import pytest
from aiohttp import ClientSession

from tests.conftest import AmqpNames, tool
from tests.monitoring.conftest import poll
from tests.monitoring.test_exporter import prometheus  # noqa: F401  # the fixture
from tests.monitoring.test_web import ROOT, free_port
from tests.workers.conftest import Program, get_text

yaml = pytest.importorskip("yaml")  # in the test extra; PyYAML ships no type hints

DASHBOARD = ROOT / "contrib" / "grafana" / "aiohttp-booster.json"
ALERTS = ROOT / "contrib" / "prometheus" / "alerts.yml"
ALERT_TESTS = ROOT / "contrib" / "prometheus" / "alerts_test.yml"
RATE_INTERVAL = "30s"  # what Grafana's $__rate_interval becomes here (scrapes every second)
_KEYWORDS = frozenset({"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
                       "group_right", "bool", "offset", "inf", "nan"})  # fmt: skip


def render_preview() -> Any:
    """contrib/grafana/render_preview.py as a module (contrib is no package)."""
    path = ROOT / "contrib" / "grafana" / "render_preview.py"
    spec = importlib.util.spec_from_file_location("render_preview", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dashboard_expressions() -> list[str]:
    """Every target expression of the dashboard, Grafana's interval variable filled in."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    exprs = [target["expr"] for panel in panels for target in panel.get("targets", [])]
    return [expr.replace("$__rate_interval", RATE_INTERVAL) for expr in exprs]


def alert_expressions() -> dict[str, str]:
    """Every alert rule's expression, by alert name."""
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (not functions, keywords or label names)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # strings
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", text)  # matchers and ranges
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = re.findall(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", text)
    return {name for name in names if name.lower() not in _KEYWORDS}


def test_metric_names_are_read_from_expressions() -> None:
    """The name extraction the data check relies on finds selectors only."""
    expr = (
        "histogram_quantile(0.95, sum by (queue, le) (rate(amqp_message_handling_seconds"
        '_bucket{result="x"}[5m]))) and on (job) group by (job) (amqp_messages_in_flight) > 0'
    )
    assert metric_names(expr) == {"amqp_message_handling_seconds_bucket", "amqp_messages_in_flight"}


def test_promtool_checks_the_rules_and_unit_tests_every_alert() -> None:
    """The rules load in Prometheus, and each alert has a unit test of its own."""
    promtool = tool("promtool")
    checked = subprocess.run([promtool, "check", "rules", str(ALERTS)], capture_output=True,
                             text=True, timeout=60)  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run([promtool, "test", "rules", str(ALERT_TESTS)], capture_output=True,
                            text=True, timeout=60, cwd=ALERT_TESTS.parent)  # fmt: skip
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout
    cases = yaml.safe_load(ALERT_TESTS.read_text())["tests"]
    tested_alerts = {
        check["alertname"] for case in cases for check in case["alert_rule_test"]
        if check["exp_alerts"]
    }  # fmt: skip
    assert tested_alerts == set(alert_expressions())


async def query(session: ClientSession, server: str, expr: str) -> dict[str, Any]:
    """The answer of Prometheus's instant query API to ``expr`` (status must be success)."""
    async with session.get(f"{server}/api/v1/query", params={"query": expr}) as response:
        body: dict[str, Any] = await response.json()
    assert body["status"] == "success", (expr, body)
    return body["data"]  # type: ignore[no-any-return]


@pytest.mark.slow
async def test_dashboard_and_alert_expressions_return_data_from_the_examples(
    amqp_url: str,
    redis_url: str,
    pg_dsn: str,
    amqp_names: AmqpNames,
    example: Any,
    prometheus: Any,  # noqa: F811  # the fixture imported above
) -> None:
    """Prometheus scrapes examples/shop_api.py and examples/shop_worker.py while orders flow through
    them; a renamed metric in the dashboard or the alerts leaves an expression empty."""
    api_port, worker_port = free_port(), free_port()
    common = {"AMQP_URL": amqp_url, "EXCHANGE": amqp_names.exchange}
    api: Program = await example("shop_api.py", {**common, "API_PORT": str(api_port),
                                            "REDIS_URL": redis_url, "PG_DSN": pg_dsn})  # fmt: skip
    worker: Program = await example("shop_worker.py", {
        **common, "QUEUE": amqp_names.queue, "WORKER_PORT": str(worker_port),
        "DEAD_LETTER_EXCHANGE": amqp_names.dead_letter_exchange,
    })  # fmt: skip
    api_url, worker_url = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{worker_port}"

    async def both_ready() -> bool:
        for program, url in ((api, api_url), (worker, worker_url)):
            assert program.process.returncode is None, program.output()
            answer = await get_text(f"{url}/ready")
            if answer is None or answer[0] != 200:
                return False
        return True

    await poll(both_ready, timeout=30, interval=0.1)
    server = await prometheus([f"127.0.0.1:{api_port}", f"127.0.0.1:{worker_port}"])
    async with ClientSession() as session:

        async def has(expr: str) -> bool:
            try:
                return bool((await query(session, server, expr))["result"])
            except OSError:
                return False  # Prometheus still starting

        # A first scrape of both before any traffic, so that every counter has a "before".
        await poll(lambda: has('count(up{} == 1) == 2 and count(amqp_connection_up) == 2'),
                   timeout=30, interval=0.2)  # fmt: skip
        for n in range(20):
            async with session.get(f"{api_url}/hello", params={"name": str(n)}) as response:
                assert response.status == 200
            order = {"order": n, "fail": n == 7}  # order 7 is dead-lettered after 2 retries
            async with session.post(f"{api_url}/orders", json=order) as response:
                assert response.status == 202, await response.text()
        async with session.post(f"{api_url}/orders", data="not json") as response:
            assert response.status == 400

        async def dead_lettered() -> bool:
            answer = await get_text(f"{worker_url}/metrics")
            return answer is not None and (
                f'amqp_messages_consumed_total{{queue="{amqp_names.queue}",'
                'result="dead_letter"} 1.0' in answer[1]
            )

        await poll(dead_lettered, timeout=30, interval=0.1)
        pending = set(dashboard_expressions())
        alerts = alert_expressions()
        pending.add(alerts["AmqpDeadLetters"])  # fires: a message was dead-lettered
        names = {name for expr in alerts.values() for name in metric_names(expr)}
        pending.update(f"count({name})" for name in names)

        async def all_have_data() -> bool:
            for expr in list(pending):
                if await has(expr):
                    pending.discard(expr)
            return not pending

        try:
            await poll(all_have_data, timeout=45, interval=0.5)
        except pytest.fail.Exception:
            pytest.fail(f"no data from Prometheus for: {sorted(pending)}")
        for name, expr in alerts.items():  # the others are quiet here, but must evaluate
            assert (await query(session, server, expr))["resultType"] == "vector", name
    svg = await asyncio.to_thread(render_preview().render, server, 1.0)
    assert svg.count("<polyline") >= 12  # the docs' preview: most panels drawn from data
    assert await worker.stop() == 0, worker.output()
    assert await api.stop() == 0, api.output()
