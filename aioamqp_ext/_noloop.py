"""The no-loop mode's pieces: a finished coroutine to return, and cancelling what is left."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any

__all__ = ["DONE", "cancel_all"]


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
