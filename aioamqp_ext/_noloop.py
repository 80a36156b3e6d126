"""The no-loop mode's pieces: a finished coroutine to return, cancelling what is left, and
the mark that tells introspection our plain-``def`` methods are to be awaited."""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import Callable, Coroutine, Generator
from typing import Any, TypeVar

__all__ = ["DONE", "awaitable", "cancel_all"]

_F = TypeVar("_F", bound=Callable[..., Any])


class _Done(Coroutine[Any, Any, None]):
    """What ``publish_message()``/``close()`` return once done outside a loop.

    A finished coroutine: awaiting it (or ``run_until_complete``, ``create_task``) returns None
    at once, and dropping it un-awaited is fine (no "never awaited" warning).
    """

    __slots__ = ()

    def send(self, value: Any) -> None:
        raise StopIteration

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> None:
        raise typ if val is None else val

    def close(self) -> None:
        pass

    def __await__(self) -> Generator[Any, None, None]:
        yield from ()

    def __repr__(self) -> str:
        return "<done>"


DONE = _Done()


async def cancel_all(tasks: set[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` and wait until they have ended."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def awaitable(method: _F) -> _F:
    """Mark ``method``, a plain ``def`` returning a coroutine, as a coroutine function.

    ``publish_message()`` and ``close()`` are plain functions so that they can do their work
    where no event loop runs; in async code they are awaited like ``async def`` methods, and
    introspection should say so: ``unittest.mock.create_autospec`` then gives them an
    ``AsyncMock``, whose result a test can await. Behaviour is unchanged: only markers are set.

    Python 3.11 to 3.13's ``unittest.mock`` asks ``asyncio.iscoroutinefunction``, which
    recognises a function carrying asyncio's own marker, the private
    ``asyncio.coroutines._is_coroutine`` (what the old ``@asyncio.coroutine`` set; 3.11 has no
    public way to set it). 3.12 added the public ``inspect.markcoroutinefunction``, which
    ``inspect.iscoroutinefunction`` reads and which later ``unittest.mock`` releases ask.
    Both are set where they exist; ``tests/amqp/test_autospec.py`` checks each Python.
    """
    marker = getattr(asyncio.coroutines, "_is_coroutine", None)
    if marker is not None:
        setattr(method, "_is_coroutine", marker)  # noqa: B010 (a function has no such attribute)
    if sys.version_info >= (3, 12):
        inspect.markcoroutinefunction(method)
    return method
