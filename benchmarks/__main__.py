"""``python -m benchmarks [--quick | --smoke] [--only amqp,monitoring,memory]``."""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys

from . import amqp
from ._report import throughput_table


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
    if "amqp" in parts:
        series = asyncio.run(amqp.run(args.amqp_url, args.size, log=progress))
        print("\n## AMQP throughput\n")
        print(throughput_table(series, baselines=("raw aioamqp", "aio-pika")), flush=True)
    return 0


def progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def machine() -> str:
    load = os.getloadavg()
    return (f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
