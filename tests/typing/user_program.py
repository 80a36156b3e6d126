"""A typed program as a user of aiohttp-booster writes it, for ``mypy --strict``.

tests/test_typing.py checks it with mypy in strict mode, as an installed user would: the
libraries' annotations are what the user's type checker sees (py.typed), and every public call
here must type-check without an ignore. ``assert_type`` pins what each call returns. It is
never run: it only has to type-check.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, assert_type

from aiohttp import web
from prometheus_client import CollectorRegistry

from aioamqp_ext import BaseConsumer, BaseProducer, Message, PublishError
from aioamqp_ext.testing import ConsumerHarness, Outcome, Published, RecordingProducer
from aiohttp_prometheus_monitoring import (
    MONITORING_KEY,
    REGISTRY_KEY,
    WrongConfiguration,
    get_monitoring,
    setup_monitoring,
)
from aiohttp_prometheus_monitoring.metrics.base import BaseMetric
from aiohttp_prometheus_monitoring.testing import force, run_checks, sample
from aiohttp_prometheus_monitoring.web import Monitoring
from aiohttp_prometheus_monitoring.worker import serve_worker


class Orders(BaseConsumer):
    """The short handler form: the deserialized body only."""

    async def process_request(self, data: dict[str, Any]) -> None:
        print(data["id"])


class Prices(BaseConsumer):
    """The long form: the body and the whole message; the return value is the reply."""

    async def process_request(self, data: dict[str, Any], message: Message) -> dict[str, float]:
        assert_type(message.message_id, str | None)
        assert_type(message.routing_key, str)
        assert_type(message.retries, int)
        assert_type(message.redelivered, bool)
        assert_type(message.timestamp, datetime | None)
        return {"price": 9.5}


class DiskSpace(BaseMetric):
    """A custom check: up while the volume has room."""

    kind = "disk"

    def __init__(self, path: str = "/", min_free: float = 0.1, **params: Any) -> None:
        super().__init__(**params)
        self.path = path
        self.min_free = min_free

    async def check(self) -> bool:
        return self.min_free < 1.0


MONITORING = {
    "route_ping": "/ping",
    "route_metrics": "/metrics",
    "metrics": [
        {"name": "monitoring_redis", "url": "redis://localhost:6379/0"},
        {
            "name": "monitoring_disk",
            "description": "Check disk space",
            "module": "user_program.DiskSpace",
            "sleep_time": 60,
            "params": {"path": "/var", "min_free": 0.2},
        },
    ],
}


async def publish_and_request(producer: BaseProducer) -> None:
    assert_type(await producer.publish_message({"id": 7}, routing_key="order.created"), None)
    assert_type(
        await producer.publish_message(
            {"id": 8}, "order.created", properties={"correlation_id": "c-1"}, mandatory=True
        ),
        None,
    )
    reply = await producer.request({"sku": "a1"}, "price.get", timeout=5.0)
    assert_type(reply, Any)
    try:
        await producer.publish_message("x", routing_key="k")
    except PublishError as exc:
        assert_type(exc, PublishError)
    assert_type(await producer.close(), None)


async def consume(consumer: Orders) -> None:
    async with consumer:
        assert_type(consumer.is_connected, bool)
        assert_type(await consumer.wait_connected(timeout=5), None)
    assert_type(await consumer.consume(), None)
    assert_type(await consumer.close(), None)


def main() -> None:
    """A worker's entry point: blocks until SIGINT or SIGTERM."""
    consumer = Orders(
        url="amqp://guest:guest@localhost:5672/",
        exchange="shop",
        queue="orders",
        routing_key=["order.created", "order.paid"],
        prefetch_count=10,
        dead_letter_exchange="shop.dead",
        retry_delays=(1, 10, 60),
    )
    assert_type(consumer.run(monitoring_port=9101), None)
    prices = Prices(url="amqp://localhost:5672/", exchange="shop", queue="prices")
    assert_type(prices, Prices)
    producer = BaseProducer(url="amqp://localhost:5672/", exchange="shop")
    asyncio.run(publish_and_request(producer))


async def create_app() -> web.Application:
    app = web.Application()
    assert_type(await setup_monitoring(MONITORING, app), None)
    assert_type(app[MONITORING_KEY], Monitoring)
    assert_type(app[REGISTRY_KEY], CollectorRegistry)
    assert_type(get_monitoring(app), Monitoring)
    return app


async def broken_config() -> None:
    try:
        await setup_monitoring({"metrics": [{"name": "x"}]}, web.Application())
    except WrongConfiguration as exc:
        assert_type(str(exc), str)


async def worker_monitoring(consumer: Orders) -> None:
    """A consumer served with /ping, /metrics and /ready until SIGINT or SIGTERM."""
    assert_type(await serve_worker(consumer, port=9101), None)


async def tests_of_the_user(app: web.Application) -> None:
    """What the user's own tests call, from the testing kits."""
    async with ConsumerHarness(Orders(queue="orders")) as harness:
        outcome = await harness.deliver({"id": 7}, routing_key="order.created")
        assert_type(outcome, Outcome)
        assert outcome.result == "ack"
        assert_type(outcome.attempts, int)
    recorder = RecordingProducer(exchange="shop")
    await recorder.publish_message({"id": 7}, routing_key="order.created")
    assert_type(recorder.published, list[Published])
    force(app, "monitoring_redis", "down")
    assert_type(await run_checks(app), None)
    assert_type(sample(app, "monitoring_redis"), float | None)
