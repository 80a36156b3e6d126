"""/metrics writes our families itself: byte for byte what prometheus_client writes."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.aiohttp import make_aiohttp_handler

from _aiohttp_booster.prometheus import TESTED_RANGE, _go_float_fallback, go_float
from _aiohttp_booster.version import within
from aiohttp_prometheus_monitoring import _exposition
from aiohttp_prometheus_monitoring._exposition import metrics_handler
from aiohttp_prometheus_monitoring.registry import create_registry
from aiohttp_prometheus_monitoring.scheduler import CheckState

ACCEPTS = [
    None,
    "text/plain; version=0.0.4",
    "text/plain; version=1.0.0; escaping=allow-utf-8",
    "application/openmetrics-text",
    "application/openmetrics-text; version=1.0.0; charset=utf-8",
    "application/openmetrics-text; version=1.0.0; escaping=allow-utf-8",
    "application/openmetrics-text; version=2.0.0; escaping=underscores",
    "application/openmetrics-text; version=1.0.0; escaping=dots",  # left to prometheus_client
    "application/openmetrics-text; version=1.0.0; escaping=values",  # this one too
    "text/plain; version=1.0.0; escaping=values",
    # what Prometheus 3 sends: prometheus_client takes the first it knows
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
    "application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;q=0.4,"
    "text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
]


def states() -> list[CheckState]:
    """Checks in every state the families show differently."""
    never = CheckState(name="monitoring_never", description="Not run yet", kind="redis",
                       timeout=2.0)  # fmt: skip
    up = CheckState(name="monitoring_redis", description="Check redis connection", kind="redis",
                    timeout=2.0, up=True, duration=0.000734, last_run=1.79e9 + 0.25,
                    last_success=1795000123.456789)  # fmt: skip
    up.runs.update(success=30, failure=2, timeout=1, error=0)
    down = CheckState(name="monitoring_odd", kind='we"ird\\kind\n',
                      description='Back\\slash, "quotes"\nand a new line', timeout=0.5,
                      up=False, duration=12.5, last_run=1.8e9)  # fmt: skip
    down.runs.update(success=999_999, failure=1_000_000, timeout=12_345_678, error=10**17)
    lazy = CheckState(name="monitoring_lazy:x", description="", kind="custom", timeout=1e-05,
                      critical=False, up=True, duration=0.0, last_run=2.0,
                      last_success=2.0)  # fmt: skip
    return [never, up, down, lazy]


@pytest.fixture
async def both() -> AsyncIterator[tuple[ClientSession, TestServer, CollectorRegistry]]:
    """Our /metrics and prometheus_client's own handler over one registry, on a real socket."""
    checks = states()
    registry = create_registry(checks, include_default=False)
    Counter("hello_hits", "Hello requests.", ["path"], registry=registry).labels("/").inc(3)
    Gauge("room_temperature", "Temperature.", unit="celsius", registry=registry).set(21.5)
    Histogram("work_seconds", "Work.", buckets=[0.1, 1], registry=registry).observe(0.3)
    Info("build", "Build.", registry=registry).info({"version": "1.2"})
    app = web.Application()
    app.router.add_get("/ours", metrics_handler(registry, checks))
    app.router.add_get("/theirs", make_aiohttp_handler(registry))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    async with ClientSession() as session:
        yield session, server, registry
    await server.close()


async def fetch(
    session: ClientSession, server: TestServer, path: str, headers: dict[str, str]
) -> tuple[int, str, str | None, bytes]:
    async with session.get(server.make_url(path), headers=headers, auto_decompress=False) as r:
        body = await r.read()
        encoding = r.headers.get("Content-Encoding")
        return r.status, r.headers["Content-Type"], encoding, body


@pytest.mark.parametrize("accept", ACCEPTS)
@pytest.mark.parametrize("compressed", [False, True])
async def test_our_text_is_what_prometheus_client_writes(
    both: tuple[ClientSession, TestServer, CollectorRegistry], accept: str | None, compressed: bool
) -> None:
    """Scrapers and tests compare expositions: the fast path must not change one byte, in
    either format, with gzip or without, and a check that never ran stays out."""
    session, server, _ = both
    headers = {"Accept-Encoding": "gzip" if compressed else "identity"}
    if accept is not None:
        headers["Accept"] = accept
    ours, theirs = [await fetch(session, server, path, headers) for path in ("/ours", "/theirs")]
    assert ours[:3] == theirs[:3]
    assert (ours[2] == "gzip") is compressed
    body = gzip.decompress(ours[3]) if compressed else ours[3]
    assert body == (gzip.decompress(theirs[3]) if compressed else theirs[3])
    text = body.decode()
    assert "monitoring_never" not in text
    assert ',kind="we\\"ird\\\\kind\\n"} 0.0\n' in text  # escaped as label values are
    assert text.count("# EOF") == (1 if "openmetrics" in ours[1] else 0)


async def test_a_target_info_is_left_to_prometheus_client(
    both: tuple[ClientSession, TestServer, CollectorRegistry],
) -> None:
    """target_info comes first in prometheus_client's output: the same order here."""
    session, server, registry = both
    registry.set_target_info({"service": "shop"})
    headers = {"Accept": "application/openmetrics-text", "Accept-Encoding": "identity"}
    ours, theirs = [await fetch(session, server, path, headers) for path in ("/ours", "/theirs")]
    assert ours == theirs
    assert ours[3].startswith(b"# HELP target Target metadata\n")


def test_an_untested_prometheus_client_gets_its_own_handler(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Our copy of the text format holds only for the prometheus-client releases it is tested
    with; with any other, /metrics is prometheus-client's own handler (slower, never wrong)."""
    checks = states()
    registry = create_registry(checks, include_default=False)
    assert metrics_handler(registry, checks).__name__ == "metrics"  # ours, on this release
    monkeypatch.setattr(_exposition, "FORMAT_TESTED", False)
    assert metrics_handler(registry, checks).__name__ != "metrics"


@pytest.mark.parametrize(
    ("version", "tested"),
    [("0.24.0", True), ("0.26.0", True), ("0.23.1", False), ("0.27.0", False),
     ("0.27.0rc1", False), ("unknown", False)],
)  # fmt: skip
def test_the_format_copy_is_used_only_with_tested_prometheus_client_releases(
    version: str, tested: bool
) -> None:
    """The fence's range, compared as numbers and releases only."""
    assert within(version, *TESTED_RANGE) is tested


def test_floats_are_written_as_prometheus_client_writes_them_without_its_helper() -> None:
    """If prometheus-client's float helper is ever gone, ours still writes what Prometheus
    reads: the infinities and NaN in Prometheus' spelling, other values as Python's repr."""
    assert [_go_float_fallback(v) for v in (float("inf"), float("-inf"), float("nan"))] == [
        "+Inf", "-Inf", "NaN"]  # fmt: skip
    for value in (0.005, 2.5, 30.0, 1e-05, 10**17):
        assert float(_go_float_fallback(value)) == float(go_float(value))
