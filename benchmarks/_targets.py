"""The performance targets (docs/performance.md), checked against the medians of this run."""

from __future__ import annotations

from collections.abc import Sequence

from . import amqp, monitoring
from ._report import Series, table


def _median(series: Sequence[Series], row: str, contender: str) -> float | None:
    return next((s.median for s in series if s.row == row and s.contender == contender), None)


def _line(target: str, value: float | None, bound: float, *, above: bool, unit: str = "x"
          ) -> list[str]:  # fmt: skip
    if value is None:
        return [target, "-", "not measured"]
    met = value >= bound if above else value < bound
    shown = f"{value:.2f}{unit}" if unit == "x" else f"{value:.1f} {unit}"
    return [target, shown, "met" if met else "NOT met"]


def targets_table(amqp_series: Sequence[Series] | None, results: monitoring.Results | None) -> str:
    """One line per target: what the run measured, and whether it holds."""
    rows: list[list[str]] = []
    if amqp_series is not None:
        s = amqp_series

        def ratio(row: str, ours: str, base: str) -> float | None:
            a, b = _median(s, row, ours), _median(s, row, base)
            return None if a is None or not b else a / b

        ours, raw, pika, fast = "aioamqp_ext", "raw aioamqp", "aio-pika", "FastStream"
        rows += [
            _line("consume prefetch 100 >= 0.9x raw", ratio(amqp.CONSUME_100, ours, raw), 0.9,
                  above=True),
            _line("consume prefetch 100 ~1.7x aio-pika", ratio(amqp.CONSUME_100, ours, pika), 1.7,
                  above=True),
            _line("consume prefetch 100 ~2.5x FastStream", ratio(amqp.CONSUME_100, ours, fast),
                  2.5, above=True),
            _line("consume prefetch 100, message handler >= 1.0x raw",
                  ratio(amqp.CONSUME_MESSAGE_100, ours, raw), 1.0, above=True),
            _line("consume prefetch 1 >= 0.9x raw", ratio(amqp.CONSUME_1, ours, raw), 0.9,
                  above=True),
            _line("publish 1000 in flight >= 1.8x aio-pika", ratio(amqp.PIPELINED, ours, pika),
                  1.8, above=True),
            _line("publish one by one >= 0.95x raw", ratio(amqp.ONE_BY_ONE, ours, raw), 0.95,
                  above=True),
            _line("metrics on: >= 0.9x of consume without",
                  ratio(amqp.CONSUME_100, "aioamqp_ext + metrics", ours), 0.9, above=True),
            _line("otel installed, no provider: >= 0.97x of tracing=False",
                  ratio(amqp.CONSUME_100, ours, "aioamqp_ext, tracing=False"), 0.97, above=True),
            _line("request/reply, 100 in flight >= 1.5x aio-pika",
                  ratio(amqp.REQUEST_REPLY, ours, pika), 1.5, above=True),
        ]  # fmt: skip
    if results is not None:
        app = {x.row: x.median for x in results.app}
        off = app.get(monitoring.APP_OFF)

        def vs_off(label: str) -> float | None:
            value = app.get(label)
            return None if value is None or not off else value / off

        lat = {x.label: x.quantile(0.99) for x in results.latency}
        cpu: dict[str, dict[str, float | None]] = {}
        for x in results.cpu:
            cpu.setdefault(x.row, {})[x.contender] = x.median
        rows += [
            _line("app with 100 checks >= 0.97x", vs_off(monitoring.APP_CHECKS), 0.97, above=True),
            _line("app with request metrics >= 0.9x", vs_off(monitoring.APP_REQUESTS), 0.9,
                  above=True),
        ]  # fmt: skip
        for label, p99 in lat.items():
            bound = 5.0 if label.startswith("/metrics, 100 ") else 50.0
            rows.append(_line(f"{label} p99 < {bound:g} ms", p99, bound, above=False, unit="ms"))
        for row, pair in cpu.items():
            ours_cpu, theirs = pair.get(monitoring.OURS), pair.get(monitoring.BLACKBOX)
            value = None if ours_cpu is None or not theirs else ours_cpu / theirs
            rows.append(_line(f"{row}: <= 2x blackbox_exporter", value, 2.0, above=False))
    return table(["target", "measured", "verdict"], rows)
