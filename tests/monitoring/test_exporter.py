"""The standalone exporter, run from its command line and scraped by a real Prometheus."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession

from aiohttp_prometheus_monitoring import WrongConfiguration, __version__
from aiohttp_prometheus_monitoring.exporter import DEFAULT_CONFIG, read_config_file
from tests.conftest import IN_CI
from tests.monitoring.conftest import gauge, poll
from tests.monitoring.test_web import BAD_STDERR, ROOT, free_port

EXAMPLE = ROOT / "examples" / "exporter.toml"
LOCAL = ("monitoring_rabbitmq", "monitoring_redis", "monitoring_postgres")


class Exporter:
    """``python -m aiohttp_prometheus_monitoring`` as a subprocess on a free loopback port."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.port = port

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def get(self, path: str) -> tuple[int, str] | None:
        """Status and body of ``path``; None while nothing listens yet."""
        if self.process.returncode is not None:
            assert self.process.stderr is not None
            pytest.fail(f"exited early: {(await self.process.stderr.read()).decode()}")
        try:
            async with (
                ClientSession() as session,
                session.get(f"http://{self.target}{path}") as response,
            ):
                return response.status, await response.text()
        except OSError:
            return None

    def get_unless_connecting(self, path: str) -> Callable[[], Awaitable[tuple[int, str] | None]]:
        """A probe for :func:`poll`: ``get(path)`` once the exporter listens."""
        return lambda: self.get(path)

    async def stop(self, sig: signal.Signals = signal.SIGTERM) -> tuple[int, str, str]:
        """Send ``sig``; return exit code, stdout and stderr once it has exited."""
        self.process.send_signal(sig)
        async with asyncio.timeout(15):
            stdout, stderr = await self.process.communicate()
        assert self.process.returncode is not None
        return self.process.returncode, stdout.decode(), stderr.decode()


async def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> tuple[int, str]:
    """Run the CLI to completion; exit code and everything it printed."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aiohttp_prometheus_monitoring", *args, cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    async with asyncio.timeout(30):
        output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode()


@pytest.fixture
async def exporter() -> AsyncIterator[Callable[..., Awaitable[Exporter]]]:
    """Factory of running exporters; each one is killed afterwards if still running."""
    started: list[Exporter] = []

    async def start(*args: str, env: dict[str, str] | None = None) -> Exporter:
        port = free_port()
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "aiohttp_prometheus_monitoring", *args, "--port", str(port),
            cwd=ROOT, env={**os.environ, "PYTHONWARNINGS": "always::ResourceWarning",
                           **(env or {})},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        started.append(Exporter(process, port))
        return started[-1]

    yield start
    for running in started:
        if running.process.returncode is None:
            running.process.kill()
            await running.process.wait()


@pytest.fixture
async def prometheus(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[str]]]:
    """Factory: start a real Prometheus scraping ``targets`` every second (with a bearer
    ``token`` if given); returns its URL. ``jobs``: scrape configs of several jobs instead
    (``job_name``, ``static_configs``...), each scraped every second too.

    It listens on a free loopback port, keeps its data in tmp_path, and is killed afterwards.
    """
    binary = shutil.which("prometheus")
    if binary is None:
        if IN_CI:
            pytest.fail("prometheus is missing: run scripts/tools")
        pytest.skip("prometheus is missing: run scripts/tools")
    processes: list[asyncio.subprocess.Process] = []

    async def start(
        targets: list[str], token: str | None = None, *, jobs: list[dict[str, Any]] | None = None
    ) -> str:
        config = tmp_path / "prometheus.yml"
        job: dict[str, Any] = {"job_name": "exporter", "static_configs": [{"targets": targets}]}
        if token is not None:
            job["authorization"] = {"credentials": token}
        config.write_text(json.dumps({  # JSON is YAML: no YAML writer needed
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
            "scrape_configs": [job] if jobs is None else jobs,
        }))  # fmt: skip
        port = free_port()
        process = await asyncio.create_subprocess_exec(
            binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        processes.append(process)
        return f"http://127.0.0.1:{port}"

    yield start
    for process in processes:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def scraped_up(prometheus_url: str, targets: list[str]) -> dict[str, Any]:
    """Prometheus' view of ``targets`` once it has scraped every one of them successfully."""
    async with ClientSession() as session:

        async def all_up() -> dict[str, Any] | None:
            try:
                url = f"{prometheus_url}/api/v1/targets"
                async with session.get(url) as response:
                    if response.status != 200:
                        return None
                    body = await response.json()
            except OSError:
                return None
            active = {t["labels"]["instance"]: t for t in body["data"]["activeTargets"]}
            healthy = all(active.get(t, {}).get("health") == "up" for t in targets)
            return active if healthy else None

        result: dict[str, Any] = await poll(all_up, timeout=30, interval=0.25)
        return result


async def shown(exporter: Exporter, gauges: dict[str, float]) -> str:
    """The exporter's /metrics once the named gauges show the expected values."""

    async def probe() -> str | None:
        answer = await exporter.get("/metrics")
        if answer is None or answer[0] != 200:
            return None
        ok = all(gauge(answer[1], name) == value for name, value in gauges.items())
        return answer[1] if ok else None

    text: str = await poll(probe, timeout=20, interval=0.1)
    return text


def assert_clean_exit(result: tuple[int, str, str]) -> None:
    code, _, stderr = result
    assert code == 0, stderr
    assert not [bad for bad in BAD_STDERR if bad in stderr], stderr


@pytest.mark.slow
async def test_default_exporter_is_scraped_by_prometheus_and_stops_on_sigterm(
    exporter: Callable[..., Awaitable[Exporter]],
    prometheus: Callable[..., Awaitable[str]],
    redis_url: str,
    amqp_url: str,
    pg_dsn: str,
) -> None:
    """`python -m aiohttp_prometheus_monitoring` with no config must show this machine's
    services to a real Prometheus, and stop cleanly when its supervisor says so."""
    running = await exporter()
    text = await shown(running, dict.fromkeys(LOCAL, 1.0))
    assert gauge(text, "monitoring_ready") == 1.0
    answer = await running.get("/ready")
    assert answer is not None
    assert answer[0] == 200
    assert json.loads(answer[1])["status"] == "pass"
    assert await running.get("/") == (200, "aiohttp_prometheus_monitoring exporter "
                                       f"{__version__}\n/ping\n/metrics\n/ready\n")  # fmt: skip
    url = await prometheus([running.target])
    targets = await scraped_up(url, [running.target])
    assert targets[running.target]["lastError"] == ""
    assert_clean_exit(await running.stop(signal.SIGTERM))


@pytest.mark.slow
async def test_toml_exporter_reads_secrets_from_env_and_is_scraped(
    exporter: Callable[..., Awaitable[Exporter]],
    prometheus: Callable[..., Awaitable[str]],
    redis_url: str,
    amqp_url: str,
    pg_dsn: str,
) -> None:
    """examples/exporter.toml is what users copy: it must run, take its password from the
    environment without ever printing it, and stop cleanly on SIGINT too."""
    secret = "env-only-Pa55word"
    running = await exporter("--config", str(EXAMPLE), env={"PG_PASSWORD": secret})
    names = ("monitoring_redis", "monitoring_mq", "monitoring_postgres")
    text = await shown(running, dict.fromkeys(names, 1.0))
    url = await prometheus([running.target])
    await scraped_up(url, [running.target])
    result = await running.stop(signal.SIGINT)
    assert_clean_exit(result)
    for output in (text, result[1], result[2]):
        assert secret not in output
    assert "examples/exporter.toml: 3 checks" in result[1]


@pytest.mark.slow
async def test_protected_exporter_is_scraped_with_its_token(
    exporter: Callable[..., Awaitable[Exporter]],
    prometheus: Callable[..., Awaitable[str]],
    tmp_path: Path,
) -> None:
    """An exporter reachable from outside is protected by a token: Prometheus' own
    `authorization` setting must get through, and nothing else."""
    token = "scrape-T0ken-from-env"
    config = tmp_path / "protected.toml"
    config.write_text('auth = { bearer_token_env = "EXPORTER_TOKEN" }\n[[metrics]]\n'
                      'name = "monitoring_cheap"\ndescription = "Always up"\n'
                      'module = "tests.monitoring.fakes.AlwaysUp"\nsleep_time = 1\n')  # fmt: skip
    running = await exporter("--config", str(config),
                             env={"EXPORTER_TOKEN": token, "PYTHONPATH": str(ROOT)})  # fmt: skip
    assert await poll(running.get_unless_connecting("/metrics")) == (401, "401: Unauthorized")
    url = await prometheus([running.target], token)
    await scraped_up(url, [running.target])
    result = await running.stop(signal.SIGTERM)
    assert_clean_exit(result)
    assert token not in result[1] + result[2]


async def test_check_config_prints_every_problem_and_exits_1(tmp_path: Path) -> None:
    """Like `promtool check config`: CI gates deploys on it, so all problems at once."""
    broken = tmp_path / "broken.toml"
    broken.write_text(
        'route_ready = "ready"\n'
        "[[metrics]]\n"
        'name = "monitoring-redis"\n'
        'description = "Check redis"\n'
        'module = "aiohttp_prometheus_monitoring.metrics.redis.RedisMetric"\n'
        "sleep_time = 0\n"
        'params = { hots = "localhost" }\n'
        "[[metrics]]\n"
        'name = "monitoring_postgres"\n'
        'description = "Check postgres"\n'
        'module = "aiohttp_prometheus_monitoring.metrics.postgres.PostgresMetric"\n'
        "sleep_time = 10\n"
        'params = { password_env = "TEST_EXPORTER_UNSET" }\n'
    )
    code, output = await run_cli("--config", str(broken), "--check-config")
    assert code == 1
    for problem in (
        "route_ready: expected a path starting with '/'",
        "metrics[0] 'monitoring-redis': name: 'monitoring-redis' is not a valid",
        "metrics[0] 'monitoring-redis': sleep_time: must be > 0, got 0",
        "metrics[0] 'monitoring-redis': params: unexpected keyword 'hots' (did you mean 'host'?)",
        "metrics[1] 'monitoring_postgres': params: password_env: environment variable "
        "'TEST_EXPORTER_UNSET' is not set",
    ):
        assert problem in output
    assert "(5 problems)" in output
    code, output = await run_cli("--config", str(EXAMPLE), "--check-config",
                                 env={"PG_PASSWORD": "whatever"})  # fmt: skip
    assert (code, output.strip()) == (0, f"SUCCESS: {EXAMPLE} is valid (3 checks)")
    code, output = await run_cli("--check-config")
    assert (code, output.strip()) == (0, "SUCCESS: the built-in default configuration is valid "
                                         "(3 checks)")  # fmt: skip


async def test_unparseable_or_missing_file_is_a_config_error(tmp_path: Path) -> None:
    """A typo in TOML or a wrong path must say which file and why, not show a traceback."""
    bad = tmp_path / "bad.toml"
    bad.write_text("metrics = [\n")
    code, output = await run_cli("--config", str(bad), "--check-config")
    assert code == 1
    assert f"{bad}: not valid TOML" in output
    assert "Traceback" not in output
    code, output = await run_cli("--config", str(tmp_path / "absent.json"))
    assert code == 1
    assert "absent.json: cannot read" in output


async def test_a_taken_port_is_reported_without_a_traceback() -> None:
    """Two exporters on one port is a deploy mistake: say so in one line, exit 1."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, output = await run_cli("--config", str(EXAMPLE), "--port", str(port),
                                     env={"PG_PASSWORD": "x"})  # fmt: skip
    assert code == 1
    assert f"FAILED: cannot listen on 127.0.0.1:{port}: " in output
    assert "Traceback" not in output


def test_json_yaml_and_wrapped_files_read_the_same(tmp_path: Path) -> None:
    """Teams keep configs in the format their tooling has; all mean the same MONITORING."""
    pytest.importorskip("yaml")  # YAML files need PyYAML, which is optional
    config = {"metrics": [{**DEFAULT_CONFIG["metrics"][1]}]}
    (tmp_path / "m.json").write_text(json.dumps(config))
    (tmp_path / "m.yaml").write_text(json.dumps({"MONITORING": config}))  # JSON is YAML
    expected = {"route_ready": "/ready", **config}
    assert read_config_file(tmp_path / "m.json") == expected
    assert read_config_file(tmp_path / "m.yaml") == expected
    (tmp_path / "m.ini").write_text("")
    with pytest.raises(WrongConfiguration, match=r"unknown format '\.ini'"):
        read_config_file(tmp_path / "m.ini")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(WrongConfiguration, match="expected a table of settings, got list"):
        read_config_file(tmp_path / "list.json")
