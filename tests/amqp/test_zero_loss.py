"""Nothing lost: a stream of confirmed messages across repeated connection cuts and operator
closes, going on until every fault has been injected and healed."""

from __future__ import annotations

import contextlib
import logging
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import pytest

from aioamqp_ext import BaseConsumer, BaseProducer
from tests.amqp.conftest import Stream, close_connections_named, wait_until
from tests.conftest import AmqpNames
from tests.proxy import FaultProxy

MakeProxy = Callable[[str], Awaitable[tuple[FaultProxy, str]]]
RATE = 1_600  # messages per second
BETWEEN = 2_500  # confirmed between two faults, and after the last one (the tail)
FAULTS = 6  # three proxy cuts and three rabbitmqctl close_connection, alternating


class Tally(BaseConsumer):
    """Counts how often each message id arrives."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: Counter[str] = Counter()

    async def process_request(self, data: Any) -> None:
        self.seen[data] += 1


def heal_times(caplog: pytest.LogCaptureFixture) -> list[float]:
    """Seconds from each loss to its reconnection, as the library logged them."""
    found = (re.search(r"reconnected to .* in ([0-9.]+) s", r.getMessage()) for r in caplog.records)
    return [float(m.group(1)) for m in found if m]


@pytest.mark.slow
async def test_no_confirmed_message_is_lost_across_cuts_and_operator_closes(
    fault_proxy: MakeProxy,
    amqp_url: str,
    amqp_names: AmqpNames,
    unique_name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The core promise: a publish that returned means the consumer gets it, faults or not."""
    caplog.set_level(logging.INFO, logger="aioamqp_ext")
    fault, url = await fault_proxy(amqp_url)
    options: dict[str, Any] = {"url": url, "exchange": amqp_names.exchange, "reconnect_delay": 0.05}
    consumer = Tally(
        queue=amqp_names.queue,
        routing_key="k",
        prefetch_count=200,
        connection_name=f"{unique_name} consumer",
        **options,
    )
    producer = BaseProducer(connection_name=f"{unique_name} producer", **options)
    stream = Stream(producer, rate=RATE, window=500, tail=BETWEEN)

    def healed(times: int) -> bool:
        return producer.reconnects == consumer.reconnects == times

    async def inject_faults() -> list[str]:
        done = []
        for k in range(FAULTS):
            await stream.confirmed_more(BETWEEN)
            if k % 2 == 0:
                assert fault.cut() == 2
                done.append("proxy cut")
            else:
                assert await close_connections_named(unique_name, expected=2) == 2
                done.append("rabbitmqctl close_connection")
            await wait_until(partial(healed, k + 1), 60, f"both healed after fault {k + 1}")
        return done

    async with consumer, producer:
        faults = await stream.during(inject_faults())
        missing = await _wait_for_all(consumer, stream.confirmed)
    duplicates = sum(count - 1 for count in consumer.seen.values() if count > 1)
    heals = heal_times(caplog)
    print(
        f"\n{stream.published} published, {len(stream.confirmed)} confirmed, "
        f"{len(stream.failed)} failed, {duplicates} duplicates "
        f"({sum(1 for c in consumer.seen.values() if c > 1)} ids), in {stream.seconds:.1f} s; "
        f"faults: {faults}; heal times (s): {heals}"
    )
    assert len(faults) == FAULTS
    assert len(heals) == 2 * FAULTS  # producer and consumer each healed after every fault
    assert missing == set()
    assert stream.failed == {}  # unconfirmed publishes were published again, none failed
    assert stream.confirmed == stream.ids
    assert set(consumer.seen) <= stream.ids


async def _wait_for_all(consumer: Tally, confirmed: set[str]) -> set[str]:
    """Confirmed ids the consumer has not seen once it stops receiving (empty: none lost)."""
    with contextlib.suppress(AssertionError):  # the assertion below names what is missing
        await wait_until(lambda: confirmed <= consumer.seen.keys(), 60, "every confirmed id")
    return confirmed - consumer.seen.keys()
