"""``python -m benchmarks [--quick | --smoke] [--only amqp,monitoring,memory]``."""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
from urllib.parse import urlsplit

from . import amqp, memory, monitoring
from ._report import Series, fmt, ratio, table, throughput_table
from ._targets import targets_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--quick",
        action="store_const",
        dest="size",
        const="quick",
        help="fewer messages and rounds: within 3 minutes",
    )
    mode.add_argument(
        "--smoke",
        action="store_const",
        dest="size",
        const="smoke",
        help="tiny counts, one round: proves the harness runs (seconds)",
    )
    parser.add_argument(
        "--only",
        default="amqp,monitoring",
        help="comma-separated parts: amqp, monitoring, memory "
        "(memory runs by default in the full mode only)",
    )
    parser.add_argument(
        "--amqp-url", default=os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    parser.set_defaults(size="full")
    args = parser.parse_args(argv)
    parts = set(args.only.split(","))
    if args.size == "full" and "--only" not in (argv or sys.argv):
        parts.add("memory")
    print(f"# aiohttp-booster benchmarks ({args.size}); {machine()}", flush=True)
    series = results = None
    if "amqp" in parts:
        series = asyncio.run(amqp.run(args.amqp_url, args.size, log=progress))
        print("\n## AMQP throughput\n")
        baselines = ("raw aioamqp", "aio-pika", "aioamqp_ext")
        print(throughput_table(series, baselines=baselines), flush=True)
    if "monitoring" in parts:
        results = asyncio.run(monitoring.run(args.redis_url, args.size, log=progress))
        print_monitoring(results)
    if series is not None or results is not None:
        print("\n## Targets, from the medians above\n")
        print(targets_table(series, results), flush=True)
    if "memory" in parts:
        redis_port = urlsplit(args.redis_url).port or 6379
        growths = asyncio.run(memory.run(args.amqp_url, redis_port, args.size, log=progress))
        print("\n## Memory: RSS after a tenth of the work and at the end\n")
        print(table(["work", "RSS warm", "RSS end", "growth"], [
            [g.label, f"{g.warm / 2**20:.1f} MiB", f"{g.end / 2**20:.1f} MiB", f"{g.growth:+.1%}"]
            for g in growths
        ]), flush=True)  # fmt: skip
    return 0


def print_monitoring(results: monitoring.Results) -> None:
    """The three monitoring tables: app throughput, /metrics latency, CPU per check run."""
    print("\n## Monitoring: app throughput under wrk (1 thread, 32 connections)\n")
    print(throughput_table(results.app, baselines=()).replace("| wrk ", "| app "))
    base = next((s.median for s in results.app if s.row == monitoring.APP_OFF), None)
    print()
    print(
        table(
            ["app", "median", "vs monitoring off"],
            [[s.row, fmt(s.median), ratio(s.median, base)] for s in results.app],
        )
    )
    print("\n## Monitoring: /metrics latency (sequential scrapes while the checks run)\n")
    print(
        table(
            ["scrape", "p50", "p99", "max", "requests"],
            [
                [
                    lat.label,
                    f"{fmt(lat.quantile(0.5), 'ms')} ms",
                    f"{fmt(lat.quantile(0.99), 'ms')} ms",
                    f"{fmt(max(lat.samples, default=None), 'ms')} ms",
                    str(len(lat.samples)),
                ]
                for lat in results.latency
            ],
        )
    )
    print("\n## Monitoring: CPU per 1,000 check runs (ms), beside blackbox_exporter\n")
    rows = []
    by_row: dict[str, dict[str, Series]] = {}
    for s in results.cpu:
        by_row.setdefault(s.row, {})[s.contender] = s
    for row, pair in by_row.items():
        ours, theirs = pair[monitoring.OURS], pair[monitoring.BLACKBOX]
        rows.append([row, _spread(ours), _spread(theirs), ratio(ours.median, theirs.median)])
    print(table(["work", "ours (median, min-max)", "blackbox_exporter", "ours / blackbox"], rows))
    for note in results.notes:
        print(f"- {note}")
    print(flush=True)


def _spread(s: Series) -> str:
    if not s.samples:
        return s.note or "no samples"
    return f"{fmt(s.median, 'ms')} ({fmt(min(s.samples), 'ms')}-{fmt(max(s.samples), 'ms')})"


def progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def machine() -> str:
    load = os.getloadavg()
    return (f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
