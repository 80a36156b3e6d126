"""Subprocesses of the monitoring rows (our app, wrk, blackbox_exporter) and what we read
of them: CPU seconds and resident memory from /proc, Prometheus samples from their text."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds ``pid`` has used (fields 14 and 15 of /proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # the name may hold spaces: skip past it
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid: int | str = "self") -> int:
    """Resident memory of ``pid`` (VmRSS of /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise LookupError(f"no VmRSS for process {pid}")


def sample_sum(text: str, name: str) -> float:
    """The sum of every sample of the metric ``name`` in a Prometheus text exposition."""
    pattern = re.compile(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? (\S+)$", re.MULTILINE)
    return sum(float(value) for value in pattern.findall(text))


class Process:
    """A subprocess of the harness, stopped (SIGTERM, then SIGKILL) on exit."""

    def __init__(self, argv: Sequence[str]) -> None:
        self.argv = list(argv)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __enter__(self) -> Process:
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)  # fmt: skip
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stderr is not None:
            self.proc.stderr.close()

    def failed(self) -> str | None:
        """Why the process ended early (its stderr's tail), or None while it runs."""
        assert self.proc is not None
        if self.proc.poll() is None:
            return None
        err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
        return f"{self.argv[0]} exited with {self.proc.returncode}: {err[-500:]}"


async def wait_http(process: Process, url: str, timeout: float = 30.0) -> None:
    """Wait until ``url`` answers (any status): the process is serving."""
    import aiohttp

    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            if (why := process.failed()) is not None:
                raise RuntimeError(why)
            try:
                async with session.get(url) as response:
                    await response.read()
                    return
            except aiohttp.ClientError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{url} did not answer within {timeout:g} s") from None
                await asyncio.sleep(0.05)


def app_process(port: int, *args: str) -> Process:
    """Our benchmarked app (``benchmarks.app``) on ``port``."""
    return Process([sys.executable, "-m", "benchmarks.app", "--port", str(port), *args])


async def wrk(url: str, seconds: float, connections: int = 32) -> float:
    """Requests per second that ``wrk`` (one thread) measured against ``url``."""
    proc = await asyncio.create_subprocess_exec(
        "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    match = re.search(rb"Requests/sec:\s+([\d.]+)", out)
    if proc.returncode or match is None:
        raise RuntimeError(f"wrk failed: {(out + err).decode(errors='replace')[-300:]}")
    if b"Non-2xx" in out:
        raise RuntimeError(f"wrk saw errors: {out.decode(errors='replace')[-300:]}")
    return float(match.group(1))
