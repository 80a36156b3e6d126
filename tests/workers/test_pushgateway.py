"""Workers pushing to a real Pushgateway, and serving their own /ping, /metrics and /ready."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import pytest

from aioamqp_ext import BaseConsumer, BaseProducer
from aiohttp_prometheus_monitoring import WrongConfiguration
from aiohttp_prometheus_monitoring.config import load_config
from aiohttp_prometheus_monitoring.pushgateway import PushgatewayConfig
from aiohttp_prometheus_monitoring.worker import serve_worker
from tests.conftest import AmqpNames
from tests.monitoring.conftest import poll, samples
from tests.monitoring.test_web import free_port
from tests.workers.conftest import Program, get_text

Labels = tuple[tuple[str, str], ...]


class Counting(BaseConsumer):
    """Counts what it handled; an order with ``fail`` raises."""

    handled = 0

    async def process_request(self, data: Any) -> None:
        if data.get("fail"):
            raise ValueError("refused on purpose")
        self.handled += 1


async def pushed(url: str, name: str, **labels: str) -> float | None:
    """The value of ``name`` with (at least) ``labels`` on the Pushgateway, None if absent."""
    answer = await get_text(f"{url}/metrics")
    assert answer is not None
    for (sample, got), value in samples(answer[1]).items():
        if sample == name and set(labels.items()) <= set(got):
            return value
    return None


async def publish(url: str, exchange: str, *orders: dict[str, Any]) -> None:
    async with BaseProducer(url=url, exchange=exchange) as producer:
        for order in orders:
            await producer.publish_message(order, routing_key="orders.created")


async def test_example_worker_pushes_its_final_numbers_at_shutdown(
    amqp_url: str, amqp_names: AmqpNames, pushgateway: str, example: Any
) -> None:
    """With a push interval far longer than the test, what the Pushgateway ends with can only
    come from the push at shutdown: every order settled and the connection closed."""
    worker: Program = await example("shop_worker.py", {
        "AMQP_URL": amqp_url, "EXCHANGE": amqp_names.exchange, "QUEUE": amqp_names.queue,
        "DEAD_LETTER_EXCHANGE": amqp_names.dead_letter_exchange, "WORKER_PORT": "off",
        "PUSHGATEWAY_URL": pushgateway, "PUSH_INTERVAL": "3600",
    })  # fmt: skip
    queue = amqp_names.queue

    async def first_push() -> bool:
        return await pushed(pushgateway, "push_time_seconds", job="billing-worker") is not None

    await poll(first_push, timeout=20, interval=0.05)
    await poll(lambda: asyncio.sleep(0, "consuming queue" in worker.output()), timeout=20)
    await publish(amqp_url, amqp_names.exchange, {"order": 1}, {"order": 2},
                  {"order": 3, "fail": True})  # fmt: skip
    await poll(lambda: asyncio.sleep(0, worker.output().count("billing order") == 2), timeout=20)
    await poll(lambda: asyncio.sleep(0, "rejected: handler failed" in worker.output()), timeout=20)
    ack = {"queue": queue, "result": "ack"}
    assert await pushed(pushgateway, "amqp_messages_consumed_total", **ack) == 0.0  # first push
    assert await worker.stop() == 0, worker.output()
    job = {"job": "billing-worker"}
    for result, count in (("ack", 2.0), ("retry", 2.0), ("dead_letter", 1.0)):
        got = await pushed(pushgateway, "amqp_messages_consumed_total", queue=queue,
                           result=result, **job)  # fmt: skip
        assert got == count, (result, worker.output())
    assert await pushed(pushgateway, "amqp_connection_up", **job) == 0.0  # pushed after close
    assert await pushed(pushgateway, "amqp_message_handling_seconds_count", queue=queue) == 5.0
    instance = re.compile(r"instance=\"[^\"]+:\d+\"")
    answer = await get_text(f"{pushgateway}/metrics")
    assert answer is not None
    assert instance.search(answer[1])  # the grouping key


async def test_worker_pushes_on_its_interval_while_it_consumes(
    amqp_url: str, amqp_names: AmqpNames, pushgateway: str
) -> None:
    """Each interval's push carries the numbers so far, with the configured grouping key."""
    consumer = Counting(url=amqp_url, exchange=amqp_names.exchange, queue=amqp_names.queue,
                        routing_key="orders.*")  # fmt: skip
    config = {"route_ready": "/ready", "pushgateway": {
        "url": pushgateway, "job": "interval-test", "grouping_key": {"worker": "a/1"},
        "interval": 0.2,
    }}  # fmt: skip
    serving = asyncio.create_task(serve_worker(consumer, config, port=None, handle_signals=False))
    try:
        await poll(lambda: asyncio.sleep(0, consumer.is_connected), timeout=15)
        await publish(amqp_url, amqp_names.exchange, {"order": 1})

        async def acked() -> bool:
            got = await pushed(pushgateway, "amqp_messages_consumed_total", result="ack",
                               worker="a/1", job="interval-test")  # fmt: skip
            return got == 1.0

        await poll(acked, timeout=15, interval=0.05)
        assert await pushed(pushgateway, "amqp_connection_up", worker="a/1") == 1.0
    finally:
        consumer.stop()
        await asyncio.wait_for(serving, timeout=30)


async def test_push_failures_are_logged_once_and_retried_without_stopping_the_worker(
    amqp_url: str, amqp_names: AmqpNames, caplog: pytest.LogCaptureFixture
) -> None:
    """An unreachable Pushgateway costs a warning, retries every interval, and the worker
    still consumes and stops cleanly."""
    caplog.set_level(logging.DEBUG, logger="aiohttp_prometheus_monitoring.pushgateway")
    consumer = Counting(url=amqp_url, exchange=amqp_names.exchange, queue=amqp_names.queue,
                        routing_key="orders.*")  # fmt: skip
    config = {"pushgateway": {"url": f"http://127.0.0.1:{free_port()}", "job": "down",
                              "interval": 0.05, "timeout": 1}}  # fmt: skip
    serving = asyncio.create_task(serve_worker(consumer, config, port=None, handle_signals=False))
    try:
        await poll(lambda: asyncio.sleep(0, consumer.is_connected), timeout=15)
        await publish(amqp_url, amqp_names.exchange, {"order": 1})
        await poll(lambda: asyncio.sleep(0, consumer.handled == 1), timeout=15)

        def failures() -> list[logging.LogRecord]:
            return [r for r in caplog.records if "Pushgateway" in r.getMessage()]

        await poll(lambda: asyncio.sleep(0, len(failures()) >= 3), timeout=15)
    finally:
        consumer.stop()
        await asyncio.wait_for(serving, timeout=30)  # the final push fails too, quietly
    levels = [record.levelno for record in failures()]
    assert levels.count(logging.WARNING) == 1
    assert "failed" in failures()[0].getMessage()


def test_pushgateway_config_lists_every_problem() -> None:
    """A misspelt or missing pushgateway key is reported at set-up, all at once."""
    with pytest.raises(WrongConfiguration) as caught:
        load_config(
            {"pushgateway": {"ur": "x", "job": "", "interval": 0, "grouping_key": {"job": "x"}}}
        )
    message = str(caught.value)
    for part in ("unknown key 'ur'", "url: expected an http://", "job: expected a non-empty",
                 "interval: must be > 0", "grouping_key: expected"):  # fmt: skip
        assert part in message


@pytest.mark.parametrize(
    ("pushgateway", "problem"),
    [
        ("http://u:pa/ss[1]@gw:9091", "pushgateway: expected a dict with url and job, got str"),
        ({"url": "http://u:pa/ss[1]@gw:9091", "job": "j"}, "pushgateway: url: expected an"),
        ({"url": "http://gw", "job": "\ud800"}, "pushgateway: job: expected text UTF-8 can"),
        ({"url": "http://gw", "job": "j", "grouping_key": {"a": "\udcff"}}, "grouping_key"),
        ({"url": "http://gw", "job": "j", "interval": 10**400}, "interval: must be at most"),
    ],
)
def test_pushgateway_config_refuses_hostile_values_without_showing_a_password(
    pushgateway: Any, problem: str
) -> None:
    """What the gateway's URL path or a push would choke on is refused at set-up; a
    password is never shown, however the URL is mangled or typed."""
    with pytest.raises(WrongConfiguration, match=re.escape(problem)) as caught:
        load_config({"pushgateway": pushgateway})
    assert "pa/ss" not in str(caught.value)
    assert "ss[1]" not in str(caught.value)
    config = PushgatewayConfig(url="http://u:pa/ss[1]@gw:9091/", job="j")
    assert repr(config) == (
        "PushgatewayConfig(url='http://u:***@gw:9091/', job='j', grouping_key={}, interval=15)"
    )


def test_pushgateway_group_path_encodes_what_a_path_cannot_hold() -> None:
    """Label values with a slash, or empty, are base64url-encoded, as the gateway reads them."""
    config = PushgatewayConfig(
        url="http://gw:9091/", job="billing",
        grouping_key={"instance": "a/b", "zone": "eu-1", "empty": ""},
    )  # fmt: skip
    assert config.endpoint == (
        "http://gw:9091/metrics/job/billing/instance@base64/YS9i/zone/eu-1/empty@base64/="
    )


async def test_worker_http_server_is_ready_only_while_connected_and_consuming(
    amqp_url: str, amqp_names: AmqpNames
) -> None:
    """/ready answers 200 once the consumer consumes, /metrics has the amqp families, and a
    stop ends the worker."""
    port = free_port()
    consumer = Counting(url=amqp_url, queue=amqp_names.queue)
    serving = asyncio.create_task(
        serve_worker(consumer, host="127.0.0.1", port=port, handle_signals=False)
    )
    base = f"http://127.0.0.1:{port}"
    try:

        async def ready() -> bool:
            answer = await get_text(f"{base}/ready")
            return answer is not None and answer[0] == 200

        await poll(ready, timeout=15, interval=0.05)
        _, text = await get_text(f"{base}/metrics") or (0, "")
        got = samples(text)
        assert got[("amqp_connection_up", ())] == 1.0
        assert got[("amqp_messages_in_flight", (("queue", amqp_names.queue),))] == 0.0
        name = "monitoring_amqp_" + re.sub(r"[^a-zA-Z0-9_]+", "_", amqp_names.queue).strip("_")
        assert got[(name, ())] == 1.0
        assert await get_text(f"{base}/ping") == (200, "pong")
    finally:
        consumer.stop()
        await asyncio.wait_for(serving, timeout=30)
    assert await get_text(f"{base}/ping") is None  # the server is gone
