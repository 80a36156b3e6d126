"""Publish a few orders with publisher confirms: each await returns once the broker has them.

    AMQP_URL=amqp://guest:guest@127.0.0.1:5672/ python examples/producer.py [COUNT]

Run examples/shop_worker.py beside it to see them consumed.
"""

import asyncio
import os
import sys

from aioamqp_ext import BaseProducer

URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
EXCHANGE = os.environ.get("EXCHANGE", "shop")


async def main(count: int) -> None:
    async with BaseProducer(url=URL, exchange=EXCHANGE) as producer:
        await asyncio.gather(
            *(
                producer.publish_message({"order": n}, routing_key="orders.created")
                for n in range(count)
            )
        )
    print(f"published {count} orders, all confirmed")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10))
