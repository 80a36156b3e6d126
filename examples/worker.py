"""Program A, a production worker: orders from a durable topic exchange, logged.

    AMQP_URL=amqp://guest:guest@127.0.0.1:5672/ python examples/worker.py
    curl http://127.0.0.1:9101/metrics      # amqp_messages_consumed_total, handling latency
    curl http://127.0.0.1:9101/ready        # 200 while connected and consuming, else 503

The monitoring listens on every address (port ``MONITORING_PORT``), so that Prometheus and
the probes of a container's orchestrator reach it; it also shows the queue's depth
(``amqp_queue_messages``). A message whose handler raises, or whose body is not JSON, goes to
the queue ``orders.dlq``; up to 10 messages are handled at once; SIGTERM or SIGINT lets them
finish, acks them and exits; a lost broker connection is healed and consuming resumes.
"""

import logging
import os

from aioamqp_ext import BaseConsumer


class Orders(BaseConsumer):
    async def process_request(self, data: dict[str, object]) -> None:
        logging.getLogger("orders").info("order %s: %s", data["id"], data)


logging.basicConfig(level=logging.INFO)
Orders(
    url=os.environ["AMQP_URL"],
    exchange=os.environ.get("EXCHANGE", "shop"),  # a durable topic exchange by default
    queue=os.environ.get("QUEUE", "orders"),
    routing_key=["order.created", "order.paid"],
    prefetch_count=10,  # up to 10 handlers at once
    dead_letter_exchange=os.environ.get("DEAD_LETTER_EXCHANGE", "shop.dead"),  # -> orders.dlq
).run(monitoring_port=int(os.environ.get("MONITORING_PORT", "9101")))
