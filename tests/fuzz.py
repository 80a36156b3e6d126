"""How the property tests run: in CI a fixed seed and a count that fits the suite's budget;
with ``BOOSTER_FUZZ_SECONDS=N`` the properties of a file share N seconds, drawing fresh
random examples, and say how many they tried (run with ``-s`` to see it)."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings

__all__ = ["FUZZ_SECONDS", "TIMEOUT", "TIME_BOUND", "count", "examples", "fuzzed", "tried"]

F = TypeVar("F", bound=Callable[..., Any])

FUZZ_SECONDS = float(os.environ.get("BOOSTER_FUZZ_SECONDS") or 0)
#: pytest-timeout's limit for a property: its fuzz time, with room to finish a round
TIMEOUT = int(FUZZ_SECONDS) + 300 if FUZZ_SECONDS else 300
#: seconds one example may take (an input that makes us slow is a bug like a crash)
TIME_BOUND = 2.0
#: examples tried so far, by property
tried: dict[str, int] = {}


def examples(in_ci: int) -> settings:
    """Hypothesis settings: ``in_ci`` examples, derandomized, without a database; in fuzz mode
    rounds of 500 random ones (``fuzzed`` repeats them)."""
    return settings(
        max_examples=500 if FUZZ_SECONDS else in_ci,
        derandomize=not FUZZ_SECONDS,
        database=None,
        deadline=None,  # TIME_BOUND is checked by the property itself, on what we run
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.function_scoped_fixture,
            HealthCheck.data_too_large,
        ],
        print_blob=True,
    )


def fuzzed(share: float) -> Callable[[F], F]:
    """The outermost decorator of a property: in fuzz mode, run it again with fresh examples
    until its ``share`` of ``FUZZ_SECONDS`` (a file's shares add up to 1) has passed, then
    print how many examples it tried."""

    def decorate(test: F) -> F:
        if not FUZZ_SECONDS:
            return test

        @functools.wraps(test)
        def run(*args: Any, **kwargs: Any) -> None:
            stop = time.monotonic() + FUZZ_SECONDS * share
            while time.monotonic() < stop:
                test(*args, **kwargs)
            print(f"\n{test.__name__}: {tried.get(test.__name__, 0)} examples, no violation")

        return run  # type: ignore[return-value]

    return decorate


def count(name: str) -> None:
    """Count one example of the property ``name``."""
    tried[name] = tried.get(name, 0) + 1
