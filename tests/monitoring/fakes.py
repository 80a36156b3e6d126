"""Small checks for the tests, importable by dotted path like any user's check."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from aiohttp_prometheus_monitoring.metrics.base import BaseMetric


class AlwaysUp(BaseMetric):
    """Up at once, without I/O: the cheapest check there is."""

    async def check(self) -> bool:
        return True


class ReturnsFalse(BaseMetric):
    """Down, politely."""

    async def check(self) -> bool:
        return False


class Raises(BaseMetric):
    """Down, with an exception whose message carries the password it was given."""

    def __init__(self, password: str = "") -> None:
        self._password = password

    async def check(self) -> bool:
        raise ConnectionError(f"login refused for password {self._password}")


class RaisesCancelled(BaseMetric):
    """A check that raises CancelledError although nobody cancelled it."""

    async def check(self) -> bool:
        raise asyncio.CancelledError


class Hangs(BaseMetric):
    """Never returns; records that it was cancelled."""

    cancelled: ClassVar[dict[str, int]] = {}

    def __init__(self, key: str = "hangs") -> None:
        self.key = key

    async def check(self) -> bool:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled[self.key] = self.cancelled.get(self.key, 0) + 1
            raise
        return True


class Switch(BaseMetric):
    """Up or down as the test says; records when each run started (loop time)."""

    up: ClassVar[dict[str, bool]] = {}
    starts: ClassVar[dict[str, list[float]]] = {}

    def __init__(self, key: str, busy: float = 0.0) -> None:
        self.key = key
        self.busy = busy

    async def check(self) -> bool:
        self.starts.setdefault(self.key, []).append(asyncio.get_running_loop().time())
        if self.busy:
            await asyncio.sleep(self.busy)
        return self.up.get(self.key, True)


class Gate(BaseMetric):
    """Finishes its run only once the test opens the gate."""

    gates: ClassVar[dict[str, asyncio.Event]] = {}

    def __init__(self, key: str) -> None:
        self.key = key

    async def check(self) -> bool:
        await self.gates.setdefault(self.key, asyncio.Event()).wait()
        return True


class NotABaseMetric:
    """A check by protocol alone: no BaseMetric, no kind attribute."""

    def __init__(self, answer: bool = True) -> None:
        self.answer = answer

    async def check(self) -> bool:
        return self.answer
