"""The fault-injecting proxy itself, against real Redis: resilience tests trust it."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


async def test_proxy_forwards_to_the_real_service(fault_proxy, redis_url: str) -> None:
    """Through the proxy, the client talks to the real server as if directly."""
    proxy, url = await fault_proxy(redis_url)
    client = redis.Redis.from_url(url, socket_timeout=2)
    try:
        assert await client.ping() is True
        assert proxy.connections == 1
    finally:
        await client.aclose()


async def test_cut_kills_open_connections(fault_proxy, redis_url: str) -> None:
    """cut() makes the client's open connection fail, like a broker restart or a network cut."""
    proxy, _url = await fault_proxy(redis_url)
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"PING\r\n")
    assert await reader.readline() == b"+PONG\r\n"
    assert proxy.cut() == 1
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
        await asyncio.wait_for(reader.readexactly(1), timeout=2)
    writer.close()


async def test_stall_holds_traffic_without_closing(fault_proxy, redis_url: str) -> None:
    """stall() is a silent partition: no bytes, no FIN, no RST, until resume()."""
    proxy, url = await fault_proxy(redis_url)
    client = redis.Redis.from_url(url, socket_timeout=0.3, retry_on_timeout=False)
    try:
        assert await client.ping()
        proxy.stall()
        with pytest.raises(RedisTimeoutError):
            await client.ping()
        assert proxy.connections >= 1  # nothing was closed by the proxy
        proxy.resume()
        client2 = redis.Redis.from_url(url, socket_timeout=2)
        assert await client2.ping()
        await client2.aclose()
    finally:
        await client.aclose()


async def test_delay_adds_latency(fault_proxy, redis_url: str) -> None:
    """delay() slows every round trip by at least the configured latency each way."""
    proxy, url = await fault_proxy(redis_url)
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        await client.ping()
        proxy.delay(0.1)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await client.ping()
        assert loop.time() - started >= 0.2  # request and reply each held 0.1 s
    finally:
        await client.aclose()


async def test_refuse_rejects_new_connections(fault_proxy, redis_url: str) -> None:
    """refuse() makes new connections die at once, as a broker that is down would."""
    proxy, url = await fault_proxy(redis_url)
    proxy.refuse()
    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        with pytest.raises(RedisConnectionError):
            await client.ping()
        proxy.refuse(False)
        assert await client.ping()
    finally:
        await client.aclose()
