"""The app's own Prometheus registry and the metric families of the checks.

Everything is rendered at scrape time from the scheduler's last results, so a scrape
never waits on a check and a check that has not finished its first run is not shown.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, NamedTuple

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from .scheduler import CheckState

__all__ = ["RESERVED_NAMES", "ChecksCollector", "create_registry", "is_ready"]

UP = "monitoring_check_up"
DURATION = "monitoring_check_duration_seconds"
LAST_SUCCESS = "monitoring_check_last_success_timestamp_seconds"
TIMEOUT = "monitoring_check_timeout_seconds"
RUNS = "monitoring_check_runs"  # a counter: exposed as monitoring_check_runs_total
RESULTS = ("success", "failure", "timeout", "error")
READY = "monitoring_ready"
UP_HELP = "Whether the check passed on its last run (1) or not (0)."
DURATION_HELP = "How long the last run of the check took."
LAST_SUCCESS_HELP = "When the check last passed, in Unix time."
TIMEOUT_HELP = "How long a run of the check may take before it counts as down."
RUNS_HELP = "Finished runs of the check, by result."
READY_HELP = (
    "Whether every critical check passed on its last run (1) or not (0), "
    "as the readiness route answers."
)
FAMILIES = (UP, DURATION, LAST_SUCCESS, TIMEOUT, RUNS, READY)
#: the request metrics' families (``request_metrics: true``) and the samples they expose
REQUEST_FAMILIES = (
    "http_requests_total", "http_requests_created", "http_request_duration_seconds",
    "http_request_duration_seconds_bucket", "http_request_duration_seconds_sum",
    "http_request_duration_seconds_count", "http_request_duration_seconds_created",
    "http_requests_in_progress",
)  # fmt: skip
_CHECK_NAMES = frozenset({*FAMILIES, f"{RUNS}_total", f"{RUNS}_created"})
_REQUEST_NAMES = frozenset({"http_requests", *REQUEST_FAMILIES})
#: names a check entry may not take, our families and the samples they expose
RESERVED_NAMES = _CHECK_NAMES | _REQUEST_NAMES


class _Families(NamedTuple):
    up: GaugeMetricFamily
    duration: GaugeMetricFamily
    last_success: GaugeMetricFamily
    timeout: GaugeMetricFamily
    runs: CounterMetricFamily


def _families() -> _Families:
    return _Families(
        GaugeMetricFamily(UP, UP_HELP, labels=["check", "kind"]),
        GaugeMetricFamily(DURATION, DURATION_HELP, labels=["check"]),
        GaugeMetricFamily(LAST_SUCCESS, LAST_SUCCESS_HELP, labels=["check"]),
        GaugeMetricFamily(TIMEOUT, TIMEOUT_HELP, labels=["check"]),
        CounterMetricFamily(RUNS, RUNS_HELP, labels=["check", "result"]),
    )


# Set while /metrics renders the rest of the registry, our families being written apart.
_LEFT_OUT: ContextVar[bool] = ContextVar("monitoring_checks_left_out", default=False)


@contextmanager
def checks_left_out() -> Iterator[None]:
    """Within this block (and this context only), every ``ChecksCollector`` yields nothing:
    ``/metrics`` writes their families itself and lets prometheus_client write the rest."""
    token = _LEFT_OUT.set(True)
    try:
        yield
    finally:
        _LEFT_OUT.reset(token)


class ChecksCollector:
    """Renders the talk's per-check gauges and the ``monitoring_check_*`` families."""

    def __init__(self, states: Sequence[CheckState]) -> None:
        self._states = tuple(states)

    def describe(self) -> Iterable[Metric]:
        """Every name we expose, so that the registry refuses a collector that clashes."""
        for state in self._states:
            yield GaugeMetricFamily(state.name, state.description)
        yield GaugeMetricFamily(READY, "readiness")
        yield from _families()

    def collect(self) -> Iterator[Metric]:
        """The families from the last finished runs; checks that never finished are left out."""
        if _LEFT_OUT.get():
            return
        done = [state for state in self._states if state.up is not None]
        for state in done:
            yield GaugeMetricFamily(state.name, state.description, value=float(state.up is True))
        yield GaugeMetricFamily(READY, READY_HELP, value=float(is_ready(self._states)))
        families = _families()
        for state in done:
            families.up.add_metric([state.name, state.kind], float(state.up is True))
            families.duration.add_metric([state.name], state.duration)
            if state.last_success is not None:
                families.last_success.add_metric([state.name], state.last_success)
            families.timeout.add_metric([state.name], state.timeout)
            for result in RESULTS:
                families.runs.add_metric([state.name, result], state.runs[result])
        yield from families


class DefaultRegistryCollector:
    """Passes on the metrics of prometheus_client's default registry (process, python, the
    app's own), except any family whose name this app's registry already has."""

    def __init__(self, taken: Iterable[str]) -> None:
        self._taken = frozenset(taken)

    def collect(self) -> Iterator[Metric]:
        """The default registry's metrics, read at scrape time."""
        for metric in REGISTRY.collect():
            names = {metric.name, *(sample.name for sample in metric.samples)}
            if names.isdisjoint(self._taken):
                yield metric


def is_ready(states: Iterable[CheckState]) -> bool:
    """Whether every critical check passed on its last run; one that never ran has not."""
    return all(state.up is True for state in states if state.critical)


def create_registry(
    states: Sequence[CheckState], include_default: bool, request_metrics: bool = False
) -> CollectorRegistry:
    """A registry of the app's own, holding our checks and, optionally, the default metrics.

    Args:
        states: the checks' states, rendered at scrape time.
        include_default: also pass on the default registry's metrics, bar those whose
            names this registry has.
        request_metrics: whether this registry will hold the request families (then a
            default-registry family of the same name is left out).
    """
    registry = CollectorRegistry()
    checks: Collector = ChecksCollector(states)
    registry.register(checks)
    if include_default:
        ours = RESERVED_NAMES if request_metrics else _CHECK_NAMES
        taken = {*ours, *(state.name for state in states)}
        registry.register(DefaultRegistryCollector(taken))
    return registry
