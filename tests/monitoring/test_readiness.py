"""The readiness route: health+json from the last results, 200/503 by critical checks."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tests.monitoring.conftest import Served, ServeFactory, entry, gauge, poll
from tests.proxy import FaultProxy

F = "tests.monitoring.fakes."
SECRET = "n0t-a-Real-pa55word"


async def ready(served: Served) -> tuple[int, dict[str, Any], str]:
    """Status, parsed body and content type of the readiness route."""
    async with served.session.get(served.url("/ready")) as response:
        body = await response.text()
        return response.status, json.loads(body), response.content_type


async def wait_ready(served: Served, status: int) -> tuple[dict[str, Any], str]:
    """The readiness body once the route answers ``status``, and its raw text."""

    async def probe() -> tuple[dict[str, Any], str] | None:
        async with served.session.get(served.url("/ready")) as response:
            text = await response.text()
            return (json.loads(text), text) if response.status == status else None

    result: tuple[dict[str, Any], str] = await poll(probe, timeout=15)
    return result


def with_password(dsn: str) -> str:
    """``dsn`` with a password in it (loopback PostgreSQL trusts us, so it is ignored)."""
    parts = urlsplit(dsn)
    netloc = f"{parts.username or 'postgres'}:{SECRET}@{parts.hostname}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


async def test_ready_follows_a_real_dependency_down_and_up(
    serve: ServeFactory,
    pg_dsn: str,
    fault_proxy: Callable[[str], Awaitable[tuple[FaultProxy, str]]],
) -> None:
    """Load balancers route by /ready: it must turn 503 when PostgreSQL goes away, 200 when
    it is back, and say why in between, without a password anywhere."""
    proxy, proxied = await fault_proxy(pg_dsn)
    served = await serve({
        "route_ready": "/ready",
        "metrics": [
            entry("monitoring_postgres", "postgres.PostgresMetric",
                  {"dsn": with_password(proxied)}, sleep_time=0.2, timeout=2),
            entry("monitoring_flaky", F + "Raises", {"password": SECRET}, critical=False),
        ],
    })  # fmt: skip
    body, text = await wait_ready(served, 200)
    assert body["status"] == "pass"
    postgres = body["checks"]["monitoring_postgres"][0]
    assert postgres["status"] == "pass"
    assert postgres["componentType"] == "postgres"
    assert postgres["critical"] is True
    assert postgres["observedUnit"] == "s"
    assert 0 <= postgres["observedValue"] < 2
    assert postgres["time"].endswith("Z")
    assert postgres["lastSuccess"].endswith("Z")
    assert "output" not in postgres
    flaky = body["checks"]["monitoring_flaky"][0]
    assert (flaky["status"], flaky["critical"], flaky["lastSuccess"]) == ("fail", False, None)
    assert flaky["output"] == "ConnectionError: login refused for password ***"
    _, _, content_type = await ready(served)
    assert content_type == "application/health+json"
    assert gauge(await served.metrics(), "monitoring_ready") == 1.0

    proxy.refuse()
    proxy.cut()
    down, down_text = await wait_ready(served, 503)
    assert down["status"] == "fail"
    postgres = down["checks"]["monitoring_postgres"][0]
    assert postgres["status"] == "fail"
    assert postgres["output"]
    assert postgres["lastSuccess"] is not None  # the last success is still remembered
    assert gauge(await served.metrics(), "monitoring_ready") == 0.0
    async with served.session.get(served.url("/ping")) as response:
        assert (response.status, await response.text()) == (200, "pong")  # liveness untouched

    proxy.refuse(False)
    up, up_text = await wait_ready(served, 200)
    assert up["checks"]["monitoring_postgres"][0]["status"] == "pass"
    assert gauge(await served.metrics(), "monitoring_ready") == 1.0
    for shown in (text, down_text, up_text, await served.metrics()):
        assert SECRET not in shown


async def test_a_check_that_never_ran_is_not_ready(serve: ServeFactory) -> None:
    """A pod must not get traffic before its critical checks have answered once."""
    served = await serve({
        "route_ready": "/ready",
        "metrics": [entry("monitoring_slow", F + "Gate", {"key": "ready-never"})],
    })  # fmt: skip
    status, body, _ = await ready(served)
    assert status == 503
    slow = body["checks"]["monitoring_slow"][0]
    assert (slow["status"], slow["time"], slow["observedValue"]) == ("fail", None, None)
    assert "not finished its first run" in slow["output"]
    assert gauge(await served.metrics(), "monitoring_ready") == 0.0


async def test_only_critical_checks_decide(serve: ServeFactory, closed_port: int) -> None:
    """A non-critical dependency down degrades, but must not take the pod out of rotation;
    a critical one on a closed port must."""
    served = await serve({
        "route_ready": "/ready",
        "metrics": [
            entry("monitoring_cache", "tcp.TcpMetric", {"host": "127.0.0.1", "port": closed_port},
                  critical=False),
            entry("monitoring_core", F + "AlwaysUp", {}),
        ],
    })  # fmt: skip

    async def both_ran() -> dict[str, Any] | None:
        status, body, _ = await ready(served)
        ran = all(c[0]["time"] for c in body["checks"].values())
        return body if ran and status == 200 else None

    body = await poll(both_ran)
    assert body["status"] == "pass"
    cache = body["checks"]["monitoring_cache"][0]
    assert cache["status"] == "fail"
    assert "refused" in cache["output"].lower() or "connect" in cache["output"].lower()
    strict = await serve({
        "route_ready": "/ready",
        "metrics": [entry("monitoring_cache", "tcp.TcpMetric",
                          {"host": "127.0.0.1", "port": closed_port})],
    })  # fmt: skip
    body, _ = await wait_ready(strict, 503)
    assert body["checks"]["monitoring_cache"][0]["time"] is not None


async def test_ready_route_is_off_unless_configured(serve: ServeFactory) -> None:
    """Existing apps keep their routes: no readiness route appears by itself."""
    served = await serve({"metrics": [entry("monitoring_cheap", F + "AlwaysUp", {})]})
    async with served.session.get(served.url("/ready")) as response:
        assert response.status == 404
