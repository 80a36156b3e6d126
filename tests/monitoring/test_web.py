"""setup_monitoring in an aiohttp app: both setup patterns, routes, exposition, registries."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest
from aiohttp import web
from prometheus_client import Counter

from aiohttp_prometheus_monitoring import (
    REGISTRY_KEY,
    MonitoringError,
    get_monitoring,
    setup_monitoring,
)
from tests.conftest import promtool_check_metrics
from tests.monitoring.conftest import (
    ServeFactory,
    entry,
    run_until_gauges_shown,
    samples,
)

ROOT = Path(__file__).resolve().parents[2]
F = "tests.monitoring.fakes."
TALK_GAUGES = ("monitoring_http", "monitoring_redis", "monitoring_mq", "monitoring_postgres")
TALK_HELP = {
    "monitoring_http": "Check HTTP status",
    "monitoring_redis": "Check redis connection",
    "monitoring_mq": "Check MQ connection",
    "monitoring_postgres": "Check postgres connection",
}
BAD_STDERR = ("Traceback", "Task was destroyed", "Unclosed", "unclosed", "never awaited",
              "Exception ignored", "ResourceWarning")  # fmt: skip


def free_port() -> int:
    """A loopback port free at the time of asking."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def run_until_gauges(
    args: list[str], port: int, gauges: dict[str, float], env: dict[str, str] | None = None
) -> str:
    """Run a program serving /metrics on ``port``; return /metrics once ``gauges`` show,
    after a clean SIGINT shutdown (exit code 0, nothing alarming on stderr)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "always::ResourceWarning",
           **(env or {})}  # fmt: skip
    ran = await run_until_gauges_shown([sys.executable, *args], cwd=ROOT, env=env, port=port,
                                       gauges=gauges)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert not [bad for bad in BAD_STDERR if bad in ran.stderr], ran.stderr
    return ran.metrics + "\n" + ran.stdout


@pytest.mark.parametrize("mode", ["talk", "modern"])
async def test_talk_sample_shows_all_four_gauges_up(
    mode: str, redis_url: str, amqp_url: str, pg_dsn: str
) -> None:
    """The talk's setup (setup on one loop, run_app on another) and the modern one both
    run the checks on the serving loop: the 2018 code left every gauge at 0 here."""
    port = free_port()
    text = await run_until_gauges(
        [str(ROOT / "tests" / "monitoring" / "talk_app.py"), mode, str(port)], port,
        dict.fromkeys(TALK_GAUGES, 1.0),
    )  # fmt: skip
    for name, description in TALK_HELP.items():
        assert f"# HELP {name} {description}\n# TYPE {name} gauge\n{name} 1.0\n" in text


async def test_two_apps_with_the_same_config_both_work(serve: ServeFactory) -> None:
    """Tests, workers and multi-app processes build several apps: registries must not collide."""
    config = {"metrics": [entry("monitoring_cheap", F + "AlwaysUp", {})]}
    first, second = await serve(config), await serve(config)
    await first.wait_gauges({"monitoring_cheap": 1.0})
    await second.wait_gauges({"monitoring_cheap": 1.0})
    assert first.app[REGISTRY_KEY] is not second.app[REGISTRY_KEY]


async def test_ping_answers_pong_and_routes_are_configurable(serve: ServeFactory) -> None:
    """Liveness probes hit /ping; some platforms want other paths, or none."""
    served = await serve({"route_ping": "/healthz", "route_metrics": "/prometheus"})
    async with served.session.get(served.url("/healthz")) as response:
        assert (response.status, await response.text()) == (200, "pong")
    async with served.session.get(served.url("/prometheus")) as response:
        assert response.status == 200
    async with served.session.get(served.url("/metrics")) as response:
        assert response.status == 404
    quiet = await serve({"route_ping": None})
    async with quiet.session.get(quiet.url("/ping")) as response:
        assert response.status == 404


async def test_metrics_speaks_openmetrics_when_asked(serve: ServeFactory) -> None:
    """Prometheus negotiates OpenMetrics; the classic text format stays the default."""
    served = await serve({"metrics": [entry("monitoring_cheap", F + "AlwaysUp", {})]})
    await served.wait_gauges({"monitoring_cheap": 1.0})
    accept = "application/openmetrics-text; version=1.0.0; charset=utf-8"
    async with served.session.get(served.url("/metrics"), headers={"Accept": accept}) as response:
        body = await response.text()
        assert response.content_type == "application/openmetrics-text"
    assert body.endswith("# EOF\n")
    assert "monitoring_cheap 1.0" in body
    async with served.session.get(served.url("/metrics")) as response:
        assert response.content_type == "text/plain"


async def test_default_registry_is_included_unless_turned_off(serve: ServeFactory) -> None:
    """Process and runtime metrics come for free; a switch drops them for lean scrapes."""
    with_default = await serve({"metrics": []})
    text = await with_default.metrics()
    assert "python_info" in text
    assert "process_open_fds" in text or sys.platform != "linux"
    without = await serve({"metrics": [], "include_default_registry": False})
    assert "python_info" not in await without.metrics()


async def test_the_apps_own_metrics_go_in_its_registry(serve: ServeFactory) -> None:
    """Apps add their own metrics to the registry monitoring serves, with no global state."""
    served = await serve({"metrics": []})
    hits = Counter("hello_hits", "Hello requests served.", registry=served.app[REGISTRY_KEY])
    hits.inc(3)
    assert samples(await served.metrics())[("hello_hits_total", ())] == 3.0


async def test_all_families_are_shown_once_a_check_ran(serve: ServeFactory) -> None:
    """Dashboards and alerts rely on every monitoring_check_* family docs/design.md lists."""
    served = await serve({"metrics": [entry("monitoring_cheap", F + "AlwaysUp", {}, timeout=2)]})
    text = await served.wait_gauges({"monitoring_cheap": 1.0})
    values = samples(text)
    check = ("check", "monitoring_cheap")
    assert values[("monitoring_check_up", (check, ("kind", "custom")))] == 1.0
    assert 0 <= values[("monitoring_check_duration_seconds", (check,))] < 1
    assert values[("monitoring_check_last_success_timestamp_seconds", (check,))] > 1.7e9
    assert values[("monitoring_check_timeout_seconds", (check,))] == 2.0
    for result in ("success", "failure", "timeout", "error"):
        assert ("monitoring_check_runs_total", (check, ("result", result))) in values


async def test_promtool_finds_nothing_to_complain_about(serve: ServeFactory) -> None:
    """Prometheus' own linter is the judge of a well-formed exposition."""
    served = await serve({"metrics": [
        entry("monitoring_up", F + "AlwaysUp", {}),
        entry("monitoring_down", F + "Raises", {}),
        entry("monitoring_protocol_only", F + "NotABaseMetric", {"answer": False}),
    ]})  # fmt: skip
    text = await served.wait_gauges(
        {"monitoring_up": 1.0, "monitoring_down": 0.0, "monitoring_protocol_only": 0.0}
    )
    await promtool_check_metrics(text)


async def test_setup_on_a_running_app_is_refused(serve: ServeFactory) -> None:
    """Routes cannot be added once an app runs: say so plainly, not with aiohttp's internals."""
    served = await serve({"metrics": []})
    other = web.Application()
    other.freeze()
    with pytest.raises(MonitoringError, match=r"must be called before the app starts"):
        await setup_monitoring({"metrics": []}, other)
    assert get_monitoring(served.app).config.metrics == ()


def test_get_monitoring_says_to_call_setup_first() -> None:
    """An accessor used before setup must point at the missing call."""
    with pytest.raises(MonitoringError, match=r"call setup_monitoring\(\) first"):
        get_monitoring(web.Application())


async def test_a_check_named_like_a_default_metric_wins_without_duplicates(
    serve: ServeFactory,
) -> None:
    """Duplicate series make Prometheus reject the whole scrape: the user's gauge wins."""
    served = await serve({"metrics": [entry("python_info", F + "AlwaysUp", {})]})
    text = await served.wait_gauges({"python_info": 1.0})
    assert [line for line in text.splitlines() if line.startswith("python_info")] == [
        "python_info 1.0"
    ]
    assert "process_" in text or sys.platform != "linux"  # the rest of the default registry
