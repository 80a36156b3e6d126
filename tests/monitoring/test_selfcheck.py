"""Self-checks: an HTTP check of the app's own port never reads a false 0 at start-up."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession

from aiohttp_prometheus_monitoring import WrongConfiguration
from aiohttp_prometheus_monitoring._selfcheck import wait_listening
from aiohttp_prometheus_monitoring.config import load_config
from tests.monitoring.conftest import poll, samples
from tests.monitoring.test_web import ROOT, free_port

APP = """
import os
from aiohttp import web
from aiohttp_prometheus_monitoring import setup_monitoring

PORT = int(os.environ["PORT"])


async def hello(request):
    return web.Response(text="hello")


async def create_app():
    app = web.Application()
    app.router.add_get("/hello", hello)
    await setup_monitoring({"metrics": [
        {"name": "monitoring_self", "url": f"http://127.0.0.1:{PORT}/hello", "sleep_time": 60},
    ]}, app)
    return app


web.run_app(create_app(), host="127.0.0.1", port=PORT, print=None)
"""


def entry(**keys: Any) -> dict[str, Any]:
    return {"metrics": [{"name": "monitoring_x", **keys}]}


@pytest.mark.parametrize(
    ("keys", "target"),
    [
        ({"url": "http://127.0.0.1:8080/hello"}, ("127.0.0.1", 8080)),
        ({"url": "http://localhost/hello"}, ("localhost", 80)),
        ({"url": "https://[::1]:8443/"}, ("::1", 8443)),
        ({"url": "https://example.org/"}, None),
        ({"url": "https://example.org/", "wait_for_listen": True}, ("example.org", 443)),
        ({"url": "http://127.0.0.1:8080/", "wait_for_listen": False}, None),
        ({"url": "redis://127.0.0.1:6379"}, None),
        (
            {
                "description": "Check HTTP status", "sleep_time": 5,
                "module": "aiohttp_prometheus_monitoring.metrics.http.HttpMetric",
                "params": {"url": "http://127.0.0.1:8080/hello"},
            },
            ("127.0.0.1", 8080),
        ),
    ],
)  # fmt: skip
def test_http_checks_of_a_loopback_url_wait_for_it_to_listen(
    keys: dict[str, Any], target: tuple[str, int] | None
) -> None:
    """Auto for HTTP checks of this machine (the app itself), on or off by choice."""
    assert load_config(entry(**keys)).metrics[0].wait_for_listen == target


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (
            {"url": "redis://127.0.0.1:6379", "wait_for_listen": True},
            r"metrics\[0\] 'monitoring_x': wait_for_listen: only for an HTTP check with a url",
        ),
        (
            {"url": "http://127.0.0.1/", "wait_for_listen": "yes"},
            r"wait_for_listen: expected True, False or None, got 'yes'",
        ),
    ],
)
def test_wait_for_listen_mistakes_are_named(keys: dict[str, Any], message: str) -> None:
    """wait_for_listen is a switch, and only means something for an HTTP check."""
    with pytest.raises(WrongConfiguration, match=message):
        load_config(entry(**keys))


async def test_waiting_for_a_port_nobody_opens_ends_at_its_bound() -> None:
    """A self-check whose port never opens still runs (and reads 0) after a bounded wait."""
    started = time.monotonic()
    assert not await wait_listening("127.0.0.1", free_port(), bound=0.3)
    assert time.monotonic() - started < 2


async def test_a_self_check_first_reads_1_under_web_run_app(tmp_path: Path) -> None:
    """Under web.run_app the checks start before the port binds; the self-check waits, so the
    first value /metrics ever shows for it is 1 (the next run is a minute away)."""
    script = tmp_path / "app.py"
    script.write_text(APP)
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-W", "error", str(script), cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PORT": str(port)},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:

        async def shown() -> list[float] | None:
            try:
                url = f"http://127.0.0.1:{port}/metrics"
                async with ClientSession() as session, session.get(url) as response:
                    text = await response.text()
            except OSError:
                return None  # not listening yet
            value = samples(text).get(("monitoring_self", ()))
            return None if value is None else [value]

        assert await poll(shown, timeout=15) == [1.0]
    finally:
        process.terminate()
        assert await asyncio.wait_for(process.wait(), 15) == 0
