"""The one place that uses prometheus-client's internals, and histograms kept as plain numbers.

Both libraries render some families themselves, faster than prometheus-client's metric objects
would (no lock and no child look-up per update; a check family's lines built once). To stay
byte for byte what prometheus-client writes, they use names it does not document:

- ``prometheus_client.utils.floatToGoString``: how it writes a float (``le`` labels, values);
- ``prometheus_client.exposition.choose_encoder``: the format an ``Accept`` header asks for
  (not in that module's ``__all__``);
- ``prometheus_client.openmetrics.exposition.ALLOWUTF8``, ``UNDERSCORES``, ``VALUES``: the
  name-escaping schemes a scraper may ask for.

They are read here and nowhere else. :data:`FORMAT_TESTED` says whether the installed
prometheus-client is one whose text format these copies were tested against
(:data:`TESTED_RANGE`); outside it, or when a name is gone, ``/metrics`` leaves the whole
exposition to prometheus-client (slower, never wrong), and floats are written by our own
rule.
"""

from __future__ import annotations

import functools
import math
from bisect import bisect_left
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from .version import within

__all__ = [
    "ALLOWUTF8",
    "FORMAT_TESTED",
    "TESTED_RANGE",
    "UNDERSCORES",
    "VALUES",
    "Histogram",
    "choose_encoder",
    "go_float",
    "le_labels",
]

#: prometheus-client releases the copies of its text format are tested with: [low, high)
TESTED_RANGE = ((0, 24), (0, 27))


def _go_float_fallback(value: float) -> str:
    """A float for the exposition when prometheus-client's helper is gone: Python's shortest
    repr (which Prometheus parses to the same value), and Prometheus' spelling of the
    infinities and NaN."""
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


try:
    from prometheus_client.exposition import choose_encoder as _choose_encoder
    from prometheus_client.openmetrics.exposition import ALLOWUTF8, UNDERSCORES, VALUES
    from prometheus_client.utils import floatToGoString
except ImportError:  # a prometheus-client that moved them: ours, and no copied format
    _internals = False
    go_float: Callable[[float], str] = _go_float_fallback
    ALLOWUTF8, UNDERSCORES, VALUES = "allow-utf-8", "underscores", "values"
    choose_encoder: Callable[[str], tuple[Callable[[Any], bytes], str]] | None = None
else:
    _internals = True
    go_float = floatToGoString  # unannotated in prometheus-client
    choose_encoder = _choose_encoder


def _installed() -> str:
    try:
        return version("prometheus-client")
    except PackageNotFoundError:  # imported from a source tree: not a release we know
        return "unknown"


#: True when ``/metrics`` may write the check families itself (see the module's docstring)
FORMAT_TESTED = _internals and within(_installed(), *TESTED_RANGE)


@functools.lru_cache(maxsize=64)
def le_labels(bounds: tuple[float, ...]) -> tuple[str, ...]:
    """The ``le`` label values of a histogram's buckets, ``+Inf`` last."""
    return (*(go_float(bound) for bound in bounds), "+Inf")


class Histogram:
    """Observations (seconds) counted per bucket, with their sum: plain numbers, updated on
    one event loop without a lock, rendered into a family at scrape time.

    Args:
        bounds: the buckets' upper bounds, increasing (``+Inf`` is implied).
    """

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # per bucket, not cumulative; last: +Inf
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        """Count one observation."""
        self.counts[bisect_left(self.bounds, seconds)] += 1  # `le`: bound >= seconds
        self.total += seconds

    def add(self, other: Histogram) -> None:
        """Add ``other``'s observations (same bounds) to these."""
        if other.bounds == self.bounds:
            for index, count in enumerate(other.counts):
                self.counts[index] += count
            self.total += other.total

    def buckets(self) -> list[tuple[str, float]]:
        """``(le, cumulative count)`` pairs, as ``HistogramMetricFamily.add_metric`` takes."""
        pairs = []
        cumulative = 0
        for le, count in zip(le_labels(self.bounds), self.counts, strict=True):
            cumulative += count
            pairs.append((le, float(cumulative)))
        return pairs
