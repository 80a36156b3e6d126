"""The timers: each check runs at start-up, then every ``sleep_time``, under its ``timeout``.

Runs are scheduled on ``loop.time()`` (no drift however long a run takes) with a little
jitter, each check in a task of its own, so one slow or broken check never delays another.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ._redact import redact
from ._selfcheck import wait_listening
from .registry import RESULTS

if TYPE_CHECKING:
    from .config import CheckConfig
    from .metrics.base import Check

logger = logging.getLogger(__name__)
JITTER_SHARE = 0.05  # of sleep_time, added to each run so that checks spread out
MAX_JITTER = 1.0
STRAGGLER_GRACE = 5.0  # how long close() waits for runs that were cancelled
MAX_REASON = 200  # characters of a failure's reason kept for /ready


@dataclass(slots=True, kw_only=True)
class CheckState:
    """The last results of one check: what ``/metrics`` and ``/ready`` show."""

    name: str
    description: str
    kind: str
    timeout: float
    critical: bool = True
    up: bool | None = None  # None until the first run finishes
    duration: float = 0.0
    last_run: float | None = None  # Unix time at which the last run finished
    last_success: float | None = None
    reason: str = ""  # why the last run was down, without secrets; "" when up
    runs: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RESULTS, 0))

    @classmethod
    def of(cls, config: CheckConfig) -> CheckState:
        """A fresh state for a configured check."""
        return cls(
            name=config.name, description=config.description, kind=config.kind,
            timeout=config.timeout, critical=config.critical,
        )  # fmt: skip


class Scheduler:
    """Runs a set of checks on the running loop until :meth:`close`.

    Args:
        checks: each check's configuration, its built instance, and the state it updates.
    """

    def __init__(self, checks: Sequence[tuple[CheckConfig, Check, CheckState]]) -> None:
        self._checks = tuple(checks)
        self._tasks: list[asyncio.Task[None]] = []
        # runs past their timeout (or interrupted by close), cancelled and awaited by close()
        self._stragglers: set[asyncio.Task[bool]] = set()
        self._random = random.Random()

    @property
    def running(self) -> bool:
        """Whether the check tasks are running."""
        return bool(self._tasks)

    def start(self) -> None:
        """Start one task per check on the running loop; a no-op when already running."""
        if self._tasks:
            return
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._run_forever(*check), name=f"monitoring check {check[0].name}")
            for check in self._checks
        ]

    async def close(self) -> None:
        """Cancel every check task and wait for them, then close the checks; idempotent."""
        tasks, self._tasks = self._tasks, []
        if not tasks:
            return
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for (config, _, _), result in zip(self._checks, results, strict=True):
            if isinstance(result, Exception):  # our loop never raises; say so loudly if it did
                logger.error(
                    "check %s: its task failed: %s", config.name,
                    redact(repr(result), config.secrets), extra={"check": config.name},
                )  # fmt: skip
        await self._await_stragglers()
        for config, check, _ in self._checks:
            close = getattr(check, "close", None)
            if close is None:
                continue
            try:
                await close()
            except Exception as exc:  # a check that fails to close must not stop the others
                logger.warning(
                    "check %s: close() failed: %s", config.name,
                    redact(repr(exc), config.secrets), extra={"check": config.name},
                )  # fmt: skip

    async def _await_stragglers(self) -> None:
        stragglers = set(self._stragglers)
        for task in stragglers:
            task.cancel()
        if not stragglers:
            return
        _, pending = await asyncio.wait(stragglers, timeout=STRAGGLER_GRACE)
        for task in pending:  # a check that swallows cancellation: nothing more we can do
            logger.warning("%s ignores cancellation; left running", task.get_name())

    def _abandon(self, task: asyncio.Task[bool]) -> None:
        task.cancel()
        self._stragglers.add(task)
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[bool]) -> None:
        self._stragglers.discard(task)
        if not task.cancelled():
            task.exception()  # a late failure of an abandoned run is not news: mark it seen

    async def _run_forever(self, config: CheckConfig, check: Check, state: CheckState) -> None:
        loop = asyncio.get_running_loop()
        period = config.sleep_time
        if config.wait_for_listen is not None:  # a check of the app itself: not before it listens
            await wait_listening(*config.wait_for_listen, bound=period)
        start = loop.time()
        tick = 0
        while True:
            await self._run_once(config, check, state)
            # the next tick of the fixed grid start + n * period that is still ahead of us
            tick = max(tick + 1, int((loop.time() - start) / period) + 1)
            jitter = self._random.uniform(0.0, min(period * JITTER_SHARE, MAX_JITTER))
            await asyncio.sleep(max(0.0, start + tick * period + jitter - loop.time()))

    async def _run_once(self, config: CheckConfig, check: Check, state: CheckState) -> None:
        """Run a check once under its timeout and record the result in ``state``.

        The run is a task of its own, so that its timeout holds even when the check is
        slow to honour cancellation; a raise or a timeout counts as down; cancellation of
        the scheduler propagates.
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        run = loop.create_task(_passes(check), name=f"monitoring run {config.name}")
        try:
            done, _ = await asyncio.wait({run}, timeout=config.timeout)
        except asyncio.CancelledError:
            self._abandon(run)
            raise
        if done:
            result, reason = _outcome(run)
        else:
            self._abandon(run)
            result, reason = "timeout", f"no answer within its timeout of {config.timeout:g} s"
        record(config, state, result, reason, loop.time() - started)


async def _passes(check: Check) -> bool:
    return bool(await check.check())


def _outcome(run: asyncio.Task[bool]) -> tuple[str, str]:
    """The result label of a finished run, and why it is down."""
    if run.cancelled():
        return "error", "the check raised CancelledError although nobody cancelled it"
    exc = run.exception()
    if isinstance(exc, TimeoutError):
        return "timeout", f"timed out: {exc!r}"
    if exc is not None:
        return "error", f"{type(exc).__name__}: {exc}"
    return ("success", "") if run.result() else ("failure", "the check returned False")


def record(config: CheckConfig, state: CheckState, result: str, reason: str, took: float) -> None:
    """Store a run's result in ``state``; log when the check changes state, and only then."""
    state.duration = took
    state.runs[result] += 1
    up = result == "success"
    state.last_run = time.time()
    if up:
        state.last_success = state.last_run
    state.reason = "" if up else _shorten(redact(reason, config.secrets))
    previous, state.up = state.up, up
    if previous is up:
        return
    if up:
        logger.info("check %s is up", config.name, extra={"check": config.name})
    else:
        logger.warning(
            "check %s is down (%s): %s", config.name, result, redact(reason, config.secrets),
            extra={"check": config.name},
        )  # fmt: skip


def _shorten(reason: str) -> str:
    reason = " ".join(reason.split())
    return reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 3] + "..."
