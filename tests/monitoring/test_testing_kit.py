"""aiohttp_prometheus_monitoring.testing: checks forced up, down or hung run through the
production scheduler, /metrics and /ready, and give what real dependencies give."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from aiohttp_prometheus_monitoring import MonitoringError, setup_monitoring
from aiohttp_prometheus_monitoring.metrics.base import BaseMetric
from aiohttp_prometheus_monitoring.testing import State, force, release, run_checks, sample
from tests.monitoring.conftest import SilentListener, entry, samples
from tests.monitoring.fakes import Switch
from tests.monitoring.test_checks import CHECKS

ROOT = Path(__file__).resolve().parents[2]
F = "tests.monitoring.fakes."
RESULTS = ("success", "failure", "timeout", "error")

Client = TestClient[web.Request, web.Application]


class Blocking(BaseMetric):
    """Says when its run has started, and answers up once the test opens its gate."""

    events: ClassVar[dict[str, tuple[asyncio.Event, asyncio.Event]]] = {}

    def __init__(self, key: str) -> None:
        self.key = key

    async def check(self) -> bool:
        started, gate = self.events[self.key]
        started.set()
        await gate.wait()
        return True


def redis(port: int) -> dict[str, Any]:
    """A Redis check of a loopback port; forced, it needs no Redis server."""
    params = {"host": "127.0.0.1", "port": port}
    return entry("monitoring_redis", "redis.RedisMetric", params, sleep_time=60)


def check(name: str, fake: str, **extra: Any) -> dict[str, Any]:
    """An entry of one of the fake checks, run at start-up and then not for a minute."""
    return entry(name, F + fake, extra.pop("params", {}), sleep_time=60, **extra)


def blocking(key: str, **extra: Any) -> tuple[dict[str, Any], asyncio.Event, asyncio.Event]:
    """A ``Blocking`` check's entry, and the events that say it started and let it finish."""
    started, gate = Blocking.events[key] = (asyncio.Event(), asyncio.Event())
    config = {"metrics": [entry("monitoring_gate", f"{__name__}.Blocking", {"key": key},
                                sleep_time=60, **extra)]}  # fmt: skip
    return config, started, gate


async def monitored(config: dict[str, Any]) -> web.Application:
    """An app set up with ``config`` and a readiness route, not started."""
    app = web.Application()
    await setup_monitoring({"route_ready": "/ready", **config}, app)
    return app


async def start(
    aiohttp_client: AiohttpClient, config: dict[str, Any], forced: dict[str, State] | None = None
) -> tuple[web.Application, Client]:
    """An app with ``config``, its checks forced as given before it starts, served by
    pytest-aiohttp's client; its checks ran at start-up and once more."""
    app = await monitored(config)
    for name, state in (forced or {}).items():
        force(app, name, state)
    client = await aiohttp_client(app)
    await run_checks(app)
    return app, client


async def ready(client: Client) -> tuple[int, dict[str, Any]]:
    response = await client.get("/ready")
    return response.status, json.loads(await response.text())


def runs(app: web.Application, name: str) -> dict[str, float | None]:
    """The check's finished runs by result, as /metrics shows them."""
    labels = [{"check": name, "result": result} for result in RESULTS]
    return {found["result"]: sample(app, "monitoring_check_runs_total", found) for found in labels}


def counts(**by_result: int) -> dict[str, float | None]:
    return {result: by_result.get(result, 0) for result in RESULTS}


async def test_a_check_from_the_config_is_forced_without_its_server(
    aiohttp_client: AiohttpClient, closed_port: int
) -> None:
    """A Redis check of a port nothing listens on is up, then down, when forced so; released,
    it runs its own probe again, which the refused port makes fail."""
    config = {"metrics": [redis(closed_port)]}
    app, client = await start(aiohttp_client, config, {"monitoring_redis": "up"})
    assert sample(app, "monitoring_redis") == 1.0
    assert sample(app, "monitoring_check_up", {"check": "monitoring_redis", "kind": "redis"}) == 1
    # forced before the app started: not even the first run reached the closed port
    assert runs(app, "monitoring_redis") == counts(success=2)
    assert (await ready(client))[0] == 200

    force(app, "monitoring_redis", "down")
    await run_checks(app)
    status, body = await ready(client)
    assert (status, sample(app, "monitoring_redis")) == (503, 0.0)
    output = body["checks"]["monitoring_redis"][0]["output"]
    assert output == "ForcedDown: forced down by aiohttp_prometheus_monitoring.testing"
    assert runs(app, "monitoring_redis") == counts(success=2, error=1)

    release(app, "monitoring_redis")
    await run_checks(app)
    status, body = await ready(client)
    assert (status, sample(app, "monitoring_redis")) == (503, 0.0)
    output = body["checks"]["monitoring_redis"][0]["output"]
    assert "ForcedDown" not in output
    assert str(closed_port) in output  # the real refusal
    assert runs(app, "monitoring_redis") == counts(success=2, error=2)


async def test_a_forced_custom_check_is_never_called(aiohttp_client: AiohttpClient) -> None:
    """Only the probe is replaced: the check's own check() is not called while it is forced,
    and is called again once released."""
    key = "kit-custom"
    Switch.starts.pop(key, None)
    config = {"metrics": [check("monitoring_switch", "Switch", params={"key": key})]}
    app, _ = await start(aiohttp_client, config, {"monitoring_switch": "down"})
    assert key not in Switch.starts
    assert sample(app, "monitoring_check_up", {"check": "monitoring_switch", "kind": "custom"}) == 0

    release(app, "monitoring_switch")
    await run_checks(app)
    assert len(Switch.starts[key]) == 1
    assert sample(app, "monitoring_switch") == 1.0


async def test_a_forced_hung_check_times_out_as_a_hung_check_does(
    aiohttp_client: AiohttpClient,
) -> None:
    """'hung' never answers: the scheduler's timeout cancels the run, and /ready and /metrics
    say what they say of a timed out check."""
    config = {"metrics": [check("monitoring_up", "AlwaysUp", timeout=0.2)]}
    app, client = await start(aiohttp_client, config, {"monitoring_up": "hung"})
    assert runs(app, "monitoring_up") == counts(timeout=2)
    duration = sample(app, "monitoring_check_duration_seconds", {"check": "monitoring_up"})
    assert duration is not None
    assert duration > 0.19  # the timeout of 0.2 s, give or take the clock's resolution
    status, body = await ready(client)
    assert status == 503
    assert body["checks"]["monitoring_up"][0]["output"] == "no answer within its timeout of 0.2 s"


async def test_run_checks_runs_each_check_exactly_once_more(
    aiohttp_client: AiohttpClient,
) -> None:
    config = {"metrics": [check("monitoring_a", "AlwaysUp"), check("monitoring_b", "ReturnsFalse")]}
    app, _ = await start(aiohttp_client, config)
    assert (runs(app, "monitoring_a"), runs(app, "monitoring_b")) == (
        counts(success=2), counts(failure=2)
    )  # fmt: skip
    await run_checks(app)
    await run_checks(app)
    assert (runs(app, "monitoring_a"), runs(app, "monitoring_b")) == (
        counts(success=4), counts(failure=4)
    )  # fmt: skip


async def test_run_checks_waits_for_a_run_that_starts_after_it_was_asked(
    aiohttp_client: AiohttpClient,
) -> None:
    """A check in the middle of a run finishes it first; run_checks returns once the next run
    is recorded, never with the result of the one already under way."""
    config, started, gate = blocking("gate", timeout=0.5)
    app = await monitored(config)
    await aiohttp_client(app)
    await started.wait()  # the first run is under way, with the check's own probe
    force(app, "monitoring_gate", "hung")  # the next run takes its timeout
    asked = asyncio.create_task(run_checks(app))
    gate.set()
    await asked
    assert runs(app, "monitoring_gate") == counts(success=1, timeout=1)
    assert sample(app, "monitoring_gate") == 0.0


async def test_run_checks_needs_a_started_app() -> None:
    app = await monitored({"metrics": [check("monitoring_a", "AlwaysUp")]})
    message = (
        "the checks are not running: the app has not started "
        "(in a test, start it with aiohttp_client(app))"
    )
    with pytest.raises(MonitoringError, match=f"^{re.escape(message)}$"):
        await run_checks(app)


async def test_run_checks_of_an_app_without_checks_returns(aiohttp_client: AiohttpClient) -> None:
    app, client = await start(aiohttp_client, {"metrics": []})
    assert (await ready(client))[0] == 200
    assert sample(app, "monitoring_ready") == 1.0


async def test_run_checks_fails_when_the_app_stops_first(aiohttp_client: AiohttpClient) -> None:
    """A run asked for that the shutdown cancels is an error, not a wait forever."""
    config, started, _ = blocking("stop")
    app = await monitored(config)
    client = await aiohttp_client(app)
    await started.wait()
    # gather starts run_checks first, so it has asked by the time the app shuts down
    asked, closed = await asyncio.gather(run_checks(app), client.close(), return_exceptions=True)
    assert closed is None
    assert isinstance(asked, MonitoringError)
    assert str(asked) == "the checks stopped before running again"


async def test_sample_reads_what_metrics_shows(
    aiohttp_client: AiohttpClient, closed_port: int
) -> None:
    """Every sample /metrics writes, sample() reads with the same value."""
    config = {
        "include_default_registry": False,
        "metrics": [redis(closed_port), check("monitoring_up", "AlwaysUp")],
    }
    app, client = await start(aiohttp_client, config)
    shown = samples(await (await client.get("/metrics")).text())
    # each check's gauge, up, duration, timeout and 4 run counts; one last success; ready
    assert len(shown) == 2 * 8 + 1 + 1
    for (name, labels), value in shown.items():
        assert sample(app, name, dict(labels)) == value, (name, labels)
    last_success = "monitoring_check_last_success_timestamp_seconds"
    assert sample(app, last_success, {"check": "monitoring_redis"}) is None
    assert sample(app, "monitoring_check_up", {"check": "monitoring_up", "kind": "x"}) is None
    assert sample(app, "no_such_sample") is None


async def test_a_check_that_has_not_run_has_no_sample(aiohttp_client: AiohttpClient) -> None:
    config, started, gate = blocking("unseen")
    app = await monitored(config)
    await aiohttp_client(app)
    await started.wait()
    assert sample(app, "monitoring_gate") is None
    assert sample(app, "monitoring_check_up", {"check": "monitoring_gate"}) is None
    assert sample(app, "monitoring_ready") == 0.0
    gate.set()
    await run_checks(app)
    assert sample(app, "monitoring_gate") == 1.0


async def test_sample_refuses_an_ambiguous_question(aiohttp_client: AiohttpClient) -> None:
    config = {"metrics": [check("monitoring_a", "AlwaysUp"), check("monitoring_b", "AlwaysUp")]}
    app, _ = await start(aiohttp_client, config)
    message = (
        "sample(): 4 samples monitoring_check_runs_total have the labels "
        "{'check': 'monitoring_a'}; give labels that pick one of: "
        "{'check': 'monitoring_a', 'result': 'success'}, "
        "{'check': 'monitoring_a', 'result': 'failure'}, "
        "{'check': 'monitoring_a', 'result': 'timeout'}, "
        "{'check': 'monitoring_a', 'result': 'error'}"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        sample(app, "monitoring_check_runs_total", {"check": "monitoring_a"})
    with pytest.raises(
        ValueError, match=re.escape("2 samples monitoring_check_up have the labels {}")
    ):
        sample(app, "monitoring_check_up")


async def test_sample_refuses_mistyped_arguments() -> None:
    app = await monitored({"metrics": []})
    with pytest.raises(TypeError, match=re.escape("name: expected a sample name (a str), got 1")):
        sample(app, 1)  # type: ignore[arg-type]
    labels = "labels: expected a dict of str to str or None, got "
    with pytest.raises(TypeError, match=re.escape(labels + "{'check': 1}")):
        sample(app, "monitoring_check_up", {"check": 1})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match=re.escape(labels + "['check']")):
        sample(app, "monitoring_check_up", ["check"])  # type: ignore[arg-type]


async def test_a_check_or_state_that_does_not_exist_is_named() -> None:
    """The name is given with the checks there are (and the likely one); the state too."""
    app = await monitored({"metrics": [redis(6379), check("monitoring_pg", "AlwaysUp")]})
    known = "; the checks are: 'monitoring_redis', 'monitoring_pg'"
    typo = "no check named 'monitoring_reddis' (did you mean 'monitoring_redis'?)"
    with pytest.raises(ValueError, match=f"^{re.escape(typo + known)}$"):
        force(app, "monitoring_reddis", "down")
    nope = "no check named 'nope'"
    with pytest.raises(ValueError, match=f"^{re.escape(nope + known)}$"):
        release(app, "nope")
    state = (
        "force(): unknown state 'upp'; expected 'up', 'down' or 'hung' "
        "(release() gives a check its own probe back)"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(state)}$"):
        force(app, "monitoring_redis", "upp")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown state None"):
        force(app, "monitoring_redis", None)  # type: ignore[arg-type]


async def test_an_app_without_monitoring_is_named() -> None:
    no_setup = re.escape("no monitoring on this app: call setup_monitoring() first")
    with pytest.raises(MonitoringError, match=no_setup):
        force(web.Application(), "monitoring_redis", "up")
    with pytest.raises(MonitoringError, match=no_setup):
        await run_checks(web.Application())
    with pytest.raises(MonitoringError, match=no_setup):
        sample(web.Application(), "monitoring_ready")


async def test_a_long_list_of_checks_is_cut_short() -> None:
    names = [f"monitoring_{i}" for i in range(25)]
    app = await monitored({"metrics": [check(name, "AlwaysUp") for name in names]})
    with pytest.raises(ValueError, match=re.escape("'monitoring_19', ... (25 checks)") + "$"):
        force(app, "nope", "up")


def test_the_kit_imports_without_pytest_or_any_extra() -> None:
    """An app's test helpers may import it anywhere: it needs nothing optional."""
    blocked = ["pytest", "pytest_aiohttp", "redis", "asyncpg", "aiomysql", "aioamqp", "pamqp",
               "msgpack", "yaml", "aioamqp_ext"]  # fmt: skip
    code = (
        f"import sys\nsys.modules.update(dict.fromkeys({blocked!r}))\n"
        "import aiohttp_prometheus_monitoring.testing as kit\n"
        "print(' '.join(kit.__all__))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["ForcedDown", "State", "force", "release", "run_checks", "sample"]


# The kit's honesty: a forced check gives what the real outage gives.


def shape(body: dict[str, Any], words: bool) -> dict[str, Any]:
    """The readiness body, its times and durations replaced by their types, and so is the
    failure's ``output`` unless ``words``."""
    fixed = {"componentType", "status", "critical", "observedUnit", *(["output"] if words else [])}

    def report_shape(report: dict[str, Any]) -> dict[str, Any]:
        return {k: v if k in fixed else type(v).__name__ for k, v in report.items()}

    checks = body["checks"]
    return {**body, "checks": {name: [report_shape(r) for r in checks[name]] for name in checks}}


async def outcome(
    aiohttp_client: AiohttpClient, config: dict[str, Any], kind: str, forced: State | None = None
) -> tuple[int, dict[str, Any], dict[str, float | None]]:
    """/ready's status and body, and the check's samples, after its runs, the check forced
    as given (None: its real probe)."""
    name = f"monitoring_{kind}"
    app, client = await start(aiohttp_client, config, {name: forced} if forced else None)
    status, body = await ready(client)
    values = {
        "gauge": sample(app, name),
        "up": sample(app, "monitoring_check_up", {"check": name, "kind": kind}),
        "ready": sample(app, "monitoring_ready"),
        "timeout seconds": sample(app, "monitoring_check_timeout_seconds", {"check": name}),
        "last success": sample(
            app, "monitoring_check_last_success_timestamp_seconds", {"check": name}
        ),
        **{f"runs {result}": count for result, count in runs(app, name).items()},
    }
    return status, body, values


@pytest.mark.parametrize("kind", CHECKS)
async def test_forced_down_gives_what_a_refused_port_gives(
    kind: str, aiohttp_client: AiohttpClient, closed_port: int
) -> None:
    """The same config, once against a real loopback port that refuses connections, once
    forced down: /ready's status, its body but for the words of the error, and the samples
    must be equal."""
    module, _, params = CHECKS[kind]
    config = {"metrics": [entry(f"monitoring_{kind}", module, params("127.0.0.1", closed_port),
                                sleep_time=60, wait_for_listen=False)]}  # fmt: skip
    real_status, real_body, real_values = await outcome(aiohttp_client, config, kind)
    status, body, values = await outcome(aiohttp_client, config, kind, "down")
    assert (status, shape(body, words=False), values) == (
        real_status, shape(real_body, words=False), real_values
    )  # fmt: skip
    assert (status, body["status"], values["up"], values["runs error"]) == (503, "fail", 0.0, 2)


@pytest.mark.parametrize("kind", [kind for kind in CHECKS if kind != "tcp"])  # tcp: accept is up
async def test_forced_hung_gives_what_a_silent_server_gives(
    kind: str, aiohttp_client: AiohttpClient, silent_listener: SilentListener
) -> None:
    """The same against a server that accepts connections and never answers, and forced hung:
    equal, the words of /ready included."""
    module, _, params = CHECKS[kind]
    config = {"metrics": [entry(f"monitoring_{kind}", module,
                                params("127.0.0.1", silent_listener.port), sleep_time=60,
                                timeout=0.3, wait_for_listen=False)]}  # fmt: skip
    real_status, real_body, real_values = await outcome(aiohttp_client, config, kind)
    assert silent_listener.accepted >= 1, "the real check never reached the listener"
    status, body, values = await outcome(aiohttp_client, config, kind, "hung")
    assert (status, shape(body, words=True), values) == (
        real_status, shape(real_body, words=True), real_values
    )  # fmt: skip
    output = body["checks"][f"monitoring_{kind}"][0]["output"]
    assert (status, values["up"], values["runs timeout"], output) == (
        503, 0.0, 2, "no answer within its timeout of 0.3 s"
    )  # fmt: skip


async def test_the_docs_page_includes_the_examples_and_quotes_real_errors() -> None:
    page = (ROOT / "docs" / "testing.md").read_text(encoding="utf-8")
    for example in ("test_check.py", "test_readiness.py"):
        assert f"```{{literalinclude}} ../tests/examples/{example}\n:language: python\n```" in page
    app = await monitored({"metrics": [
        {"name": "monitoring_redis", "url": "redis://localhost:6379/0"},
        {"name": "monitoring_postgres", "url": "postgresql://core@localhost/core"},
    ]})  # fmt: skip
    with pytest.raises(ValueError, match="no check named") as typo:
        force(app, "monitoring_reddis", "down")
    with pytest.raises(ValueError, match="unknown state") as state:
        force(app, "monitoring_redis", "dead")  # type: ignore[arg-type]
    for raised in (typo, state):
        assert f"```text\nValueError: {raised.value}\n```" in page
