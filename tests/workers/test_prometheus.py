"""The examples scraped by a real Prometheus, as a fleet: two replicas of the example API (one
of them with a dependency down) and a worker. Every dashboard query has data, each status
panel shows the down replica, and every alert expression evaluates; promtool unit-tests the
alerts."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession

from tests.amqp.conftest import close_connections_named
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
#: set to a path, the fleet test also keeps orders flowing for PREVIEW_SECONDS (default 240,
#: one forced reconnect of the worker halfway) and writes the dashboard's preview there:
#:   BOOSTER_DASHBOARD_PREVIEW=docs/images/dashboard-preview.svg \
#:       python -m pytest tests/workers/test_prometheus.py -k fleet
PREVIEW = os.environ.get("BOOSTER_DASHBOARD_PREVIEW")
PREVIEW_SECONDS = float(os.environ.get("BOOSTER_PREVIEW_SECONDS", "240"))
_KEYWORDS = frozenset({"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
                       "group_right", "bool", "offset", "inf", "nan"})  # fmt: skip
_LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>\w+)\)$")


def render_preview() -> Any:
    """contrib/grafana/render_preview.py as a module (contrib is no package)."""
    path = ROOT / "contrib" / "grafana" / "render_preview.py"
    spec = importlib.util.spec_from_file_location("render_preview", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())  # type: ignore[no-any-return]


def fill(expr: str, **chosen: str) -> str:
    """``expr`` with Grafana's variables filled in: each at "All" (``.*``) unless chosen."""
    values = {**render_preview().variables(dashboard()), "__rate_interval": RATE_INTERVAL}
    return render_preview().filled(expr, {**values, **chosen})  # type: ignore[no-any-return]


def panel_queries(**chosen: str) -> dict[str, list[str]]:
    """Every panel's target expressions by panel title, variables filled in."""
    panels = [panel for panel in dashboard()["panels"] if panel.get("targets")]
    return {
        panel["title"]: [fill(target["expr"], **chosen) for target in panel["targets"]]
        for panel in panels
    }


def dashboard_expressions() -> list[str]:
    """Every target expression of the dashboard, its variables at "All"."""
    return [expr for exprs in panel_queries().values() for expr in exprs]


def status_panels() -> list[str]:
    """The titles of the panels that show a state per instance (up/down timelines)."""
    return [panel["title"] for panel in dashboard()["panels"] if panel["type"] == "state-timeline"]


def variable_queries() -> dict[str, str]:
    """Each variable's ``label_values(selector, label)`` as the PromQL that lists the same
    values (``group by (label) (selector)``), the variables it uses at "All"."""
    found = {}
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] != "query":
            continue
        match = _LABEL_VALUES.match(variable["query"]["query"])
        assert match is not None, variable
        found[variable["name"]] = fill(f"group by ({match['label']}) ({match['selector']})")
    return found


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def alert_expressions() -> dict[str, str]:
    """Every alert rule's expression, by alert name."""
    return {rule["alert"]: rule["expr"] for rule in alert_rules()}


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


def test_every_query_of_the_dashboard_is_scoped_by_the_job_and_instance_variables() -> None:
    """A fleet's services must not merge: each selector of each panel carries the variables,
    and the check panels the check variable too."""
    assert set(render_preview().variables(dashboard())) == {"job", "instance", "check"}
    for title, exprs in panel_queries(job="J", instance="I", check="C").items():
        for expr in exprs:
            selectors = re.findall(r"\b[a-z_:]+\{[^}]*\}", expr)
            assert selectors, (title, expr)
            for selector in selectors:
                assert 'job=~"J"' in selector, (title, selector)
                assert 'instance=~"I"' in selector, (title, selector)
                if selector.startswith("monitoring_check"):
                    assert 'check=~"C"' in selector, (title, selector)
            assert "$" not in expr, (title, expr)


def test_promtool_checks_the_rules_and_unit_tests_every_alert() -> None:
    """The rules load in Prometheus, each alert has a unit test where it fires and one where
    it stays silent, and every alert waits (``for:``) before firing: none pages on one
    evaluation."""
    promtool = tool("promtool")
    checked = subprocess.run([promtool, "check", "rules", str(ALERTS)], capture_output=True,
                             text=True, timeout=60)  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run([promtool, "test", "rules", str(ALERT_TESTS)], capture_output=True,
                            text=True, timeout=60, cwd=ALERT_TESTS.parent)  # fmt: skip
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout
    cases = yaml.safe_load(ALERT_TESTS.read_text())["tests"]
    checks = [check for case in cases for check in case["alert_rule_test"]]
    firing = {check["alertname"] for check in checks if check["exp_alerts"]}
    silent = {check["alertname"] for check in checks if not check["exp_alerts"]}
    assert firing == set(alert_expressions())
    assert silent == set(alert_expressions())
    assert [rule["alert"] for rule in alert_rules() if "for" not in rule] == []


def test_every_alert_is_explained_in_the_docs() -> None:
    """An operator paged by an alert finds what it means and what to do in docs/workers.md."""
    page = (ROOT / "docs" / "workers.md").read_text(encoding="utf-8")
    alerts = page[page.index("## Alerts") :]
    for name in alert_expressions():
        assert f"`{name}` (" in alerts, name


def test_the_stalled_consumer_alert_joins_nothing_across_services() -> None:
    """The false positive of the old rule: an ``on ()`` join with any publish anywhere."""
    expr = alert_expressions()["AmqpConsumerStalled"]
    assert "on ()" not in expr
    assert "amqp_messages_published_total" not in expr
    assert metric_names(expr) == {"amqp_queue_messages", "amqp_messages_consumed_total"}


async def query(session: ClientSession, server: str, expr: str) -> dict[str, Any]:
    """The answer of Prometheus's instant query API to ``expr`` (status must be success)."""
    async with session.get(f"{server}/api/v1/query", params={"query": expr}) as response:
        body: dict[str, Any] = await response.json()
    assert body["status"] == "success", (expr, body)
    return body["data"]  # type: ignore[no-any-return]


async def instant(
    session: ClientSession, server: str, expr: str
) -> list[tuple[dict[str, str], float]]:
    """The series of an instant query: labels and value."""
    result = (await query(session, server, expr))["result"]
    return [(item["metric"], float(item["value"][1])) for item in result]


@pytest.mark.slow
async def test_a_fleet_of_two_api_replicas_and_a_worker_fills_every_panel(
    amqp_url: str,
    redis_url: str,
    pg_dsn: str,
    amqp_names: AmqpNames,
    example: Any,
    pushgateway: str,
    prometheus: Any,  # noqa: F811  # the fixture imported above
) -> None:
    """Prometheus scrapes two replicas of examples/shop_api.py, one of which cannot reach its
    Redis, and examples/shop_worker.py (which also pushes to a Pushgateway) while orders flow
    through them. Every panel's query and variable has data, a renamed metric in the
    dashboard or the alerts leaves one empty; each status panel shows the down replica as
    down beside the healthy one as up; every alert expression evaluates."""
    api_port, down_port, worker_port = free_port(), free_port(), free_port()
    queue = amqp_names.queue
    if PREVIEW:  # a name that fits the preview's legends, deleted afterwards like the others
        queue = "preview.billing"
        amqp_names.more_queues.extend([queue, f"{queue}.dlq"])
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    common = {"AMQP_URL": amqp_url, "EXCHANGE": amqp_names.exchange, "PG_DSN": pg_dsn}
    api: Program = await example("shop_api.py", {**common, "API_PORT": str(api_port),
                                                 "REDIS_URL": redis_url})  # fmt: skip
    down: Program = await example("shop_api.py", {**common, "API_PORT": str(down_port),
                                                  "REDIS_URL": dead_redis})  # fmt: skip
    worker: Program = await example("shop_worker.py", {
        **common, "QUEUE": queue, "WORKER_PORT": str(worker_port),
        "DEAD_LETTER_EXCHANGE": amqp_names.dead_letter_exchange,
        "PUSHGATEWAY_URL": pushgateway, "PUSH_INTERVAL": "1",
    })  # fmt: skip
    api_at, down_at, worker_at = (f"127.0.0.1:{port}" for port in (api_port, down_port,
                                                                    worker_port))  # fmt: skip
    expected = ((api, api_at, 200), (down, down_at, 503), (worker, worker_at, 200))

    async def all_answer() -> bool:
        for program, where, status in expected:
            assert program.process.returncode is None, program.output()
            answer = await get_text(f"http://{where}/ready")
            if answer is None or answer[0] != status:
                return False
        return True

    await poll(all_answer, timeout=30, interval=0.1)
    server = await prometheus([], jobs=[
        {"job_name": "api", "static_configs": [{"targets": [api_at, down_at]}]},
        {"job_name": "worker", "static_configs": [{"targets": [worker_at]}]},
        # the Pushgateway's own series only: the worker is scraped already
        {"job_name": "pushgateway", "honor_labels": True,
         "static_configs": [{"targets": [pushgateway.removeprefix("http://")]}],
         "metric_relabel_configs": [{"source_labels": ["__name__"], "action": "keep",
                                     "regex": "push_time_seconds"}]},
    ])  # fmt: skip
    started = asyncio.get_running_loop().time()
    async with ClientSession() as session:

        async def has(expr: str) -> bool:
            try:
                return bool((await query(session, server, expr))["result"])
            except OSError:
                return False  # Prometheus still starting

        # A first scrape of all before any traffic, so that every counter has a "before".
        await poll(lambda: has("count(up == 1) == 4 and count(amqp_connection_up) == 3"),
                   timeout=30, interval=0.2)  # fmt: skip

        async def orders(count: int, first: int, fail_every: int) -> None:
            for n in range(first, first + count):
                at = (api_at, down_at)[n % 2]
                async with session.get(f"http://{at}/hello", params={"name": str(n)}) as answer:
                    assert answer.status == 200
                order = {"order": n, "fail": n % fail_every == 7}  # retried twice, dead-lettered
                async with session.post(f"http://{at}/orders", json=order) as answer:
                    assert answer.status == 202, await answer.text()

        await orders(20, 0, 20)
        async with session.post(f"http://{api_at}/orders", data="not json") as response:
            assert response.status == 400

        async def dead_lettered() -> bool:
            answer = await get_text(f"http://{worker_at}/metrics")
            return answer is not None and (
                f'amqp_messages_consumed_total{{queue="{queue}",'
                'result="dead_letter"} 1.0' in answer[1]
            )

        await poll(dead_lettered, timeout=30, interval=0.1)
        pending = set(dashboard_expressions()) | set(variable_queries().values())
        alerts = alert_expressions()
        pending.add(alerts["AmqpDeadLetters"])  # true: a message was dead-lettered
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

        # Each status panel: the down replica is down, the healthy one and the worker up.
        for title in status_panels():
            (expr,) = panel_queries()[title]
            worst: dict[str, float] = {}
            for labels, value in await instant(session, server, expr):
                worst[labels["instance"]] = min(value, worst.get(labels["instance"], 1.0))
            assert worst == {api_at: 1.0, down_at: 0.0, worker_at: 1.0}, (title, worst)
        checks = await instant(session, server, panel_queries()["Check status"][0])
        redis = {labels["instance"]: value for labels, value in checks
                 if labels["check"] == "monitoring_redis"}  # fmt: skip
        assert redis == {api_at: 1.0, down_at: 0.0}  # max by (check) showed 1: hidden
        # The variables narrow every panel: one instance, one check.
        (only,) = panel_queries(instance=down_at, check="monitoring_redis")["Check status"]
        assert [labels["instance"] for labels, _ in await instant(session, server, only)] == [
            down_at
        ]
        instances = await instant(session, server, variable_queries()["instance"])
        assert {labels["instance"] for labels, _ in instances} == {api_at, down_at, worker_at}
        # The worker's queue: drained, one consumer.
        ready, consumers = panel_queries()["Queue depth"]
        assert [value for _, value in await instant(session, server, ready)] == [0.0]
        assert [value for _, value in await instant(session, server, consumers)] == [1.0]
        for name, expr in alerts.items():  # quiet here (a for: delay or no problem), but valid
            assert (await query(session, server, expr))["resultType"] == "vector", name
        for name in ("AmqpConsumerStalled", "ScrapeTargetDown", "PushgatewayGroupStale"):
            assert await instant(session, server, alerts[name]) == [], name

        if PREVIEW:  # bursts of orders (3% failing), one forced reconnect halfway
            loop = asyncio.get_running_loop()
            ends, cut = loop.time() + PREVIEW_SECONDS, False
            sent = 100
            while loop.time() < ends:
                await orders(25, sent, 33)
                sent += 25
                if not cut and loop.time() > ends - PREVIEW_SECONDS / 2:
                    pid = worker.process.pid
                    cut = await close_connections_named(f"billing worker pid {pid}", 1) == 1
                await asyncio.sleep(2)  # the pause between two bursts, for the picture

    async def drawn() -> str | None:
        """The preview once every panel has a line (a rate needs two scrapes in its window,
        which an instant query over a longer one may have had already)."""
        minutes = (asyncio.get_running_loop().time() - started) / 60  # all Prometheus saw
        svg: str = await asyncio.to_thread(render_preview().render, server, minutes)
        return None if "no data" in svg else svg

    svg = await poll(drawn, timeout=30, interval=0.5)
    assert svg.count("<polyline") >= 30  # every panel drawn from data, most with several lines
    if PREVIEW:
        await asyncio.to_thread(Path(PREVIEW).write_text, svg)
    for program in (worker, api, down):
        assert await program.stop() == 0, program.output()
