"""Checks written the way aiohttp-prometheus-monitoring 0.1.5 wanted them, for the tests.

Untyped and unchanged in form on purpose: a 2018 check takes the ``collector`` 0.1.5 built it
with and hands it to ``BaseMetric.__init__``, and its ``check()`` returns a bool.
"""

from aiohttp_prometheus_monitoring.metrics.base import BaseMetric

__all__ = ["AnswerMetric", "ForwardingMetric", "ReadsCollectorMetric"]


class AnswerMetric(BaseMetric):
    """The README's "whatever else" check: ``collector`` first, its params after. Answers
    ``params['answer']``, or raises an error 0.1.5 did not expect when it is ``"raise"``."""

    def __init__(self, collector, **params):
        super().__init__(collector)
        self.answer = params["answer"]

    async def check(self) -> bool:
        if self.answer == "raise":
            raise RuntimeError("an error 0.1.5's run_check() did not expect")
        return bool(self.answer)


class ForwardingMetric(BaseMetric):
    """The form of 0.1.5's own checks: named params, then ``*args, **kwargs`` passed on."""

    def __init__(self, host, port=6379, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.host = host
        self.port = port

    async def check(self) -> bool:
        return bool(self.host)


class ReadsCollectorMetric(BaseMetric):
    """A check whose ``check()`` uses ``self.collector``, as 0.1.5 set it."""

    def __init__(self, collector, expected_name):
        super().__init__(collector)
        self.expected_name = expected_name

    async def check(self) -> bool:
        return bool(getattr(self.collector, "_name", None) == self.expected_name)
