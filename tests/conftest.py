"""Shared fixtures: the real services of this machine, and names no other test uses.

Services come from TEST_AMQP_URL, TEST_REDIS_URL, TEST_PG_DSN and TEST_MYSQL_URL, with local
defaults. A service that does not answer skips the tests that need it, except with CI=true,
where it fails them: CI never passes by skipping.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.proxy import FaultProxy

AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PG_DSN = os.environ.get("TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
MYSQL_URL = os.environ.get("TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def tool(name: str) -> str:
    """The path of a Debian tool, or skip (fail in CI) naming scripts/tools."""
    binary = shutil.which(name)
    if binary is None:
        message = f"{name} is missing: run scripts/tools"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return binary


async def promtool_check_metrics(text: str) -> None:
    """``promtool check metrics`` must accept ``text`` without a word on either stream."""
    process = await asyncio.create_subprocess_exec(
        tool("promtool"), "check", "metrics", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(30):
        stdout, stderr = await process.communicate(text.encode())
    assert (process.returncode, stdout, stderr) == (0, b"", b"")


def _unavailable(service: str, url: str, exc: BaseException) -> None:
    message = f"{service} at {url} is not available ({exc!r}); run scripts/services"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


async def amqp_connect(url: str) -> tuple[Any, Any]:
    """A raw aioamqp connection to ``url``, for set-up and clean-up outside the code under test."""
    from urllib.parse import unquote

    import aioamqp

    parts = urlsplit(url)
    connection: tuple[Any, Any] = await aioamqp.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5672,
        login=unquote(parts.username or "guest"),
        password=unquote(parts.password or "guest"),
        virtualhost=unquote(parts.path[1:]) if len(parts.path) > 1 else "/",
        login_method="PLAIN",
    )
    return connection


async def _probe_amqp(url: str) -> None:
    transport, protocol = await amqp_connect(url)
    await protocol.close()
    transport.close()


async def _probe_redis(url: str) -> None:
    import redis.asyncio as redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        await client.ping()
    finally:
        await client.aclose()


async def _probe_pg(dsn: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn, timeout=2)
    try:
        await conn.fetchval("SELECT 1")
    finally:
        await conn.close()


def _probe(service: str, url: str, probe: Callable[[str], Any]) -> str:
    try:
        asyncio.run(asyncio.wait_for(probe(url), timeout=5))
    except Exception as exc:  # any failure means "not usable", and is reported as such
        _unavailable(service, url, exc)
    return url


@pytest.fixture(scope="session")
def amqp_url() -> str:
    """URL of a RabbitMQ broker that answers (guest/guest on loopback by default)."""
    return _probe("RabbitMQ", AMQP_URL, _probe_amqp)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of a Redis server that answers PING."""
    return _probe("Redis", REDIS_URL, _probe_redis)


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    """DSN of a PostgreSQL database that answers SELECT 1."""
    return _probe("PostgreSQL", PG_DSN, _probe_pg)


@pytest.fixture
async def fault_proxy() -> AsyncIterator[Callable[[str], Awaitable[tuple[FaultProxy, str]]]]:
    """Factory: ``proxy, proxied_url = await fault_proxy(url)``; every proxy is closed afterwards.

    The proxied URL is ``url`` with its host and port pointing at the proxy, which forwards to
    the real service and can cut, stall, delay or refuse connections on demand.
    """
    proxies: list[FaultProxy] = []

    async def make(url: str) -> tuple[FaultProxy, str]:
        parts = urlsplit(url)
        proxy = await FaultProxy(parts.hostname or "127.0.0.1", parts.port or 5672).start()
        proxies.append(proxy)
        netloc = parts.netloc.rpartition("@")[0]
        netloc = f"{netloc}@127.0.0.1:{proxy.port}" if netloc else f"127.0.0.1:{proxy.port}"
        return proxy, urlunsplit(parts._replace(netloc=netloc))

    yield make
    for proxy in proxies:
        await proxy.close()


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> str:
    """A name derived from the test's node id, unique per run: safe for shared services."""
    base = re.sub(r"[^a-zA-Z0-9]+", "_", request.node.name).strip("_")[:48]
    return f"t_{base}_{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class AmqpNames:
    """Exchange and queue names owned by one test; deleted after it."""

    exchange: str
    queue: str
    dead_letter_exchange: str
    #: further queues the test made (a retry's wait queues...), deleted with the others
    more_queues: list[str] = field(default_factory=list)

    @property
    def dlq(self) -> str:
        return f"{self.queue}.dlq"

    def retry_queue(self, seconds: float) -> str:
        """The wait queue of a retry delay (``<queue>.retry.<ms>``), deleted afterwards."""
        name = f"{self.queue}.retry.{round(seconds * 1000)}"
        self.more_queues.append(name)
        return name


@pytest.fixture
async def amqp_names(amqp_url: str, unique_name: str) -> AsyncIterator[AmqpNames]:
    """Fresh exchange/queue names; the broker objects with those names are deleted afterwards."""
    names = AmqpNames(
        exchange=f"{unique_name}.x",
        queue=f"{unique_name}.q",
        dead_letter_exchange=f"{unique_name}.dlx",
    )
    yield names
    transport, protocol = await amqp_connect(amqp_url)
    try:
        channel = await protocol.channel()
        for queue in (names.queue, names.dlq, *names.more_queues):
            await channel.queue_delete(queue)
        for exchange in (names.exchange, names.dead_letter_exchange):
            await channel.exchange_delete(exchange)
    finally:
        await protocol.close()
        transport.close()


@pytest.fixture
async def redis_prefix(redis_url: str, unique_name: str) -> AsyncIterator[str]:
    """A key prefix of this test's own; every key under it is deleted afterwards."""
    import redis.asyncio as redis

    prefix = f"{unique_name}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
async def pg_schema(pg_dsn: str, unique_name: str) -> AsyncIterator[str]:
    """A PostgreSQL schema of this test's own, dropped with everything in it afterwards."""
    import asyncpg

    schema = unique_name.lower()
    conn = await asyncpg.connect(pg_dsn, timeout=5)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        yield schema
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()
