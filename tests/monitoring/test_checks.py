"""Each built-in check against the real service, a refused port, and a host that never answers."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest

from aiohttp_prometheus_monitoring.config import load_config
from aiohttp_prometheus_monitoring.metrics.http import HttpMetric
from aiohttp_prometheus_monitoring.metrics.mysql import MySQLMetric
from aiohttp_prometheus_monitoring.metrics.tcp import TcpMetric
from aiohttp_prometheus_monitoring.scheduler import CheckState, Scheduler
from tests.monitoring.conftest import ServeFactory, SilentListener, entry, poll, samples

Params = Callable[[str, int], dict[str, Any]]  # (host, port) -> params


def _url_params(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    return {"host": parts.hostname, "port": parts.port, "user": parts.username,
            "password": parts.password, "path": parts.path.lstrip("/")}  # fmt: skip


CHECKS: dict[str, tuple[str, str, Params]] = {
    # kind: (check class, fixture giving the real service's URL, params for host:port)
    "redis": ("redis.RedisMetric", "redis_url", lambda h, p: {"host": h, "port": str(p)}),
    "amqp": ("amqp.AmqpMetric", "amqp_url",
             lambda h, p: {"host": h, "port": str(p), "user": "guest", "password": "guest"}),
    "postgres": ("postgres.PostgresMetric", "pg_dsn",
                 lambda h, p: {"host": h, "port": p, "user": "postgres", "database": "test"}),
    "mysql": ("mysql.MySQLMetric", "mysql_url",
              lambda h, p: {"host": h, "port": p, "user": "root", "database": "test"}),
    "tcp": ("tcp.TcpMetric", "redis_url", lambda h, p: {"host": h, "port": p}),
    "http": ("http.HttpMetric", "http_url", lambda h, p: {"url": f"http://{h}:{p}/hello"}),
}  # fmt: skip


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/hello" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass


@pytest.fixture(scope="module")
def http_url() -> Iterator[str]:
    """A real HTTP server, in a thread of its own, answering 200 on /hello."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hello"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def service(request: pytest.FixtureRequest) -> tuple[str, int]:
    """Host and port of the real service behind the parametrized ``kind``."""
    url = _url_params(request.getfixturevalue(CHECKS[request.getfixturevalue("kind")][1]))
    return url["host"], url["port"]


@pytest.mark.parametrize("kind", CHECKS)
async def test_check_is_up_against_the_real_service(
    kind: str, serve: ServeFactory, service: tuple[str, int]
) -> None:
    """Each built-in check must report 1 for a healthy service, under its own kind label."""
    module, _, params = CHECKS[kind]
    served = await serve({"metrics": [entry(f"monitoring_{kind}", module, params(*service))]})
    text = await served.wait_gauges({f"monitoring_{kind}": 1.0})
    values = samples(text)
    assert values[("monitoring_check_up", (("check", f"monitoring_{kind}"), ("kind", kind)))] == 1.0
    runs = (("check", f"monitoring_{kind}"), ("result", "success"))
    assert values[("monitoring_check_runs_total", runs)] >= 1.0


@pytest.mark.parametrize("kind", CHECKS)
async def test_check_is_down_against_a_closed_port(
    kind: str, serve: ServeFactory, closed_port: int
) -> None:
    """A dependency that refuses connections must show as 0, counted as an error."""
    module, _, params = CHECKS[kind]
    name = f"monitoring_{kind}"
    served = await serve({"metrics": [entry(name, module, params("127.0.0.1", closed_port))]})
    text = await served.wait_gauges({name: 0.0})
    assert samples(text)[("monitoring_check_runs_total", (("check", name), ("result", "error")))]


@pytest.mark.parametrize("kind", [kind for kind in CHECKS if kind != "tcp"])  # tcp: accept is up
async def test_check_against_a_silent_host_is_down_within_its_timeout(
    kind: str, serve: ServeFactory, silent_listener: SilentListener
) -> None:
    """A host that accepts and never answers must not hang the check nor slow /metrics."""
    module, _, params = CHECKS[kind]
    name = f"monitoring_{kind}"
    timeout = 0.5
    config = {"metrics": [entry(name, module, params("127.0.0.1", silent_listener.port),
                                sleep_time=30, timeout=timeout)]}  # fmt: skip
    started = time.monotonic()
    served = await serve(config)
    latencies: list[float] = []

    async def down() -> bool:
        before = time.perf_counter()
        text = await served.metrics()
        latencies.append(time.perf_counter() - before)
        return samples(text).get((name, ())) == 0.0

    await poll(down, timeout=5.0)
    elapsed = time.monotonic() - started
    assert silent_listener.accepted >= 1, "the check never reached the listener"
    # Generous bounds, so that a loaded machine does not fail them, that still tell a hang
    # (the listener never answers, and the next run is 30 s away) and a scrape that waits on
    # the check (it would take about the check's timeout) from what we promise.
    assert timeout <= elapsed < timeout + 1.5
    assert max(latencies) < timeout / 2, f"/metrics took {max(latencies) * 1000:.1f} ms"
    print(f"{kind}: down after {elapsed:.3f} s; /metrics during the hang: {len(latencies)} "
          f"scrapes, max {max(latencies) * 1000:.1f} ms")  # fmt: skip
    text = await served.metrics()
    timeouts = ("monitoring_check_runs_total", (("check", name), ("result", "timeout")))
    assert samples(text)[timeouts] == 1

    async def closed() -> bool:
        return silent_listener.closed == silent_listener.accepted

    await poll(closed, timeout=2.0)  # the timed-out connection was closed, not leaked


async def test_redis_check_only_pings(serve: ServeFactory, redis_url: str) -> None:
    """The check watches the user's Redis: it must never write to it (the 2018 one did SET)."""
    import redis.asyncio as redis

    monitor_client = redis.Redis.from_url(redis_url)
    seen: list[str] = []
    url = _url_params(redis_url)
    async with monitor_client.monitor() as monitor:
        served = await serve({"metrics": [entry("monitoring_redis", "redis.RedisMetric",
                                                {"host": url["host"], "port": url["port"]},
                                                sleep_time=0.05)]})  # fmt: skip

        async def three_runs() -> bool:
            text = await served.metrics()
            key = ("monitoring_check_runs_total", (("check", "monitoring_redis"),
                                                   ("result", "success")))  # fmt: skip
            return samples(text).get(key, 0) >= 3

        await poll(three_runs)
        await served.server.close()  # stop the checks before we stop listening
        await served.app.shutdown()
        while len([c for c in seen if c.split()[0].upper() == "PING"]) < 3:
            info = await monitor.next_command()
            seen.append(str(info["command"]))
    await monitor_client.aclose()
    assert {command.split()[0].upper() for command in seen} == {"PING"}, seen


async def test_a_refused_login_never_shows_its_password(
    serve: ServeFactory, amqp_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A wrong password is the classic outage; its log line must not leak the password."""
    caplog.set_level(logging.DEBUG)
    secret = "Wr0ng-Secret-4-test"
    parts = urlsplit(amqp_url)
    url = f"amqp://guest:{secret}@{parts.hostname}:{parts.port}/"
    served = await serve({"metrics": [entry("monitoring_mq", "amqp.AmqpMetric", {"url": url},
                                            timeout=5)]})  # fmt: skip
    text = await served.wait_gauges({"monitoring_mq": 0.0})
    assert (
        "check monitoring_mq is down (error): AmqpConnectionError: cannot connect to "
        f"amqp://guest:***@{parts.hostname}:{parts.port}/: the broker closed the connection "
        "during login as 'guest' to vhost '/'"
    ) in caplog.text
    assert secret not in caplog.text
    assert secret not in text
    assert secret not in repr(served.app)


def open_fds() -> int:
    """File descriptors this process holds open now."""
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A loopback port whose listener never accepts and whose queue is full: connects hang."""
    with socket.socket() as server, socket.socket() as filler:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = int(server.getsockname()[1])
        filler.connect(("127.0.0.1", port))  # takes the one place in the queue
        yield port


async def test_tcp_check_closes_its_socket_on_timeout_and_on_cancel(unanswered_port: int) -> None:
    """The TCP check owns a bare socket: a connect cut short must not leave it open."""
    check = TcpMetric("127.0.0.1", unanswered_port)
    before = open_fds()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await check.check()
    assert open_fds() == before
    run = asyncio.create_task(check.check())

    async def connecting() -> bool:
        return open_fds() > before

    await poll(connecting)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert open_fds() == before


@dataclass
class CountingServer:
    """An HTTP server answering 200 that counts the connections that asked something, and
    those it then saw closed."""

    port: int = 0
    accepted: int = 0
    closed: int = 0


@pytest.fixture
async def counting_server() -> AsyncIterator[CountingServer]:
    """A real HTTP/1.1 listener on loopback; its connections are counted."""
    counts = CountingServer()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:  # a probe that the port listens (wait_for_listen)
            writer.close()
            return
        counts.accepted += 1
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        await reader.read()  # until the client closes
        counts.closed += 1
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    counts.port = server.sockets[0].getsockname()[1]
    async with server:
        yield counts


async def test_http_check_connects_afresh_each_run_and_closes_its_session_on_shutdown(
    counting_server: CountingServer,
) -> None:
    """The HTTP check keeps one client session, yet each run proves a fresh connect and
    closes it; the scheduler closes the session when monitoring stops."""
    url = f"http://127.0.0.1:{counting_server.port}/"
    config = load_config({"metrics": [entry("monitoring_web", "http.HttpMetric", {"url": url},
                                            sleep_time=0.01)]}).metrics[0]  # fmt: skip
    check = config.create_check()
    assert isinstance(check, HttpMetric)
    state = CheckState.of(config)
    scheduler = Scheduler([(config, check, state)])
    scheduler.start()

    async def three_runs() -> bool:
        return state.runs["success"] >= 3

    await poll(three_runs)
    await scheduler.close()
    # one connection per run (and perhaps one more, of a run that the close cut short)
    assert state.runs["success"] <= counting_server.accepted <= state.runs["success"] + 1
    assert check._session is None  # closed by the scheduler, not left to the garbage collector

    async def all_closed() -> bool:
        return counting_server.closed == counting_server.accepted

    await poll(all_closed)


async def test_mysql_check_closes_its_connection_when_cancelled_before_the_greeting(
    silent_listener: SilentListener,
) -> None:
    """A server that accepts and never greets: cancelling the run (its timeout does) must close
    the socket, whoever holds the cancelled run."""
    check = MySQLMetric(host="127.0.0.1", port=silent_listener.port, user="u")
    run = asyncio.create_task(check.check())
    await poll(lambda: asyncio.sleep(0, silent_listener.accepted == 1))
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    await poll(lambda: asyncio.sleep(0, silent_listener.closed == 1), timeout=5)
    assert run.cancelled()
