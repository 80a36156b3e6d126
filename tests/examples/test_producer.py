"""A producer test: what the service publishes, recorded instead of sent.

``place_order`` stands for the service's own code, which takes its producer as an argument.
"""

from typing import Any

from aioamqp_ext import BaseProducer
from aioamqp_ext.testing import RecordingProducer


async def place_order(producer: BaseProducer, order: dict[str, Any]) -> str:
    """Publish the order, then ask the stock service to reserve its lines."""
    await producer.publish_message(order, routing_key="order.created")
    answer = await producer.request({"lines": order["lines"]}, routing_key="stock.reserve")
    return str(answer["status"])


async def test_placing_an_order_publishes_it_and_reserves_stock():
    producer = RecordingProducer(exchange="shop", responder=lambda ask: {"status": "reserved"})
    status = await place_order(producer, {"id": 7, "lines": [1, 2]})
    assert status == "reserved"
    created, reserve = producer.published
    assert (created.routing_key, created.payload) == ("order.created", {"id": 7, "lines": [1, 2]})
    assert created.properties["delivery_mode"] == 2  # persistent
    assert reserve.routing_key == "stock.reserve"
    assert reserve.reply == {"status": "reserved"}
