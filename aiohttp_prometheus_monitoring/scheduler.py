"""The timers: each check runs at start-up, then every ``sleep_time``, under its ``timeout``.

Runs are scheduled on ``loop.time()`` (no drift however long a run takes) with a little
jitter, each check in a task of its own, so one slow or broken check never delays another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from _aiohttp_booster.redact import one_line, redact, shown

from ._params import did_you_mean
from ._selfcheck import wait_listening
from .errors import MonitoringError
from .registry import RESULTS

if TYPE_CHECKING:
    from .config import CheckConfig
    from .metrics.base import Check

__all__ = ["CheckState", "Scheduler"]

logger = logging.getLogger(__name__)
JITTER_SHARE = 0.05  # of sleep_time, added to each run so that checks spread out
MAX_JITTER = 1.0
STRAGGLER_GRACE = 5.0  # how long close() waits for the check tasks it cancelled
MAX_REASON = 200  # characters of a failure's reason kept for /ready
MAX_LOGGED = 1000  # characters of a failure's reason in a log line
MAX_NAMES_SHOWN = 20  # check names an error message lists


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
        self._random = random.Random()
        # The seam of aiohttp_prometheus_monitoring.testing (substitute() and run_now()): a
        # probe run instead of a check's own check(), and runs asked for now, by check name.
        self._probes: dict[str, Callable[[], Awaitable[bool]]] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self._asked: dict[str, list[asyncio.Future[None]]] = {}

    @property
    def running(self) -> bool:
        """Whether the check tasks are running."""
        return bool(self._tasks)

    def start(self) -> None:
        """Start one task per check on the running loop; a no-op when already running."""
        if self._tasks:
            return
        loop = asyncio.get_running_loop()
        self._wake = {config.name: asyncio.Event() for config, _, _ in self._checks}
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
        _, pending = await asyncio.wait(tasks, timeout=STRAGGLER_GRACE)
        for (config, _, _), task in zip(self._checks, tasks, strict=True):
            if task in pending:  # a check that swallows cancellation: nothing more we can do
                logger.warning("%s ignores cancellation; left running", task.get_name())
            elif not task.cancelled() and task.exception() is not None:
                # our loop never raises; say so loudly if it did
                logger.error(
                    "check %s: its task failed: %s", config.name,
                    _described(task.exception(), config), extra={"check": config.name},
                )  # fmt: skip
        for config, check, _ in self._checks:
            close = getattr(check, "close", None)
            if close is None:
                continue
            try:
                await close()
            except Exception as exc:  # a check that fails to close must not stop the others
                logger.warning(
                    "check %s: close() failed: %s", config.name,
                    _described(exc, config), extra={"check": config.name},
                )  # fmt: skip
        for asked in self._asked.values():  # runs asked for that will never be recorded
            for future in asked:
                if not future.done():
                    future.set_exception(MonitoringError("the checks stopped before running again"))
        self._asked.clear()

    def substitute(self, name: str, probe: Callable[[], Awaitable[bool]] | None) -> None:
        """From its next run on, await ``probe()`` instead of the ``check()`` of check ``name``.

        Only what talks to the dependency changes: the schedule, the timeout, the results,
        the metrics and readiness stay as they are. The seam of
        :mod:`aiohttp_prometheus_monitoring.testing`.

        Args:
            name: the check's name, as in its entry.
            probe: what to await instead; None: the check's own ``check()`` again.

        Raises:
            ValueError: no check has this name; the message lists those there are.
        """
        names = [config.name for config, _, _ in self._checks]
        if name not in names:
            listed = [repr(known) for known in names[:MAX_NAMES_SHOWN]]
            if len(names) > MAX_NAMES_SHOWN:
                listed.append(f"... ({len(names)} checks)")
            raise ValueError(
                f"no check named {shown(name)}{did_you_mean(name, names)}; "
                f"the checks are: {', '.join(listed) or 'none'}"
            )
        if probe is None:
            self._probes.pop(name, None)
        else:
            self._probes[name] = probe

    async def run_now(self) -> None:
        """Run every check once more, now, and return once each of these runs is recorded.

        A check in the middle of a run finishes it first, since runs never overlap; the run
        asked for takes the place of the check's next scheduled one.

        Raises:
            MonitoringError: the checks are not running (the app has not started, or has
                stopped), or they stopped before the runs were recorded.
        """
        if not self._checks:
            return
        if not self._tasks:
            raise MonitoringError(
                "the checks are not running: the app has not started "
                "(in a test, start it with aiohttp_client(app))"
            )
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[None]] = []
        for config, _, _ in self._checks:
            futures.append(loop.create_future())
            self._asked.setdefault(config.name, []).append(futures[-1])
            self._wake[config.name].set()
        for outcome in await asyncio.gather(*futures, return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome

    async def _run_forever(self, config: CheckConfig, check: Check, state: CheckState) -> None:
        loop = asyncio.get_running_loop()
        period = config.sleep_time
        wake = self._wake[config.name]
        asked = self._asked.setdefault(config.name, [])
        if config.wait_for_listen is not None:  # a check of the app itself: not before it listens
            await wait_listening(*config.wait_for_listen, bound=period)
        start = loop.time()
        tick = 0
        while True:
            wake.clear()
            answered = len(asked)  # the runs asked for before this one started
            await self._run_once(config, check, state)
            for future in asked[:answered]:
                if not future.done():
                    future.set_result(None)
            del asked[:answered]
            # the next tick of the fixed grid start + n * period that is still ahead of us
            tick = max(tick + 1, int((loop.time() - start) / period) + 1)
            jitter = self._random.uniform(0.0, min(period * JITTER_SHARE, MAX_JITTER))
            with contextlib.suppress(TimeoutError):  # until that tick, or a run asked for now
                async with asyncio.timeout(max(0.0, start + tick * period + jitter - loop.time())):
                    await wake.wait()

    async def _run_once(self, config: CheckConfig, check: Check, state: CheckState) -> None:
        """Run a check once under its timeout and record the result in ``state``.

        The run happens in the check's own task (no task per run): a raise or a timeout
        counts as down; cancellation of the scheduler propagates.
        """
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        started = loop.time()
        deadline = asyncio.timeout(config.timeout)
        probe = self._probes.get(config.name, check.check)
        try:
            async with deadline:
                up = bool(await probe())
            result, reason = ("success", "") if up else ("failure", "the check returned False")
        except asyncio.CancelledError:
            if task is not None and task.cancelling():  # we are being stopped
                raise
            result, reason = "error", "the check raised CancelledError although nobody cancelled it"
        except Exception as exc:
            result, reason = "error", _exception_text(exc)
            if isinstance(exc, TimeoutError):
                result, reason = "timeout", f"timed out: {_exception_text(exc)}"
        if task is not None and task.cancelling():  # stopped, and the check swallowed it
            raise asyncio.CancelledError
        if deadline.expired():  # whatever the check made of the cancellation, a timeout
            result, reason = "timeout", f"no answer within its timeout of {config.timeout:g} s"
        record(config, state, result, reason, loop.time() - started)


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
            "check %s is down (%s): %s", config.name, result,
            one_line(reason, config.secrets, limit=MAX_LOGGED), extra={"check": config.name},
        )  # fmt: skip


def _exception_text(exc: BaseException) -> str:
    """``Type: message`` of an exception, whatever its ``__str__`` does (it may raise)."""
    try:
        message = str(exc)
    except Exception:
        message = "<its message cannot be shown>"
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _described(exc: BaseException | None, config: CheckConfig) -> str:
    """An exception for a log line: its type and message, secrets masked, on one line."""
    return one_line(_exception_text(exc) if exc is not None else "", config.secrets, MAX_LOGGED)


def _shorten(reason: str) -> str:
    reason = " ".join(reason.split())
    return reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 3] + "..."
