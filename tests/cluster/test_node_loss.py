"""Node loss on a real cluster: a quorum queue keeps every confirmed message, clients fail over."""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any

import pytest

from aioamqp_ext import BaseConsumer, BaseProducer
from tests.amqp.conftest import Stream, wait_until
from tests.cluster.conftest import Cluster
from tests.conftest import AmqpNames, amqp_connect

pytestmark = pytest.mark.cluster

RATE = 800  # messages per second, until both node losses are over, then a tail
BETWEEN = 4_000  # confirmed before each node loss, and after the last one (the tail)
RESUME_LIMIT = 10.0  # seconds from a node's stop to the consumer's first message elsewhere


class Tally(BaseConsumer):
    """Records, per message id, when it arrived and after how many reconnections."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: dict[str, list[tuple[float, int]]] = {}

    async def process_request(self, data: Any) -> None:
        arrival = (asyncio.get_running_loop().time(), self.reconnects)
        self.seen.setdefault(data, []).append(arrival)


@pytest.mark.slow
async def test_a_quorum_queue_loses_no_confirmed_message_when_the_client_nodes_stop_or_crash(
    cluster: Cluster,
    cluster_names: AmqpNames,
    unique_name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Losing a node, stopped or crashed, must cost seconds, never messages."""
    caplog.set_level(logging.INFO, logger="aioamqp_ext")
    options: dict[str, Any] = {"exchange": cluster_names.exchange, "publish_timeout": 60.0}
    # The orders put producer and consumer on different nodes, before and after each loss:
    # producer 1, 3, 2 and consumer 2, 3, 1.
    first, second, third = cluster.nodes
    producer = BaseProducer(
        url=[first.url, third.url, second.url],
        connection_name=f"{unique_name} producer",
        **options,
    )
    consumer = Tally(
        url=cluster.urls(1),
        queue=cluster_names.queue,
        routing_key="k",
        prefetch_count=200,
        queue_arguments={"x-queue-type": "quorum"},
        connection_name=f"{unique_name} consumer",
        **options,
    )
    stream = Stream(producer, rate=RATE, window=500, tail=BETWEEN)
    loop = asyncio.get_running_loop()

    async def stop_nodes() -> list[tuple[str, str, float]]:
        """Stop the producer's node, start it again, then crash the consumer's node."""
        stops = []
        await stream.confirmed_more(BETWEEN)
        node = await cluster.node_of(f"{unique_name} producer")
        stopped = loop.time()
        await cluster.stop(node)
        await wait_until(lambda: producer.reconnects == 1, 60, "the producer on another node")
        stops.append(("producer's, stopped", str(node), round(loop.time() - stopped, 2)))
        restarting = loop.time()
        await cluster.start(node)  # a majority of the quorum again before the next loss
        stops.append(("restart", str(node), round(loop.time() - restarting, 2)))
        await stream.confirmed_more(BETWEEN)  # the stream goes on, however long that took
        node = await cluster.node_of(f"{unique_name} consumer")
        leader = await cluster.leader_of(cluster_names.queue)
        stopped = loop.time()
        await cluster.kill(node)  # no goodbye: the queue's leader dies with it

        def resumed() -> bool:
            return any(n == 1 for arrivals in consumer.seen.values() for _, n in arrivals)

        await wait_until(resumed, 60, "the consumer receiving on another node")
        first = min(t for arrivals in consumer.seen.values() for t, n in arrivals if n == 1)
        stops.append(("consumer's, killed", str(node), round(first - stopped, 2)))
        print(f"\nthe queue's leader when the consumer's node was killed: {leader}")
        moved = await cluster.node_of(f"{unique_name} consumer")
        assert moved != node
        return stops

    async with consumer, producer:
        assert await cluster.node_of(f"{unique_name} producer") != await cluster.node_of(
            f"{unique_name} consumer"
        )
        stops = await stream.during(stop_nodes())
        confirmed = stream.confirmed
        await wait_until(lambda: confirmed <= consumer.seen.keys(), 60, "every confirmed id")
    duplicates = sum(len(arrivals) - 1 for arrivals in consumer.seen.values())
    heals = [r.getMessage() for r in caplog.records if "reconnected to" in r.getMessage()]
    print(
        f"\nnode loss: {stream.published} published in {stream.seconds:.1f} s, "
        f"{len(confirmed)} confirmed, {len(stream.failed)} failed, {duplicates} duplicates; "
        f"node losses (whose node, which, seconds from the loss to the producer's "
        f"reconnection / to the consumer's first message on another node; and the restart in "
        f"between): {stops}; {heals}"
    )
    assert [who for who, _, _ in stops] == ["producer's, stopped", "restart", "consumer's, killed"]
    assert (producer.reconnects, consumer.reconnects) == (1, 1)  # each lost only its own node
    consumer_resume = stops[2][2]
    assert consumer_resume < RESUME_LIMIT
    assert stream.failed == {}
    assert confirmed == stream.ids


LEADER_RATE = 500
LEADER_BETWEEN = 1_000  # confirmed before the leader's node stops, and after it


@pytest.mark.slow
async def test_clients_on_other_nodes_carry_on_without_reconnecting_when_the_leader_node_stops(
    cluster: Cluster, cluster_names: AmqpNames
) -> None:
    """Losing the node that leads the queue must not even cost the clients a reconnection."""
    first, second, third = cluster.nodes
    transport, protocol = await amqp_connect(third.url)  # the queue is led from the third node
    try:
        channel = await protocol.channel()
        await channel.queue_declare(cluster_names.queue, durable=True,
                                    arguments={"x-queue-type": "quorum"})  # fmt: skip
    finally:
        await protocol.close()
        transport.close()
    assert await cluster.leader_of(cluster_names.queue) == str(third)
    options: dict[str, Any] = {"exchange": cluster_names.exchange, "publish_timeout": 60.0}
    producer = BaseProducer(url=[second.url], **options)
    consumer = Tally(url=[first.url], queue=cluster_names.queue, routing_key="k",
                     prefetch_count=50, queue_arguments={"x-queue-type": "quorum"},
                     **options)  # fmt: skip
    stream = Stream(producer, rate=LEADER_RATE, tail=LEADER_BETWEEN)
    loop = asyncio.get_running_loop()

    async def stop_leader() -> float:
        await stream.confirmed_more(LEADER_BETWEEN)
        stopped = loop.time()
        await cluster.stop(third)
        return stopped

    async with consumer, producer:
        stopped = await stream.during(stop_leader())
        confirmed = stream.confirmed
        await wait_until(lambda: confirmed <= consumer.seen.keys(), 60, "every confirmed id")
        leader = await cluster.leader_of(cluster_names.queue)
    arrivals = sorted(t for times in consumer.seen.values() for t, _ in times)
    gap = max(b - a for a, b in itertools.pairwise(arrivals) if b > stopped)
    print(
        f"\nleader loss: {third} (the leader) stopped; new leader {leader}; longest pause "
        f"in deliveries after the stop {gap:.2f} s; {stream.published} published, "
        f"{len(confirmed)} confirmed, {len(stream.failed)} failed; reconnections: producer "
        f"{producer.reconnects}, consumer {consumer.reconnects}"
    )
    assert leader in (str(first), str(second))
    assert (producer.reconnects, consumer.reconnects) == (0, 0)
    assert stream.failed == {}
    assert confirmed == stream.ids


@pytest.mark.slow
async def test_a_classic_queue_is_out_of_service_while_its_node_is_down_then_resumes(
    cluster: Cluster, cluster_names: AmqpNames, caplog: pytest.LogCaptureFixture
) -> None:
    """What quorum queues buy: a classic queue lives on one node, and its consumer can only
    wait for that node (retrying, not failing), then resumes by itself."""
    caplog.set_level(logging.INFO, logger="aioamqp_ext")
    first, second, _ = cluster.nodes
    consumer = Tally(
        url=[second.url, first.url],
        exchange=cluster_names.exchange,
        queue=cluster_names.queue,
        routing_key="k",
        reconnect_max_delay=1.0,
    )
    loop = asyncio.get_running_loop()

    def refused() -> bool:
        return any("home node" in r.getMessage() for r in caplog.records)

    async with consumer:  # the queue is declared on the second node: its home
        await cluster.stop(second)
        await wait_until(refused, 20, "the other node refusing the queue")
        assert not consumer.is_connected
        await cluster.start(second)
        back = loop.time()
        await consumer.wait_connected(timeout=20)
        resumed = loop.time() - back
        async with BaseProducer(url=[first.url], exchange=cluster_names.exchange) as producer:
            for n in range(100):
                await producer.publish_message(str(n), routing_key="k")
        await wait_until(lambda: len(consumer.seen) == 100, 20, "100 messages")
    refusal = next(r.getMessage() for r in caplog.records if "home node" in r.getMessage())
    print(f"\nclassic queue: node {second} down: {refusal}; consuming again {resumed:.2f} s "
          "after the node was back")  # fmt: skip
