"""What a check is: ``BaseMetric`` to subclass, and the ``Check`` protocol the scheduler runs.

A check is built once from its entry's ``params`` (``Check(**params)``) and its
``async def check(self) -> bool`` is awaited every ``sleep_time``: True means up. Raising,
returning anything falsy or running past the entry's ``timeout`` means down. A check opens
what it needs inside ``check()`` and closes it before returning, whatever happens.

Checks written for aiohttp-prometheus-monitoring 0.1.5 (``__init__(self, collector, ...)``
calling ``super().__init__(collector)``) run unchanged; see ``docs/migration.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import warnings
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Protocol, runtime_checkable

from prometheus_client import Gauge

from _aiohttp_booster.redact import MASK, is_secret_key, shown

from .._params import key_name

__all__ = ["BaseMetric", "Check", "close_politely", "kind_of", "parse_port"]

logger = logging.getLogger(__name__)
_REPR_PARAMS = 10  # params a repr shows
CLOSE_TIMEOUT = 1.0  # a polite close gets this long before the connection is dropped


@runtime_checkable
class Check(Protocol):
    """The plug-in point: anything built with ``**params`` that has an async ``check()``."""

    async def check(self) -> bool:
        """Whether the watched system is up right now."""
        ...


class BaseMetric:
    """Base class of checks; subclass it and implement :meth:`check`.

    Args:
        collector: what a check of 0.1.5's form passes on: the ``prometheus_client.Gauge``
            it is built with, named and described as its entry but shown nowhere
            (``/metrics`` shows what :meth:`check` returns). None for today's checks.
        **params: the entry's ``params``; subclasses usually declare them as keyword
            arguments instead, so that a misspelt one is reported at set-up.
    """

    #: the ``kind`` label of ``monitoring_check_up``, one of a small fixed set (``custom`` for
    #: yours).
    kind: ClassVar[str] = "custom"
    #: As in 0.1.5, the gauge of a check of its form (see ``collector`` above); None otherwise.
    collector: Gauge | None = None
    #: As in 0.1.5, the exceptions its ``run_check()`` set to 0 rather than -1; kept for old
    #: subclasses that read it. Every exception now reads 0 (``docs/migration.md``).
    exc: type[BaseException] | tuple[type[BaseException], ...] = ()

    def __init__(self, collector: Gauge | None = None, **params: Any) -> None:
        self.collector = collector
        self.params = params

    async def check(self) -> bool:
        """Whether the watched system is up; subclasses must implement it."""
        raise NotImplementedError(f"{type(self).__name__} must implement `async def check()`")

    async def close(self) -> None:
        """Release what the check keeps between runs; called once when monitoring stops."""

    async def run_check(self) -> bool:
        """Deprecated (0.1.5): await :meth:`check` once and set ``collector`` to 1 or 0.

        The scheduler awaits ``check()`` itself, under the entry's ``timeout``; a test
        awaits ``check()``. An exception is logged (its type only: its message may hold a
        password) and reads 0, where 0.1.5 set -1 for one outside ``exc``.

        Returns:
            Whether the check passed.
        """
        warnings.warn(
            "BaseMetric.run_check() is deprecated: await check(), which the scheduler runs "
            "under the entry's timeout",
            DeprecationWarning,
            stacklevel=2,
        )
        try:
            up = bool(await self.check())
        except Exception as exc:  # down, whatever the check raised, as the scheduler counts it
            logger.warning("%s: check() raised %s", type(self).__name__, type(exc).__name__)
            up = False
        if self.collector is not None:
            self.collector.set(int(up))
        return up

    def __repr__(self) -> str:
        params = getattr(self, "params", {})
        shown_params = [
            f"{key_name(key)}={MASK!r}" if is_secret_key(key) else f"{key_name(key)}={shown(value)}"
            for key, value in itertools.islice(params.items(), _REPR_PARAMS)
        ]
        if len(params) > _REPR_PARAMS:
            shown_params.append(f"... ({len(params)} params)")
        return f"{type(self).__name__}({', '.join(shown_params)})"


def kind_of(cls: type) -> str:
    """The ``kind`` label of a check class: its ``kind`` attribute, else ``custom``."""
    kind = getattr(cls, "kind", "custom")
    return kind if isinstance(kind, str) and kind else "custom"


def parse_port(port: int | str, what: str = "port") -> int:
    """A TCP port from an int or a numeric string (the talk writes ``'port': '6379'``).

    Raises:
        ValueError: not a number between 1 and 65535.
    """
    number = 0
    if isinstance(port, int) and not isinstance(port, bool):
        number = port
    elif isinstance(port, str) and len(port) <= 16:  # int() of a long string is slow
        try:
            number = int(port)
        except ValueError:
            number = 0
    if not 0 < number < 65536:
        raise ValueError(f"{what}: expected a TCP port 1-65535, got {shown(port)}")
    return number


async def close_politely(close: Callable[[], Awaitable[Any]], drop: Callable[[], Any]) -> None:
    """Close a connection gracefully, within :data:`CLOSE_TIMEOUT`; else drop it at once.

    ``drop`` (closing the transport, say) runs whenever the polite close fails, times out
    or is cancelled, so that no socket outlives its check. Cancellation still propagates.
    """
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT):
            await close()
    except asyncio.CancelledError:
        _drop_quietly(drop)
        raise
    except Exception:  # a failed goodbye: the connection is dropped all the same
        _drop_quietly(drop)


def _drop_quietly(drop: Callable[[], Any]) -> None:
    with contextlib.suppress(Exception):
        drop()
