"""``publish_message()`` and ``close()`` are plain functions (they work without an event loop),
yet users await them, and so do their tests' mocks: introspection must call them coroutine
functions, so that ``create_autospec`` gives ``AsyncMock``s, on every supported Python."""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import sys
from pathlib import Path
from unittest.mock import AsyncMock, create_autospec

import pytest

from aioamqp_ext import BaseConsumer, BaseProducer

ROOT = Path(__file__).resolve().parents[2]
PYENV = Path.home() / ".pyenv" / "versions"


async def test_autospec_of_a_producer_is_awaited_like_the_producer() -> None:
    """A user's ``await mock.publish_message(...)`` must work, and be checkable as awaited."""
    for producer in (create_autospec(BaseProducer, instance=True),
                     create_autospec(BaseProducer).return_value):  # fmt: skip
        assert isinstance(producer.publish_message, AsyncMock)
        assert isinstance(producer.close, AsyncMock)
        await producer.publish_message({"id": 7}, routing_key="order.created")
        await producer.close()
        producer.publish_message.assert_awaited_once_with({"id": 7}, routing_key="order.created")
        producer.close.assert_awaited_once_with()
        with pytest.raises(TypeError):  # still autospecced: the real signature is enforced
            await producer.publish_message({"id": 7}, "k", None, False, False, "extra")


async def test_autospec_of_a_consumer_closes_like_the_consumer() -> None:
    """The consumer's ``close()`` is the same shared method: awaited on its mock too."""
    consumer = create_autospec(BaseConsumer, instance=True)
    assert isinstance(consumer.close, AsyncMock)
    await consumer.close()
    consumer.close.assert_awaited_once_with()


def test_the_methods_introspect_as_coroutine_functions() -> None:
    """What frameworks and mock ask: a coroutine function, on the class and bound."""
    producer = BaseProducer(url="amqp://127.0.0.1:1/", exchange="x")
    for method in (BaseProducer.publish_message, BaseProducer.close, producer.publish_message,
                   producer.close, BaseConsumer.close):  # fmt: skip
        assert asyncio.iscoroutinefunction(method)  # what unittest.mock asks on 3.11-3.13
        if sys.version_info >= (3, 12):
            assert inspect.iscoroutinefunction(method)


# Run by each Python found: the marking helper alone (loaded from its file: it needs nothing
# but the standard library), on a stand-in class with the same shape as the producer's methods.
MECHANISM = """
import asyncio, importlib.util, sys, warnings
from unittest.mock import AsyncMock, create_autospec
warnings.simplefilter("error")
spec = importlib.util.spec_from_file_location("noloop", sys.argv[1])
noloop = importlib.util.module_from_spec(spec)
spec.loader.exec_module(noloop)

class Producer:
    @noloop.awaitable
    def publish_message(self, payload, routing_key=None):
        async def publishing():
            return payload
        return publishing()

mock = create_autospec(Producer, instance=True)
assert isinstance(mock.publish_message, AsyncMock), type(mock.publish_message)
asyncio.run(mock.publish_message(1, routing_key="k"))
mock.publish_message.assert_awaited_once_with(1, routing_key="k")
assert asyncio.run(Producer().publish_message(3)) == 3
print("%d.%d" % sys.version_info[:2])
"""


def _pythons() -> list[Path]:
    found = {f"{sys.version_info[0]}.{sys.version_info[1]}": Path(sys.executable)}
    for minor in ("3.11", "3.12", "3.13"):
        for candidate in sorted(PYENV.glob(f"{minor}.*/bin/python")):
            found.setdefault(minor, candidate)
    return [found[minor] for minor in sorted(found)]


@pytest.mark.parametrize("python", _pythons(), ids=lambda path: str(path))
def test_the_mark_gives_async_mocks_on_each_python(python: Path) -> None:
    """unittest.mock reads the mark differently across 3.11-3.13; each Python found here
    (this one, and pyenv's 3.11, 3.12 and 3.13) must give an AsyncMock."""
    result = subprocess.run(
        [python, "-c", MECHANISM, ROOT / "aioamqp_ext" / "_noloop.py"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("3.1")
