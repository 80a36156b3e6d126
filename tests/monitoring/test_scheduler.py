"""The scheduler: runs on time, isolates failures, logs changes once, leaks nothing, stops clean."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any
from urllib.parse import urlsplit

import pytest

from aiohttp_prometheus_monitoring import get_monitoring
from tests.monitoring.conftest import ServeFactory, SilentListener, entry, gauge, poll, samples
from tests.monitoring.fakes import Gate, Hangs, Switch

F = "tests.monitoring.fakes."
SECRET = "hunter2-xyzzy"


def runs(text: str, name: str, result: str | None = None) -> float:
    """Total runs of a check in a /metrics text (of one result, or all of them)."""
    return sum(
        value for (sample, labels), value in samples(text).items()
        if sample == "monitoring_check_runs_total" and ("check", name) in labels
        and (result is None or ("result", result) in labels)
    )  # fmt: skip


def open_fds() -> int:
    """File descriptors this process holds open now."""
    return len(os.listdir("/proc/self/fd"))


async def test_one_bad_check_never_affects_the_others(serve: ServeFactory) -> None:
    """A raising, hanging or lying check must leave a healthy neighbour on schedule."""
    served = await serve({"metrics": [
        entry("good", F + "AlwaysUp", {}, sleep_time=0.02),
        entry("raises", F + "Raises", {}, sleep_time=0.02),
        entry("hangs", F + "Hangs", {"key": "bad_neighbour"}, sleep_time=0.05, timeout=0.03),
        entry("says_no", F + "ReturnsFalse", {}, sleep_time=0.02),
        entry("self_cancels", F + "RaisesCancelled", {}, sleep_time=0.02),
        entry("not_implemented", "aiohttp_prometheus_monitoring.metrics.base.BaseMetric", {},
              sleep_time=0.02),
    ]})  # fmt: skip

    async def settled() -> str | None:
        text = await served.metrics()
        return text if runs(text, "good") >= 20 and runs(text, "self_cancels") >= 5 else None

    text = await poll(settled)
    assert gauge(text, "good") == 1.0
    assert runs(text, "good", "success") == runs(text, "good")
    for name in ("raises", "hangs", "says_no", "self_cancels", "not_implemented"):
        assert gauge(text, name) == 0.0, name
    assert runs(text, "raises", "error") >= 1
    assert runs(text, "hangs", "timeout") >= 1
    assert runs(text, "says_no", "failure") >= 1
    assert runs(text, "self_cancels", "error") >= 5  # still scheduled after raising CancelledError


async def test_runs_follow_a_fixed_grid_without_drift(serve: ServeFactory) -> None:
    """A run that takes half its period must not push every later run back (no drift)."""
    period = 0.1
    await serve({"metrics": [entry("busy", F + "Switch", {"key": "drift", "busy": 0.05},
                                   sleep_time=period)]})  # fmt: skip

    async def ten_runs() -> bool:
        return len(Switch.starts.get("drift", [])) >= 11

    await poll(ten_runs)
    starts = Switch.starts["drift"][:11]
    offsets = [started - starts[0] - n * period for n, started in enumerate(starts)]
    assert min(offsets) >= -0.01, offsets  # never early
    # A drifting timer would be 10 x 0.05 s late by now; jitter and scheduling noise are not.
    assert offsets[-1] < period * 0.05 + 0.04, offsets


async def test_a_check_is_not_shown_before_its_first_run_finishes(serve: ServeFactory) -> None:
    """A check that never ran must not look like a check that is down."""
    served = await serve({"metrics": [entry("slow_start", F + "Gate", {"key": "first_run"},
                                            sleep_time=5)]})  # fmt: skip
    Gate.gates.setdefault("first_run", asyncio.Event())
    text = await served.metrics()
    assert "slow_start" not in text
    Gate.gates["first_run"].set()
    await served.wait_gauges({"slow_start": 1.0})


async def test_state_changes_are_logged_once_each(
    serve: ServeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Logs say when a dependency went down and came back, not every time it was checked."""
    caplog.set_level(logging.INFO, logger="aiohttp_prometheus_monitoring")
    Switch.up["flap"] = True
    served = await serve({"metrics": [entry("flappy", F + "Switch", {"key": "flap"},
                                            sleep_time=0.01)]})  # fmt: skip
    for up_next, result in ((False, "success"), (True, "failure"), (True, "success")):
        before = runs(await served.metrics(), "flappy", result)

        async def five_more(result: str = result, before: float = before) -> bool:
            return runs(await served.metrics(), "flappy", result) >= before + 5

        await poll(five_more)
        Switch.up["flap"] = up_next
    mine = [r for r in caplog.records if getattr(r, "check", None) == "flappy"]
    assert [r.getMessage() for r in mine] == [
        "check flappy is up",
        "check flappy is down (failure): the check returned False",
        "check flappy is up",
    ]
    assert [r.levelname for r in mine] == ["INFO", "WARNING", "INFO"]


async def test_passwords_stay_out_of_logs_and_metrics(
    serve: ServeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A driver error that quotes a password must be masked before it reaches a log line."""
    caplog.set_level(logging.DEBUG)
    served = await serve({"metrics": [entry("leaky", F + "Raises", {"password": SECRET})]})
    text = await served.wait_gauges({"leaky": 0.0})
    assert SECRET not in text
    assert SECRET not in caplog.text
    assert "login refused for password ***" in caplog.text
    assert SECRET not in repr(get_monitoring(served.app))


async def test_closing_cancels_and_awaits_every_check(serve: ServeFactory) -> None:
    """Shutdown must not leave tasks behind nor wait for a hanging check to give up."""
    served = await serve({"metrics": [
        entry("stuck", F + "Hangs", {"key": "on_close"}, sleep_time=60, timeout=50),
        entry("fine", F + "AlwaysUp", {}),
    ]})  # fmt: skip
    await served.wait_gauges({"fine": 1.0})
    assert get_monitoring(served.app).scheduler.running
    scheduler = get_monitoring(served.app).scheduler
    await served.server.close()
    await served.app.cleanup()
    assert Hangs.cancelled["on_close"] == 1
    assert not scheduler.running
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("monitoring ")]
    await scheduler.close()  # idempotent


async def test_ten_thousand_runs_leave_fds_and_tasks_flat(
    serve: ServeFactory,
    silent_listener: SilentListener,
    closed_port: int,
    redis_url: str,
    pg_dsn: str,
    amqp_url: str,
    mysql_url: str,
) -> None:
    """A check every few seconds for months is millions of runs: none may leak a socket."""
    redis = urlsplit(redis_url)
    silent = {"host": "127.0.0.1", "port": silent_listener.port}
    fast = {"sleep_time": 0.01, "timeout": 2.0}  # a loaded CI box may take a while to answer
    real: list[dict[str, Any]] = [
        entry("redis_up", "redis.RedisMetric", {"url": redis_url}, **fast),
        entry("pg_up", "postgres.PostgresMetric", {"dsn": pg_dsn}, **fast),
        entry("mq_up", "amqp.AmqpMetric", {"url": amqp_url}, **fast),
        entry("mysql_up", "mysql.MySQLMetric", {"dsn": mysql_url}, **fast),
        entry("tcp_up", "tcp.TcpMetric", {"host": redis.hostname, "port": redis.port}, **fast),
        entry("redis_refused", "redis.RedisMetric", {"host": "127.0.0.1", "port": closed_port},
              **fast),
        entry("redis_silent", "redis.RedisMetric", silent, sleep_time=0.05, timeout=0.02),
        entry("pg_silent", "postgres.PostgresMetric", silent, sleep_time=0.05, timeout=0.02),
        entry("mq_silent", "amqp.AmqpMetric", silent, sleep_time=0.05, timeout=0.02),
        entry("mysql_silent", "mysql.MySQLMetric", silent, sleep_time=0.05, timeout=0.02),
        entry("http_silent", "http.HttpMetric", {"url": f"http://127.0.0.1:{silent['port']}/"},
              sleep_time=0.05, timeout=0.02),
    ]  # fmt: skip
    cheap = [entry(f"cheap_{i}", F + "AlwaysUp", {}, sleep_time=0.002) for i in range(5)]
    fds_before, tasks_before = open_fds(), len(asyncio.all_tasks())
    served = await serve({"metrics": [*real, *cheap], "include_default_registry": False})
    names = [e["name"] for e in real + cheap]

    async def total_runs(at_least: int) -> str | None:
        text = await served.metrics()
        return text if sum(runs(text, name) for name in names) >= at_least else None

    await poll(lambda: total_runs(1000), timeout=30, interval=0.1)
    fds_warm, tasks_warm = open_fds(), len(asyncio.all_tasks())
    text = await poll(lambda: total_runs(10_000), timeout=60, interval=0.1)
    fds_after, tasks_after = open_fds(), len(asyncio.all_tasks())
    for name in ("redis_up", "pg_up", "mq_up", "mysql_up", "tcp_up"):
        assert gauge(text, name) == 1.0, name
        assert runs(text, name) >= 20, name
    for name in ("redis_refused", "redis_silent", "pg_silent", "mq_silent", "mysql_silent"):
        assert gauge(text, name) == 0.0, name
    assert runs(text, "pg_silent", "timeout") >= 10
    # At any instant a real check may hold a socket or two, the silent listener the other end
    # of each, and a timed-out run its socket until it finishes closing; a leak would be
    # thousands after 10,000 runs.
    in_flight = len(real) * 3
    assert fds_after - fds_warm <= in_flight, (fds_before, fds_warm, fds_after)
    assert tasks_after - tasks_warm <= in_flight, (tasks_before, tasks_warm, tasks_after)
    await served.session.close()
    await served.server.close()
    await served.app.cleanup()

    async def back_to_start() -> bool:
        return open_fds() <= fds_before and silent_listener.closed == silent_listener.accepted

    await poll(back_to_start, timeout=5)
    assert len(asyncio.all_tasks()) <= tasks_before
    print(
        f"fds: before {fds_before}, warm {fds_warm}, after 10k runs {fds_after}, closed "
        f"{open_fds()}; tasks: before {tasks_before}, warm {tasks_warm}, after {tasks_after}"
    )
