"""The exceptions of aiohttp_prometheus_monitoring, under one root."""

from __future__ import annotations

from collections.abc import Sequence

from _aiohttp_booster.redact import one_line

__all__ = ["MonitoringError", "WrongConfiguration"]

#: characters of one problem in the message (each is built short; this is the backstop)
MAX_PROBLEM_CHARS = 400
#: problems listed in the message; ``problems`` holds them all
MAX_PROBLEMS_SHOWN = 40


class MonitoringError(Exception):
    """Root of every error raised by aiohttp_prometheus_monitoring."""


class WrongConfiguration(MonitoringError, ValueError):
    """The MONITORING configuration has problems; ``problems`` lists every one of them.

    Each problem names where it is (``metrics[2] 'monitoring_mq': params: ...``), what is
    wrong, what was given (never a password, at most about 100 characters of it) and, where
    it can, the fix. Each is one line of at most 400 characters; the message lists the
    first 40 and says how many more there are, so that no configuration makes it large.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(one_line(problem, limit=MAX_PROBLEM_CHARS) for problem in problems)
        count = len(self.problems)
        header = f"invalid MONITORING configuration ({count} problem{'s' if count != 1 else ''}):"
        shown = list(self.problems[:MAX_PROBLEMS_SHOWN])
        if count > MAX_PROBLEMS_SHOWN:
            shown.append(f"... and {count - MAX_PROBLEMS_SHOWN} more")
        super().__init__("\n  - ".join([header, *shown]))
