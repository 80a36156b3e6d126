"""Fixtures of the worker tests: a real Pushgateway, and the examples run as processes."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

import pytest
from aiohttp import ClientSession

from tests.conftest import tool
from tests.monitoring.conftest import poll
from tests.monitoring.test_web import ROOT, free_port


async def get_text(url: str) -> tuple[int, str] | None:
    """Status and body of ``url``; None while nothing listens there."""
    try:
        async with ClientSession() as session, session.get(url) as response:
            return response.status, await response.text()
    except OSError:
        return None


@pytest.fixture
async def pushgateway() -> AsyncIterator[str]:
    """A real Pushgateway on a free loopback port, persistence off; its URL. Killed afterwards."""
    binary = tool("prometheus-pushgateway")
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        binary, f"--web.listen-address=127.0.0.1:{port}", "--persistence.file=",
        "--log.level=warn",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:

        async def ready() -> bool:
            if process.returncode is not None:
                pytest.fail(f"the Pushgateway exited with {process.returncode}")
            answer = await get_text(f"{url}/-/ready")
            return answer is not None and answer[0] == 200

        await poll(ready, timeout=15, interval=0.05)
        yield url
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


@dataclass
class Program:
    """An example started as a process; its output is collected as it runs."""

    process: asyncio.subprocess.Process
    lines: list[str]
    reader: asyncio.Task[None]

    def output(self) -> str:
        return "".join(self.lines)

    async def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        """Send ``sig``; the exit code once it has exited (and its output is read)."""
        if self.process.returncode is None:
            self.process.send_signal(sig)
        async with asyncio.timeout(30):
            code = await self.process.wait()
            await self.reader
        return code


@pytest.fixture
async def example() -> AsyncIterator[Callable[..., Awaitable[Program]]]:
    """Factory: ``await example("shop_worker.py", env)`` runs examples/<name>; killed afterwards.

    ``wrapper``: a script run in front of the example's path (it runs the example itself).
    """
    started: list[Program] = []

    async def start(name: str, env: dict[str, str], *, wrapper: Sequence[str] = ()) -> Program:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-W", "error", *wrapper, str(ROOT / "examples" / name), cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        lines: list[str] = []

        async def read() -> None:
            assert process.stdout is not None
            async for line in process.stdout:
                lines.append(line.decode(errors="replace"))

        started.append(Program(process, lines, asyncio.create_task(read())))
        return started[-1]

    yield start
    for program in started:
        if program.process.returncode is None:
            program.process.kill()
            await program.process.wait()
        await program.reader
