"""The pytest plugin of aiohttp-booster (entry point ``pytest11``): fixtures for testing a
service's own code, inert unless a test asks for one of them.

- ``amqp_harness``: a factory of started :class:`aioamqp_ext.testing.ConsumerHarness`, each
  closed at the test's teardown: ``harness = await amqp_harness(MyConsumer(queue="q"))``.

Nothing is imported at collection but pytest itself: a project without the ``amqp`` extra,
or without pytest-asyncio, is not affected until it uses a fixture (which then says what to
install).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from aioamqp_ext import BaseConsumer
    from aioamqp_ext.testing import ConsumerHarness

    HarnessFactory = Callable[..., Awaitable[ConsumerHarness]]

from importlib.util import find_spec

__all__ = ["amqp_harness"]


async def _harnesses() -> AsyncIterator[HarnessFactory]:
    """A factory of started ``ConsumerHarness`` objects, each closed at teardown:
    ``harness = await amqp_harness(consumer, follow_retries=..., timeout=...)``."""
    from aioamqp_ext.testing import ConsumerHarness

    started: list[ConsumerHarness] = []

    async def start(consumer: BaseConsumer, **options: Any) -> ConsumerHarness:
        """Start a harness of ``consumer`` (options as ConsumerHarness takes them)."""
        harness = ConsumerHarness(consumer, **options)
        await harness.start()
        started.append(harness)
        return harness

    try:
        yield start
    finally:
        for harness in reversed(started):
            await harness.close()


if find_spec("pytest_asyncio") is not None:  # pytest-aiohttp brings it
    import pytest_asyncio

    amqp_harness = pytest_asyncio.fixture(_harnesses, name="amqp_harness")
else:  # pragma: no cover  # the fixture says what to install

    @pytest.fixture(name="amqp_harness")
    def amqp_harness() -> None:
        """Needs pytest-asyncio to run a harness on the test's event loop."""
        pytest.fail(
            "amqp_harness needs pytest-asyncio (pip install pytest-asyncio, or pytest-aiohttp)"
        )
