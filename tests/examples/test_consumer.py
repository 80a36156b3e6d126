"""A consumer test: the handler's whole world in memory, each test in milliseconds.

The consumer would live in the service's own module; it is here to keep the page whole.
"""

from typing import Any

from aioamqp_ext import BaseConsumer, Message


class Orders(BaseConsumer):
    """Stores orders; refuses a negative total; answers a request with the order's status."""

    def __init__(self, **options: Any) -> None:
        super().__init__(
            exchange="shop",
            queue="orders",
            routing_key="order.*",
            dead_letter_exchange="shop.dead",
            max_retries=2,
            **options,
        )
        self.stored: list[int] = []

    async def process_request(self, data: dict[str, Any], message: Message) -> Any:
        if data["total"] < 0:
            raise ValueError(f"order {data['id']}: negative total")
        self.stored.append(data["id"])
        return {"id": data["id"], "status": "stored"}


async def test_an_order_is_stored(amqp_harness):
    orders = Orders()
    harness = await amqp_harness(orders)
    outcome = await harness.deliver({"id": 7, "total": 30}, routing_key="order.created")
    assert outcome.result == "ack"
    assert orders.stored == [7]


async def test_a_bad_order_is_retried_then_dead_lettered(amqp_harness):
    harness = await amqp_harness(Orders())
    outcome = await harness.deliver({"id": 8, "total": -1}, routing_key="order.created")
    assert outcome.result == "dead_letter"
    assert outcome.attempts == 3  # the first try and max_retries=2
    assert isinstance(outcome.error, ValueError)
    assert harness.dead_letters() == [{"id": 8, "total": -1}]


async def test_a_body_that_is_not_json_is_dead_lettered(amqp_harness):
    harness = await amqp_harness(Orders())
    outcome = await harness.deliver(body=b"{oops", routing_key="order.created")
    assert outcome.result == "dead_letter"
    assert outcome.attempts == 1  # never retried: it would fail again


async def test_a_request_gets_the_handlers_answer(amqp_harness):
    harness = await amqp_harness(Orders())
    outcome = await harness.deliver(
        {"id": 9, "total": 5}, routing_key="order.created", reply_to="shop.replies"
    )
    assert outcome.reply == {"id": 9, "status": "stored"}
