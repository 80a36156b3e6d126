"""The testing kit tells the truth: each scenario runs through ``ConsumerHarness`` in memory
and through the same consumer on RabbitMQ, and what a user can observe must be equal: the
result, the error, the attempts, the sequence of settlements, the reply and the dead letters.

``python -m pytest tests/amqp/test_honesty.py -s`` prints the table of both runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from aioamqp_ext import BaseConsumer, BaseProducer, JsonSerializer, Message
from aioamqp_ext.message import RETRY_HEADER
from aioamqp_ext.testing import ConsumerHarness
from tests.amqp.conftest import Broker, wait_until
from tests.conftest import AmqpNames


class Orders(BaseConsumer):
    """What each scenario's message asks the handler to do."""

    last_retries = 0  # of the last message handled (the attempts, on RabbitMQ)

    async def process_request(self, data: dict[str, Any], message: Message) -> Any:
        self.last_retries = message.retries
        do = data["do"]
        if do == "fail" or (do == "fail_once" and message.retries == 0):
            raise ValueError(f"order {data['id']} refused")
        if do == "hang":
            await asyncio.sleep(60)
        return {"order": data["id"], "status": "stored"} if do == "reply" else None


@dataclass(frozen=True)
class Scenario:
    name: str
    payload: Any = None
    body: bytes | None = None  # instead of payload: a body sent as is (JSON content type)
    options: dict[str, Any] = field(default_factory=dict)
    reply: bool = False  # sent with reply_to


SCENARIOS = [
    Scenario("success", {"id": 1, "do": "ok"}),
    Scenario("handler error", {"id": 2, "do": "fail"}),
    Scenario("poison body", body=b"\xff{not json"),
    Scenario(
        "retries, then dead letter",
        {"id": 4, "do": "fail"},
        options={"max_retries": 2, "retry_delays": (0.05,)},
    ),
    Scenario("retried, then handled", {"id": 5, "do": "fail_once"}, options={"max_retries": 2}),
    Scenario("handler timeout", {"id": 6, "do": "hang"}, options={"handler_timeout": 0.2}),
    Scenario("reply", {"id": 7, "do": "reply"}, reply=True),
]
ROUTING_KEY = "order.created"
TABLE: dict[str, dict[str, tuple[Any, ...]]] = {}


def consumer_of(scenario: Scenario, names: AmqpNames, **more: Any) -> Orders:
    return Orders(
        exchange=names.exchange,
        queue=names.queue,
        routing_key="order.*",
        dead_letter_exchange=names.dead_letter_exchange,
        **scenario.options,
        **more,
    )


def seen(
    result: str,
    error: BaseException | None,
    attempts: int,
    history: tuple[str, ...],
    reply: Any,
    dead: list[Any],
) -> tuple[Any, ...]:
    """What a user observes of one message, in comparable values."""
    return (result, type(error).__name__ if error else None, attempts, history, reply, dead)


async def in_memory(scenario: Scenario, names: AmqpNames) -> tuple[Any, ...]:
    async with ConsumerHarness(consumer_of(scenario, names)) as harness:
        properties: dict[str, Any] = (
            {"reply_to": f"{names.queue}.replies"} if scenario.reply else {}
        )
        if scenario.body is not None:
            properties["content_type"] = "application/json"
            outcome = await harness.deliver(body=scenario.body, routing_key=ROUTING_KEY,
                                            **properties)  # fmt: skip
        else:
            outcome = await harness.deliver(scenario.payload, routing_key=ROUTING_KEY,
                                            **properties)  # fmt: skip
        attempts = outcome.attempts if scenario.options.get("max_retries") else 1
        return seen(outcome.result, outcome.error, attempts, outcome.history, outcome.reply,
                    harness.dead_letters())  # fmt: skip


async def on_rabbitmq(
    scenario: Scenario, names: AmqpNames, broker: Broker, amqp_url: str
) -> tuple[Any, ...]:
    registry = CollectorRegistry()
    consumer = consumer_of(scenario, names, url=amqp_url, registry=registry)
    for delay in scenario.options.get("retry_delays", ()):
        names.retry_queue(delay)  # deleted after the test
    errors: list[BaseException] = []
    consumer._observer = lambda delivery, error: errors.append(error)  # what the harness uses
    replies = f"{names.queue}.replies"
    names.more_queues.append(replies)
    await broker.channel.queue_declare(replies, durable=False)
    producer = BaseProducer(
        amqp_url,
        exchange=names.exchange,
        serializer="raw" if scenario.body is not None else "json",
    )

    def settled(result: str) -> float:
        sample = registry.get_sample_value(
            "amqp_messages_consumed_total", {"queue": names.queue, "result": result}
        )
        return sample or 0.0

    try:
        await consumer.consume()
        properties: dict[str, Any] = {"reply_to": replies} if scenario.reply else {}
        if scenario.body is not None:
            properties["content_type"] = "application/json"
        payload = scenario.body if scenario.body is not None else scenario.payload
        await producer.publish_message(payload, ROUTING_KEY, properties=properties)
        await wait_until(
            lambda: settled("ack") + settled("dead_letter") >= 1, 30, f"{scenario.name} settled"
        )
        result = "ack" if settled("ack") else "dead_letter"
        history = ("retry",) * int(settled("retry")) + (result,)
        dead = []
        last_retries = consumer.last_retries if result == "ack" else 0
        # the broker dead-letters after the reject: wait for it, then for nothing more
        letters = await broker.take(names.dlq, 1) if result == "dead_letter" else []
        while (message := await broker.get(names.dlq)) is not None:
            letters.append(message)
        for message in letters:
            last_retries = message.headers.get(RETRY_HEADER, 0)
            try:
                dead.append(JsonSerializer().deserialize(message.body))
            except ValueError:
                dead.append(message.body)
        got = await broker.get(replies)
        reply = JsonSerializer().deserialize(got.body) if got is not None else None
        error = None if result == "ack" else errors[-1]
        return seen(result, error, last_retries + 1, history, reply, dead)
    finally:
        await producer.close()
        await consumer.close()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_the_harness_and_rabbitmq_agree(
    scenario: Scenario, amqp_names: AmqpNames, broker: Broker, amqp_url: str
) -> None:
    memory = await in_memory(scenario, amqp_names)
    real = await on_rabbitmq(scenario, amqp_names, broker, amqp_url)
    TABLE[scenario.name] = {"memory": memory, "rabbitmq": real}
    assert memory == real


@pytest.fixture(scope="module", autouse=True)
def table(request: pytest.FixtureRequest) -> Iterator[None]:
    """Prints the table of the scenarios run, after them."""
    yield
    if not TABLE:
        return
    lines = ["| scenario | result | error | attempts | settlements | reply | dead letters | "
             "same on RabbitMQ |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, row in TABLE.items():
        result, error, attempts, history, reply, dead = row["memory"]
        same = "yes" if row["memory"] == row["rabbitmq"] else f"NO: {row['rabbitmq']}"
        lines.append(f"| {name} | {result} | {error} | {attempts} | {', '.join(history)} | "
                     f"{reply} | {dead} | {same} |")  # fmt: skip
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("\n" + "\n".join(lines))
