"""The exceptions of aiohttp_prometheus_monitoring, under one root."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["MonitoringError", "WrongConfiguration"]


class MonitoringError(Exception):
    """Root of every error raised by aiohttp_prometheus_monitoring."""


class WrongConfiguration(MonitoringError, ValueError):
    """The MONITORING configuration has problems; ``problems`` lists every one of them.

    Each problem names where it is (``metrics[2] 'monitoring_mq': params: ...``), what is
    wrong, what was given (never a password) and, where it can, the fix.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        count = len(self.problems)
        header = f"invalid MONITORING configuration ({count} problem{'s' if count != 1 else ''}):"
        super().__init__("\n  - ".join([header, *self.problems]))
