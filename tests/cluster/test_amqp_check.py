"""The AMQP check given several URLs (the nodes of a cluster), against the machine's broker.

These need no cluster of ours: a port where nothing listens stands for a node that is down.
"""

from __future__ import annotations

import asyncio

import pytest

from aiohttp_prometheus_monitoring.metrics.amqp import AmqpMetric
from tests.monitoring.test_web import free_port

SECRET = "S3cret-not-for-logs"


def down_url() -> str:
    """A URL of a node that is down: nothing listens on its port."""
    return f"amqp://guest:{SECRET}@127.0.0.1:{free_port()}/"


async def test_a_check_of_several_nodes_is_up_while_any_node_accepts_us(amqp_url: str) -> None:
    """A cluster losing one node is still a working cluster: no alert for it."""
    check = AmqpMetric(url=[down_url(), amqp_url, down_url()])
    assert await check.check() is True
    assert await check.check() is True


async def test_a_check_of_several_nodes_tries_the_last_good_one_first(amqp_url: str) -> None:
    """After a failover, a healthy run costs one connection, not one failure per dead node."""
    accepted = 0

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        writer.close()

    broken = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    async with broken:
        port = broken.sockets[0].getsockname()[1]
        check = AmqpMetric(url=[f"amqp://127.0.0.1:{port}/", amqp_url])
        assert await check.check() is True
        assert accepted == 1
        assert await check.check() is True
        assert accepted == 1  # the broken node was not tried again


async def test_a_check_of_several_nodes_is_down_when_none_accepts_us_naming_each() -> None:
    """When every node is gone the check says which and why, and never shows the password."""
    first, second = down_url(), down_url()
    check = AmqpMetric(url=[first, second])
    with pytest.raises(ConnectionError, match=r"no node of 2 accepted us: 127\.0\.0\.1:\d+: .*; "
                       r"127\.0\.0\.1:\d+: ") as caught:  # fmt: skip
        await check.check()
    assert SECRET not in str(caught.value)


def test_a_check_of_several_nodes_takes_the_parts_a_url_omits_from_the_keywords() -> None:
    """``user``, ``password`` and ``vhost`` keep their meaning beside a list of URLs."""
    check = AmqpMetric(url=["amqp://h1:5673", "amqps://u:p@h2/v"], user="me", password=SECRET)
    assert check.nodes == ("h1:5673", "h2:5671")
    assert (check.host, check.port, check.user, check.vhost, check.ssl) == (
        "h1", 5673, "me", "/", False)  # fmt: skip
    assert SECRET not in repr(check)
    assert repr(check) == "AmqpMetric(nodes=['h1:5673', 'h2:5671'], user='me', vhost='/')"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"url": []}, "url: expected an amqp:// URL or a non-empty list of them"),
        ({"url": ["amqp://h/", "http://u:x@h/"]},
         r"url: scheme must be amqp:// or amqps://, got scheme 'http'"),
        ({"url": ["amqp://h/"], "host": "h"}, "give either url or host/port, not both"),
    ],
)  # fmt: skip
def test_a_list_of_urls_is_checked_when_the_check_is_built(
    params: dict[str, object], message: str
) -> None:
    """A misconfigured cluster check fails at start-up, naming the mistake."""
    with pytest.raises(ValueError, match=message):
        AmqpMetric(**params)  # type: ignore[arg-type]
