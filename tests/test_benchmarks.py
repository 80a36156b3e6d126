"""The benchmark harness runs end to end (its --smoke mode); speed is never asserted here."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import amqp, monitoring

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_smoke_run_prints_every_row(amqp_url: str, redis_url: str) -> None:
    """A broken harness must fail here, before anyone relies on its numbers."""
    env = {**os.environ, "TEST_AMQP_URL": amqp_url, "TEST_REDIS_URL": redis_url}
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--only", "amqp,monitoring,memory"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=280, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    for heading in ("## AMQP throughput", "## Monitoring: app throughput", "/metrics latency",
                    "CPU per 1,000 check runs", "## Memory", "## Targets"):  # fmt: skip
        assert heading in out
    pika = importlib.util.find_spec("aio_pika") is not None  # the bench extra
    for row in amqp.ROWS:
        if row == amqp.REQUEST_REPLY:  # ours against aio-pika's RPC pattern, no raw loop
            contenders = ("aioamqp_ext", "aio-pika") if pika else ("aioamqp_ext",)
        else:
            contenders = ("raw aioamqp", "aioamqp_ext")
        unit = amqp.UNITS.get(row, "msg/s")
        for contender in contenders:
            line = re.search(rf"^\| {re.escape(row)} +\| {contender} +\|(.*)$", out, re.MULTILINE)
            assert line is not None, f"no line for {row} / {contender}"
            assert unit in line.group(1), line.group(0)  # measured, not failed
    targets = ["consume prefetch 100, message handler >= 1.0x raw"]
    if pika:
        targets.append("request/reply, 100 in flight >= 1.5x aio-pika")
    for target in targets:
        line = re.search(rf"^\| {re.escape(target)} +\| (\S+) ", out, re.MULTILINE)
        assert line is not None, f"no target line {target!r}"
        assert line.group(1) != "-", line.group(0)  # measured
    labels = [monitoring.APP_OFF, monitoring.APP_CHECKS, monitoring.APP_REQUESTS,
              "/metrics, 100 checks", "/metrics, 1,000 checks",
              *(f"CPU per 1,000 {kind} checks" for kind in monitoring.CHECK_KINDS),
              "consumer, 2,000 messages", "check runs"]  # fmt: skip
    for label in labels:
        assert label in out, label
