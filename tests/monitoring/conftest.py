"""Fixtures of the monitoring tests: real listeners that refuse or stall, and /metrics readers."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from aiohttp_prometheus_monitoring import setup_monitoring
from tests.conftest import MYSQL_URL, _probe

M = "aiohttp_prometheus_monitoring.metrics."


async def _probe_mysql(url: str) -> None:
    from urllib.parse import urlsplit

    import aiomysql

    parts = urlsplit(url)
    conn = await aiomysql.connect(
        host=parts.hostname, port=parts.port or 3306, user=parts.username or "root",
        password=parts.password or "", db=parts.path[1:] or None, connect_timeout=2,
    )  # fmt: skip
    conn.close()


@pytest.fixture(scope="session")
def mysql_url() -> str:
    """URL of a MySQL/MariaDB server that accepts our login."""
    return _probe("MariaDB", MYSQL_URL, _probe_mysql)


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on: connections to it are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class SilentListener:
    """A TCP server that accepts connections and never says a word."""

    port: int
    accepted: int = 0
    closed: int = 0  # connections the client closed (we saw EOF)
    writers: list[asyncio.StreamWriter] = field(default_factory=list)


@pytest.fixture
async def silent_listener() -> AsyncIterator[SilentListener]:
    """Accepts every connection, reads nothing, answers nothing; closes them all at teardown."""
    listener = SilentListener(port=0)

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        listener.accepted += 1
        listener.writers.append(writer)
        while await reader.read(4096):  # swallow whatever the client says, never answer
            pass
        listener.closed += 1
        listener.writers.remove(writer)
        writer.close()  # our side of a connection the client closed: keep our own fds flat

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    listener.port = server.sockets[0].getsockname()[1]
    try:
        yield listener
    finally:
        server.close()
        for writer in listener.writers:
            writer.close()
        await server.wait_closed()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a text exposition, keyed by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def gauge(text: str, name: str) -> float | None:
    """The value of an unlabelled gauge, None when it is not shown."""
    return samples(text).get((name, ()))


async def poll(
    probe: Callable[[], Awaitable[Any]], *, timeout: float = 10.0, interval: float = 0.02
) -> Any:
    """Await ``probe`` until it returns something truthy, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s; last result: {result!r}")
        await asyncio.sleep(interval)


@dataclass
class Ran:
    """A program run until its /metrics showed some gauges, then stopped with SIGINT."""

    metrics: str
    answers: dict[str, tuple[int, str]]  # status and body of each of ``paths``
    returncode: int | None
    stdout: str
    stderr: str


async def run_until_gauges_shown(
    command: list[str], *, cwd: Path, env: dict[str, str], port: int,
    gauges: dict[str, float], paths: Sequence[str] = (), timeout: float = 20.0,
) -> Ran:  # fmt: skip
    """Run ``command`` (a program serving /metrics on ``port``) until its /metrics shows
    ``gauges``; ask it for ``paths``; stop it with SIGINT (killed if it outlives 15 s)."""
    process = await asyncio.create_subprocess_exec(
        *command, cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        async with ClientSession() as session:

            async def shown() -> str | None:
                if process.returncode is not None:
                    assert process.stderr is not None
                    pytest.fail(f"exited early: {(await process.stderr.read()).decode()}")
                try:
                    async with session.get(f"{url}/metrics") as response:
                        text = await response.text()
                except OSError:
                    return None
                return text if all(gauge(text, g) == v for g, v in gauges.items()) else None

            metrics: str = await poll(shown, timeout=timeout, interval=0.1)
            answers = {}
            for path in paths:
                async with session.get(f"{url}{path}") as response:
                    answers[path] = (response.status, await response.text())
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(15):
            stdout, stderr = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return Ran(metrics, answers, process.returncode, stdout.decode(), stderr.decode())


@dataclass
class Served:
    """An app with monitoring on a real loopback socket, and a client session to it."""

    app: web.Application
    server: TestServer
    session: ClientSession

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    async def metrics(self, **headers: str) -> str:
        async with self.session.get(self.url("/metrics"), headers=headers) as response:
            assert response.status == 200
            return await response.text()

    async def wait_gauges(self, expected: dict[str, float], timeout: float = 10.0) -> str:
        """The /metrics text once every named gauge shows the expected value."""

        async def probe() -> str | None:
            text = await self.metrics()
            ok = all(gauge(text, name) == value for name, value in expected.items())
            return text if ok else None

        result: str = await poll(probe, timeout=timeout)
        return result


ServeFactory = Callable[..., Awaitable[Served]]


@pytest.fixture
async def serve() -> AsyncIterator[ServeFactory]:
    """Start apps with ``setup_monitoring(config, app)`` on real sockets; all closed after."""
    started: list[Served] = []

    async def start(config: dict[str, Any], app: web.Application | None = None) -> Served:
        app = app if app is not None else web.Application()
        await setup_monitoring(config, app)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        served = Served(app, server, ClientSession())
        started.append(served)
        return served

    yield start
    for served in started:
        await served.session.close()
        await served.server.close()


def entry(name: str, module: str, params: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """One ``metrics`` entry of a MONITORING dict, with a short sleep_time by default."""
    return {
        "name": name,
        "description": f"Check {name}",
        "module": M + module if module.count(".") == 1 else module,
        "sleep_time": extra.pop("sleep_time", 0.2),
        "params": params,
        **extra,
    }
