"""The readiness/exporter docs page, executed: its configs load, its samples are real."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from aiohttp_prometheus_monitoring.config import load_config
from aiohttp_prometheus_monitoring.readiness import readiness_body
from aiohttp_prometheus_monitoring.scheduler import CheckState
from tests.monitoring.test_exporter import run_cli

ROOT = Path(__file__).resolve().parents[2]
PAGE = (ROOT / "docs" / "readiness.md").read_text(encoding="utf-8")


def blocks(language: str) -> list[str]:
    """The fenced code blocks of the page in ``language``, in order."""
    return re.findall(rf"^```{language}\n(.*?)^```$", PAGE, flags=re.MULTILINE | re.DOTALL)


@pytest.fixture
def namespace(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Every Python block of the page run in order, with the variables it names set."""
    for variable in ("MONITORING_TOKEN", "PG_PASSWORD", "MONITORING_PASSWORD"):
        monkeypatch.setenv(variable, f"value-of-{variable}")
    namespace: dict[str, Any] = {}
    for code in blocks("python"):
        exec(compile(code, str(PAGE), "exec"), namespace)  # noqa: S102 - our own docs
    return namespace


def test_page_configs_load_as_described(namespace: dict[str, Any]) -> None:
    """Configs copied from the page must load and mean what the text says."""
    config = load_config(namespace["MONITORING"])
    assert config.route_ready == "/ready"
    assert config.request_metrics is not None
    assert config.request_metrics.buckets == (0.01, 0.05, 0.1, 0.5, 1.0, 5.0)
    assert config.auth is not None
    assert config.auth.scheme == "Bearer"
    postgres, mq = config.metrics
    assert (postgres.critical, mq.critical) == (True, False)
    assert postgres.params["password"] == "value-of-PG_PASSWORD"
    assert load_config(namespace["AUTH_TOKEN"]).auth is not None
    basic = load_config(namespace["AUTH_BASIC"]).auth
    assert basic is not None
    assert basic.scheme == "Basic"


def test_json_sample_has_the_shape_of_a_real_answer() -> None:
    """Clients are written against the sample: its fields must be the ones we send."""
    sample = json.loads(blocks("json")[0])
    down = CheckState(
        name="monitoring_postgres",
        description="d",
        kind="postgres",
        timeout=1,
        up=False,
        last_run=1.8e9,
        last_success=1.7e9,
        reason="refused",
    )
    up = CheckState(name="monitoring_mq", description="d", kind="amqp", timeout=1,
                    critical=False, up=True, last_run=1.8e9, last_success=1.8e9)  # fmt: skip
    real = readiness_body([down, up])
    assert real["status"] == sample["status"] == "fail"
    for name, (entry,) in real["checks"].items():
        (shown,) = sample["checks"][name]
        assert set(entry) == set(shown)
        assert {k: entry[k] for k in ("componentType", "status", "critical")} == {
            k: shown[k] for k in ("componentType", "status", "critical")
        }


async def test_check_config_sample_is_verbatim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page shows `--check-config` output: it must be exactly what users get."""
    monkeypatch.delenv("PG_PASSWORD", raising=False)
    toml = next(block for block in blocks("toml") if "hots" in block)
    (tmp_path / "broken.toml").write_text(toml)
    sample = next(block for block in blocks("text") if "--check-config" in block)
    command, expected = sample.split("\n", 1)
    args = command.split()[4:]  # after "$ python -m aiohttp_prometheus_monitoring"
    code, output = await run_cli(*args, cwd=tmp_path)
    assert code == 1
    assert output == expected


def test_yaml_samples_parse() -> None:
    """Probe and scrape configs copied from the page must at least be valid YAML."""
    yaml: Any = pytest.importorskip("yaml")  # PyYAML: not a dependency of ours
    pod, scrape = (yaml.safe_load(block) for block in blocks("yaml"))
    assert pod["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert scrape["scrape_configs"][0]["authorization"]
