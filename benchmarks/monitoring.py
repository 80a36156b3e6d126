"""The monitoring rows: what monitoring costs an app, how fast /metrics answers, and the CPU of
a check run beside prometheus-blackbox-exporter probing the same services."""

from __future__ import annotations

import asyncio
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._procs import Process, app_process, cpu_seconds, free_port, sample_sum, wait_http, wrk
from ._report import Series


@dataclass(frozen=True, slots=True)
class Sizes:
    rounds: int  # of the wrk row
    wrk_seconds: float
    latency_rounds: int
    scrapes: int  # per round and configuration
    cpu_rounds: int
    cpu_seconds: float
    checks_for_cpu: int  # checks at sleep_time 1 s: about this many runs per second


SIZES = {
    "smoke": Sizes(rounds=1, wrk_seconds=1, latency_rounds=1, scrapes=20, cpu_rounds=1,
                   cpu_seconds=2, checks_for_cpu=20),
    "quick": Sizes(rounds=2, wrk_seconds=4, latency_rounds=1, scrapes=100, cpu_rounds=1,
                   cpu_seconds=4, checks_for_cpu=100),
    "full": Sizes(rounds=3, wrk_seconds=10, latency_rounds=3, scrapes=500, cpu_rounds=3,
                  cpu_seconds=10, checks_for_cpu=100),
}  # fmt: skip

APP_OFF = "app, monitoring off"
APP_CHECKS = "app, 100 checks at sleep_time 1 s"
APP_REQUESTS = "app, request metrics on"
BLACKBOX = "blackbox_exporter"
OURS = "aiohttp_prometheus_monitoring"
CHECK_KINDS = ("redis", "tcp", "http")

BLACKBOX_CONFIG = """\
modules:
  tcp:
    prober: tcp
    timeout: 5s
  http:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
  redis:
    prober: tcp
    timeout: 5s
    tcp:
      query_response:
        - send: "PING"
        - expect: "^[+]PONG"
"""


@dataclass(frozen=True, slots=True)
class Latency:
    """Latencies of /metrics (milliseconds), pooled over the rounds."""

    label: str
    samples: list[float]

    def quantile(self, q: float) -> float | None:
        if not self.samples:
            return None
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass(slots=True)
class Results:
    app: list[Series]
    latency: list[Latency]
    cpu: list[Series]  # CPU ms per 1,000 runs, per kind: ours and blackbox_exporter
    notes: list[str]


class Env:
    """Ports and the HTTP target of the checks, shared by every monitoring row."""

    def __init__(self, redis_port: int, size: str, log: Callable[[str], None]) -> None:
        self.redis_port = redis_port
        self.sizes = SIZES[size]
        self.log = log
        self.target_port = free_port()
        self.target_url = f"http://127.0.0.1:{self.target_port}/"

    def app(self, *args: str) -> tuple[Process, str]:
        port = free_port()
        common = ("--redis-port", str(self.redis_port), "--http-url", self.target_url)
        return app_process(port, *common, *args), f"http://127.0.0.1:{port}"


async def all_ran(base: str, checks: int, timeout: float = 60.0) -> str:
    """Wait until each check of the app finished its first run; returns the last scrape."""
    import aiohttp

    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            async with session.get(f"{base}/metrics") as response:
                text = await response.text()
            if text.count("\nmonitoring_check_up{") >= checks:
                return text
            if time.monotonic() > deadline:
                raise TimeoutError(f"not every one of {checks} checks ran within {timeout:g} s")
            await asyncio.sleep(0.2)


async def app_throughput(env: Env) -> list[Series]:
    """wrk against the hello-world app, monitoring off / 100 checks / request metrics."""
    configs = {
        APP_OFF: (),
        APP_CHECKS: ("--checks", "100", "--kind", "mixed", "--sleep-time", "1"),
        APP_REQUESTS: ("--request-metrics",),
    }
    if shutil.which("wrk") is None:
        return [Series(label, "wrk", "req/s", note="skipped: wrk is not installed")
                for label in configs]  # fmt: skip
    series = {label: Series(label, "wrk", "req/s") for label in configs}
    for round_ in range(env.sizes.rounds):
        labels = list(configs)
        shift = round_ % len(labels)
        for label in labels[shift:] + labels[:shift]:
            process, base = env.app(*configs[label])
            with process:
                await wait_http(process, f"{base}/ping")
                if "--checks" in configs[label]:
                    await all_ran(base, 100)
                await wrk(f"{base}/", 1)  # warm-up
                rate = await wrk(f"{base}/", env.sizes.wrk_seconds)
            series[label].samples.append(rate)
            env.log(f"  {label}: {rate:,.0f} req/s")
    return list(series.values())


async def metrics_latency(env: Env) -> list[Latency]:
    """/metrics answered one request at a time while 100 or 1,000 checks keep running."""
    import aiohttp

    configs = {
        "/metrics, 100 checks (sleep_time 1 s)": ("100", "1"),
        "/metrics, 1,000 checks (sleep_time 10 s)": ("1000", "10"),
    }
    pooled: dict[str, list[float]] = {label: [] for label in configs}
    for _ in range(env.sizes.latency_rounds):
        for label, (checks, sleep_time) in configs.items():
            process, base = env.app("--checks", checks, "--kind", "mixed",
                                    "--sleep-time", sleep_time)  # fmt: skip
            with process:
                await wait_http(process, f"{base}/ping", timeout=60)
                await all_ran(base, int(checks))
                async with aiohttp.ClientSession() as session:
                    for _ in range(env.sizes.scrapes):
                        started = time.perf_counter()
                        async with session.get(f"{base}/metrics") as response:
                            await response.read()
                        pooled[label].append((time.perf_counter() - started) * 1000)
                        await asyncio.sleep(0.005)  # a scraper's pace, not a flood
            env.log(f"  {label}: p50 {statistics.median(pooled[label]):.2f} ms")
    return [Latency(label, samples) for label, samples in pooled.items()]


async def check_cpu(env: Env, workdir: Path) -> tuple[list[Series], list[str]]:
    """CPU milliseconds per 1,000 check runs, ours beside blackbox_exporter's probes."""
    notes: list[str] = []
    ours = {kind: Series(f"CPU per 1,000 {kind} checks", OURS, "ms") for kind in CHECK_KINDS}
    theirs = {kind: Series(f"CPU per 1,000 {kind} checks", BLACKBOX, "ms")
              for kind in CHECK_KINDS}  # fmt: skip
    binary = shutil.which("prometheus-blackbox-exporter") or shutil.which("blackbox_exporter")
    if binary is None:
        for s in theirs.values():
            s.note = "skipped: prometheus-blackbox-exporter is not installed"
    config = workdir / "blackbox.yml"
    config.write_text(BLACKBOX_CONFIG)
    bb_port = free_port()
    listen = f"--web.listen-address=127.0.0.1:{bb_port}"
    blackbox = Process([binary or "true", f"--config.file={config}", listen, "--log.level=warn"])
    with blackbox:
        if binary is not None:
            await wait_http(blackbox, f"http://127.0.0.1:{bb_port}/metrics")
        for round_ in range(env.sizes.cpu_rounds):
            for kind in CHECK_KINDS:
                pair: list[Any] = ["ours", "theirs"] if round_ % 2 == 0 else ["theirs", "ours"]
                for who in pair:
                    if who == "ours":
                        value = await _ours_cpu(env, kind)
                        ours[kind].samples.append(value)
                    elif binary is not None:
                        value = await _blackbox_cpu(env, kind, blackbox.pid, bb_port)
                        theirs[kind].samples.append(value)
                    else:
                        continue
                    env.log(f"  CPU per 1,000 {kind} checks, {who}: {value:.0f} ms")
    series = []
    for kind in CHECK_KINDS:
        series += [ours[kind], theirs[kind]]
    return series, notes


async def _ours_cpu(env: Env, kind: str) -> float:
    import aiohttp

    checks = env.sizes.checks_for_cpu
    process, base = env.app("--checks", str(checks), "--kind", kind, "--sleep-time", "1")
    with process:
        await wait_http(process, f"{base}/ping")
        await all_ran(base, checks)
        await asyncio.sleep(1.0)  # past the start-up burst
        async with aiohttp.ClientSession() as session:

            async def runs() -> float:
                async with session.get(f"{base}/metrics") as response:
                    text = await response.text()
                failures = sample_sum(text, "monitoring_check_up") - checks
                if failures:
                    raise RuntimeError(f"{int(-failures)} {kind} checks are down")
                return sample_sum(text, "monitoring_check_runs_total")

            runs0, cpu0 = await runs(), cpu_seconds(process.pid)
            await asyncio.sleep(env.sizes.cpu_seconds)
            cpu1, runs1 = cpu_seconds(process.pid), await runs()
    return (cpu1 - cpu0) / (runs1 - runs0) * 1e6


async def _blackbox_cpu(env: Env, kind: str, pid: int, port: int) -> float:
    import aiohttp

    target = {"redis": f"127.0.0.1:{env.redis_port}", "tcp": f"127.0.0.1:{env.redis_port}",
              "http": env.target_url}[kind]  # fmt: skip
    url = f"http://127.0.0.1:{port}/probe"
    params = {"module": kind, "target": target}
    rate = env.sizes.checks_for_cpu  # probes per second, as many as our checks run
    failed = 0

    async with aiohttp.ClientSession() as session:

        async def probe() -> None:
            nonlocal failed
            async with session.get(url, params=params) as response:
                text = await response.text()
            if sample_sum(text, "probe_success") != 1:
                failed += 1

        await probe()  # warm: the session's connection is open
        loop = asyncio.get_running_loop()
        count = int(rate * env.sizes.cpu_seconds)
        tasks = []
        cpu0 = cpu_seconds(pid)
        start = loop.time()
        for i in range(count):
            await asyncio.sleep(max(0.0, start + i / rate - loop.time()))
            tasks.append(asyncio.create_task(probe()))
        await asyncio.gather(*tasks)
        cpu1 = cpu_seconds(pid)
    if failed:
        raise RuntimeError(f"{failed} of {count} blackbox {kind} probes failed")
    return (cpu1 - cpu0) / count * 1e6


async def run(redis_url: str, size: str, log: Callable[[str], None] = print) -> Results:
    """Every monitoring row; the app's HTTP check target runs throughout."""
    from urllib.parse import urlsplit

    env = Env(urlsplit(redis_url).port or 6379, size, log)
    notes: list[str] = []
    target = app_process(env.target_port)
    with target, tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        await wait_http(target, env.target_url)
        app = await app_throughput(env)
        latency = await metrics_latency(env)
        cpu, cpu_notes = await check_cpu(env, Path(tmp))
        notes += cpu_notes
    return Results(app, latency, cpu, notes)
