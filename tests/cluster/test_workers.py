"""Competing workers on one quorum queue of the cluster: real processes, killed and scaled in."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from aioamqp_ext import BaseProducer
from tests.amqp.conftest import Stream, rabbitmqctl, wait_until
from tests.cluster.conftest import Cluster
from tests.conftest import AmqpNames
from tests.monitoring.conftest import poll
from tests.monitoring.test_web import ROOT
from tests.workers.conftest import Program

pytestmark = pytest.mark.cluster

WORKER = Path(__file__).with_name("worker.py")


@dataclass
class Worker:
    """A worker process and what it printed so far: the ids it began and finished."""

    name: str
    program: Program
    started: Counter[str] = field(default_factory=Counter)
    done: Counter[str] = field(default_factory=Counter)
    _read: int = 0

    def refresh(self) -> Worker:
        """Take in the lines printed since the last call."""
        lines = self.program.lines
        for line in lines[self._read :]:
            kind, _, message_id = line.rstrip("\n").partition(" ")
            if kind == "start":
                self.started[message_id] += 1
            elif kind == "done":
                self.done[message_id] += 1
        self._read = len(lines)
        return self

    def said(self, text: str) -> bool:
        return text in self.program.output()


StartWorkers = Callable[..., Awaitable[list[Worker]]]


@pytest.fixture
async def workers(
    cluster: Cluster, cluster_names: AmqpNames, unique_name: str
) -> AsyncIterator[StartWorkers]:
    """Factory: ``await workers(3, prefetch=20, work=0.005)`` starts worker processes, each on
    its own node first, and returns once all consume; any still running afterwards are killed."""
    started: list[Worker] = []

    async def start(count: int, *, prefetch: int, work: float = 0.0) -> list[Worker]:
        for n in range(count):
            name = f"{unique_name} worker{n}"
            env = {
                **os.environ, "PYTHONPATH": str(ROOT),
                "WORKER_URLS": " ".join(cluster.urls(n % len(cluster.nodes))),
                "WORKER_EXCHANGE": cluster_names.exchange, "WORKER_QUEUE": cluster_names.queue,
                "WORKER_PREFETCH": str(prefetch), "WORKER_NAME": name, "WORKER_WORK": str(work),
            }  # fmt: skip
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-W", "error", str(WORKER), cwd=ROOT, env=env,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
            lines: list[str] = []
            started.append(Worker(name, Program(process, lines, asyncio.create_task(
                _read_lines(process, lines)))))  # fmt: skip
        ours = started[-count:]
        await wait_until(lambda: all(w.said("consuming queue") for w in ours), 30, "consuming")
        return ours

    yield start
    for worker in started:
        if worker.program.process.returncode is None:
            worker.program.process.kill()
            await worker.program.process.wait()
        await worker.program.reader


async def _read_lines(process: asyncio.subprocess.Process, lines: list[str]) -> None:
    assert process.stdout is not None
    async for line in process.stdout:
        lines.append(line.decode(errors="replace"))


async def queue_depth(cluster: Cluster, queue: str) -> int:
    """Messages in ``queue``, ready or unacknowledged, as the cluster counts them."""
    listing = await rabbitmqctl(
        "-n", cluster.running[0].name, "--no-table-headers", "list_queues", "name", "messages"
    )
    for line in listing.splitlines():
        name, _, count = line.partition("\t")
        if name == queue:
            return int(count)
    raise AssertionError(f"no queue {queue!r} in the cluster")


async def drained(cluster: Cluster, queue: str) -> None:
    """Wait until ``queue`` holds nothing, not even unacknowledged messages."""

    async def empty() -> bool:
        return await queue_depth(cluster, queue) == 0

    await poll(empty, timeout=60, interval=0.2)


def producer_for(cluster: Cluster, names: AmqpNames) -> BaseProducer:
    return BaseProducer(url=cluster.urls(0), exchange=names.exchange, publish_timeout=60.0)


def short(worker: Worker) -> str:
    """The worker's name without the test's prefix: worker0, worker1..."""
    return worker.name.rpartition(" ")[2]


def all_done(workers: list[Worker]) -> Counter[str]:
    total: Counter[str] = Counter()
    for worker in workers:
        total.update(worker.refresh().done)
    return total


RATE = 3_000  # messages per second, until the kill is over, then a tail
BEFORE = 18_000  # confirmed before the kill
AFTER = 12_000  # confirmed after it (the tail)


@pytest.mark.slow
async def test_three_workers_share_a_quorum_queue_and_a_killed_ones_messages_go_to_the_others(
    cluster: Cluster, cluster_names: AmqpNames, workers: StartWorkers
) -> None:
    """Scaling out is running more workers; a worker dying mid-message must lose nothing."""
    crew = await workers(3, prefetch=20, work=0.005)
    producer = producer_for(cluster, cluster_names)
    stream = Stream(producer, rate=RATE, window=500, tail=AFTER)

    async def kill_one() -> tuple[Worker, set[str]]:
        await stream.confirmed_more(BEFORE)
        await producer.publish_message("hold", routing_key="k", properties={"message_id": "hold"})
        await wait_until(lambda: any(w.refresh().started["hold"] for w in crew), 60, "held")
        victim = next(w for w in crew if w.started["hold"])
        assert await victim.program.stop(signal.SIGKILL) == -signal.SIGKILL
        victim.refresh()
        for worker in crew:  # the copy redelivered to another worker may finish
            if worker is not victim:
                worker.program.process.send_signal(signal.SIGUSR1)
        return victim, set(victim.started) - set(victim.done)

    async with producer:
        victim, in_flight = await stream.during(kill_one())
        everything = {*stream.confirmed, "hold"}
        await wait_until(lambda: everything <= all_done(crew).keys(), 120, "every id handled")
    await drained(cluster, cluster_names.queue)
    others = [w for w in crew if w is not victim]
    for worker in others:
        assert await worker.program.stop(signal.SIGTERM) == 0, worker.program.output()[-2000:]
    done = all_done(crew)
    shares = {short(w): len(w.done) for w in crew}
    redelivered = in_flight & set(all_done(others))
    print(
        f"\ncompeting workers: {stream.published} published, {len(stream.confirmed)} confirmed, "
        f"{len(stream.failed)} failed; handled per worker {shares} (victim {short(victim)}, "
        f"SIGKILLed with {len(in_flight)} in its handlers, {len(redelivered)} of them handled "
        f"by the others); duplicates {sum(done.values()) - len(done)}"
    )
    assert stream.failed == {}
    assert stream.confirmed == stream.ids
    assert "hold" in in_flight
    assert in_flight <= set(all_done(others))
    for name, count in shares.items():
        assert count >= stream.published // 10, f"{name} took only {count} of {stream.published}"


SCALE_IN_RATE = 2_000  # messages per second, until the stopped worker is gone, then a tail
SCALE_IN_BETWEEN = 1_200  # confirmed before the SIGTERM, and after the worker exited
HOLDS = 6


@pytest.mark.slow
async def test_sigterm_drains_a_workers_handlers_and_the_others_keep_consuming(
    cluster: Cluster, cluster_names: AmqpNames, workers: StartWorkers
) -> None:
    """Scaling in must not cost a message nor a redelivery: the stopped worker finishes first."""
    crew = await workers(3, prefetch=10)
    producer = producer_for(cluster, cluster_names)
    stream = Stream(producer, rate=SCALE_IN_RATE, tail=SCALE_IN_BETWEEN)
    loop = asyncio.get_running_loop()

    async def scale_in() -> tuple[Worker, set[str], float, dict[str, int]]:
        await stream.confirmed_more(SCALE_IN_BETWEEN)
        holds = [f"hold{n}" for n in range(HOLDS)]
        await asyncio.gather(*(producer.publish_message(h, routing_key="k") for h in holds))

        def holding() -> Any:
            return next((w for w in crew if any(w.refresh().started[h] for h in holds)), None)

        await wait_until(lambda: holding() is not None, 60, "a worker holding a message")
        victim = holding()
        signalled = loop.time()
        victim.program.process.send_signal(signal.SIGTERM)
        await wait_until(lambda: victim.said("SIGTERM received"), 30, "the SIGTERM taken")
        assert victim.program.process.returncode is None  # held by its handler
        in_flight = set(victim.refresh().started) - set(victim.done)
        for worker in crew:
            worker.program.process.send_signal(signal.SIGUSR1)
        async with asyncio.timeout(60):
            code = await victim.program.process.wait()
        assert code == 0, victim.program.output()[-2000:]
        drain = loop.time() - signalled
        await victim.program.reader
        at_exit = {short(w): len(w.refresh().done) for w in crew if w is not victim}
        return victim, in_flight, drain, at_exit

    async with producer:
        victim, in_flight, drain, at_exit = await stream.during(scale_in())
        everything = stream.confirmed | {f"hold{n}" for n in range(HOLDS)}
        await wait_until(lambda: everything <= all_done(crew).keys(), 120, "every id handled")
    await drained(cluster, cluster_names.queue)
    others = [w for w in crew if w is not victim]
    after = {short(w): len(w.refresh().done) - at_exit[short(w)] for w in others}
    for worker in others:
        assert await worker.program.stop() == 0, worker.program.output()[-2000:]
    done = all_done(crew)
    redelivered = set(victim.done) & set(all_done(others))
    print(
        f"\nscale-in: {stream.published + HOLDS} published, {len(stream.failed)} failed; "
        f"SIGTERM to {short(victim)} ({len(victim.done)} handled by it), drained "
        f"{len(in_flight)} handlers and exited 0 in {drain:.2f} s; messages handled by the others "
        f"after it left: {after}; duplicates {sum(done.values()) - len(done)}"
    )
    assert stream.failed == {}
    assert stream.confirmed == stream.ids
    assert in_flight  # it was inside handlers when told to stop
    assert set(victim.started) == set(victim.done)  # every handler it began, it finished
    assert redelivered == set()  # and acked: nothing it handled went to another worker
    assert all(count > 0 for count in after.values()), after
