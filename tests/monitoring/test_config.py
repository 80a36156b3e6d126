"""Validation of the MONITORING dict: every problem reported at once, each message pinned."""

from __future__ import annotations

import copy
import sys
from typing import Any

import pytest
from aiohttp import web

from aiohttp_prometheus_monitoring import MonitoringError, WrongConfiguration, setup_monitoring
from aiohttp_prometheus_monitoring.config import load_config
from aiohttp_prometheus_monitoring.metrics.amqp import AmqpMetric
from aiohttp_prometheus_monitoring.metrics.base import BaseMetric
from aiohttp_prometheus_monitoring.metrics.http import HttpMetric
from aiohttp_prometheus_monitoring.metrics.mysql import MySQLMetric
from aiohttp_prometheus_monitoring.metrics.postgres import PostgresMetric
from aiohttp_prometheus_monitoring.metrics.redis import RedisMetric
from tests.monitoring.conftest import M, entry

SECRET = "s3cr3t-Pa55word"
REDIS_1 = r"metrics\[1\] 'monitoring_redis': "


def talk_monitoring() -> dict[str, Any]:
    """The talk's MONITORING dict, as printed on its slide."""
    return {
        "route_ping": "/ping",
        "route_metrics": "/metrics",
        "metrics": [
            {
                "name": "monitoring_http",
                "description": "Check HTTP status",
                "module": "aiohttp_prometheus_monitoring.metrics.http.HttpMetric",
                "sleep_time": 300,
                "params": {"url": "http://localhost/my_ping/", "timeout": 1, "verify_ssl": True},
            },
            {
                "name": "monitoring_redis",
                "description": "Check redis connection",
                "module": "aiohttp_prometheus_monitoring.metrics.redis.RedisMetric",
                "sleep_time": 60,
                "params": {"host": "localhost", "port": "6379"},
            },
            {
                "name": "monitoring_mq",
                "description": "Check MQ connection",
                "module": "aiohttp_prometheus_monitoring.metrics.amqp.AmqpMetric",
                "sleep_time": 60,
                "params": {
                    "host": "localhost",
                    "port": "5672",
                    "user": "root",
                    "password": "123",
                    "vhost": "myvhost",
                },
            },
            {
                "name": "monitoring_postgres",
                "description": "Check postgres connection",
                "module": "aiohttp_prometheus_monitoring.metrics.postgres.PostgresMetric",
                "sleep_time": 60,
                "params": {
                    "database": "core",
                    "user": "core",
                    "password": "core",
                    "host": "localhost",
                    "port": 5433,
                },
            },
        ],
    }


def with_entry(index: int, **changes: Any) -> dict[str, Any]:
    """The talk's config with entry ``index`` changed (a value of None removes the key)."""
    config = talk_monitoring()
    for key, value in changes.items():
        if value is None:
            del config["metrics"][index][key]
        else:
            config["metrics"][index][key] = value
    return config


def test_talk_config_is_valid_as_printed() -> None:
    """The talk's slide is the configuration format: it must load unchanged."""
    config = load_config(talk_monitoring())
    assert [c.name for c in config.metrics] == [
        "monitoring_http", "monitoring_redis", "monitoring_mq", "monitoring_postgres",
    ]  # fmt: skip
    assert [c.kind for c in config.metrics] == ["http", "redis", "amqp", "postgres"]
    assert config.route_ping == "/ping"
    assert config.include_default_registry is True


def test_default_timeout_is_below_sleep_time_and_at_most_ten_seconds() -> None:
    """A check without a timeout must still end before its next run and never hang long."""
    config = load_config(
        {"metrics": [entry("a", "tcp.TcpMetric", {"host": "h", "port": 1}, sleep_time=60),
                     entry("b", "tcp.TcpMetric", {"host": "h", "port": 1}, sleep_time=1),
                     entry("c", "tcp.TcpMetric", {"host": "h", "port": 1}, timeout=3)]}
    )  # fmt: skip
    assert [c.timeout for c in config.metrics] == [10.0, 0.8, 3.0]


def test_routes_default_to_ping_and_metrics() -> None:
    """The talk's sample without routes still serves /ping and /metrics."""
    config = load_config({"metrics": []})
    assert (config.route_ping, config.route_metrics) == ("/ping", "/metrics")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (with_entry(1, module=None), r"metrics\[1\] 'monitoring_redis': missing key 'module'"),
        (with_entry(0, name=None), r"metrics\[0\]: missing key 'name'"),
        (with_entry(1, sleeptime=5),
         REDIS_1 + r"unknown key 'sleeptime' \(did you mean 'sleep_time'\?\)"),
        ({**talk_monitoring(), "route_metric": "/m"},
         r"unknown key 'route_metric' \(did you mean 'route_metrics'\?\)"),
        (with_entry(1, sleep_time="60"),
         r"metrics\[1\] 'monitoring_redis': sleep_time: expected a number of seconds, got '60'"),
        (with_entry(1, sleep_time=True),
         r"metrics\[1\] 'monitoring_redis': sleep_time: expected a number of seconds, got True"),
        (with_entry(1, sleep_time=0), REDIS_1 + r"sleep_time: must be > 0, got 0"),
        (with_entry(1, timeout=-1), REDIS_1 + r"timeout: must be > 0, got -1"),
        (with_entry(1, description=5),
         r"metrics\[1\] 'monitoring_redis': description: expected a string, got int"),
        (with_entry(1, name=7), r"metrics\[1\]: name: expected a string, got int"),
        (with_entry(1, description=" "), REDIS_1 + r"description: must not be empty"),
        (with_entry(1, params=["localhost"]),
         REDIS_1 + r"params: expected a dict of keyword arguments, got list"),
        ({"metrics": {"name": "x"}}, r"metrics: expected a list of check entries, got dict"),
        ({"metrics": ["x"]}, r"metrics\[0\]: expected a dict, got str"),
        ({"route_ping": "ping"},
         r"route_ping: expected a path starting with '/' or None, got 'ping'"),
        ({"route_ping": "/m", "route_metrics": "/m"}, r"route_metrics: same path as route_ping"),
        ({"include_default_registry": "yes"},
         r"include_default_registry: expected True or False, got 'yes'"),
        (with_entry(1, name="monitoring_http"),
         r"metrics\[1\] 'monitoring_http': name: duplicate of metrics\[0\]"),
        (with_entry(1, name="monitoring-redis"),
         r"metrics\[1\] 'monitoring-redis': name: 'monitoring-redis' is not a valid Prometheus "
         r"metric name"),
        (with_entry(1, name="1redis"), r"'1redis' is not a valid Prometheus metric name"),
        (with_entry(1, name="monitoring_check_up"),
         r"metrics\[1\] 'monitoring_check_up': name: 'monitoring_check_up' clashes with a metric "
         r"family of this library"),
        (with_entry(1, name="monitoring_check_runs_total"), r"clashes with a metric family"),
        (with_entry(1, module="no_such_package.checks.Check"),
         r"metrics\[1\] 'monitoring_redis': module: cannot import 'no_such_package.checks': "
         r"No module named 'no_such_package'"),
        (with_entry(1, module=M + "redis.RediMetric"),
         r"module: 'aiohttp_prometheus_monitoring.metrics.redis' has no attribute 'RediMetric'"),
        (with_entry(1, module="RedisMetric"),
         r"module: 'RedisMetric' is not a dotted path to a class \(package.module.Class\)"),
        (with_entry(1, module="collections.OrderedDict"),
         r"module: 'collections.OrderedDict' is not a check class \(needs `async def check"),
        (with_entry(2, params={"hots": "localhost", "port": "5672"}),
         r"metrics\[2\] 'monitoring_mq': params: unexpected keyword 'hots' "
         r"\(did you mean 'host'\?\)"),
        (with_entry(0, params={"timeout": 1}),
         r"metrics\[0\] 'monitoring_http': params: missing required keyword 'url'"),
        (with_entry(0, params={"url": 5}), r"metrics\[0\] 'monitoring_http': params: 'url' expects "
         r"str, got int 5"),
        (with_entry(0, params={"url": "http://h/", "verify_ssl": "no"}),
         r"params: 'verify_ssl' expects bool, got str 'no'"),
        (with_entry(1, params={"host": "localhost", "port": "six"}),
         r"metrics\[1\] 'monitoring_redis': params: port: expected a TCP port 1-65535, got 'six'"),
        (with_entry(0, params={"url": "localhost/ping"}),
         r"params: url: expected an http:// or https:// URL, got 'localhost/ping'"),
    ],
)  # fmt: skip
def test_each_problem_has_a_message_naming_its_entry(config: dict[str, Any], message: str) -> None:
    """A user fixes a config from the message alone: where, what, what was given, the fix."""
    with pytest.raises(WrongConfiguration, match=message):
        load_config(config)


def test_every_problem_is_listed_at_once() -> None:
    """Fixing problems one run at a time is slow: all of them come in one error."""
    config = talk_monitoring()
    config["metrics"][0]["sleep_time"] = 0
    config["metrics"][1]["name"] = "bad name"
    config["metrics"][2]["params"]["hots"] = config["metrics"][2]["params"].pop("host")
    del config["metrics"][3]["description"]
    with pytest.raises(WrongConfiguration) as caught:
        load_config(config)
    assert len(caught.value.problems) == 4
    assert str(caught.value).startswith("invalid MONITORING configuration (4 problems):")
    assert [p.split(":")[0] for p in caught.value.problems] == [
        "metrics[0] 'monitoring_http'", "metrics[1] 'bad name'", "metrics[2] 'monitoring_mq'",
        "metrics[3] 'monitoring_postgres'",
    ]  # fmt: skip


def test_missing_extra_is_reported_with_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A check whose driver is not installed names the pip extra that brings it."""
    monkeypatch.setitem(sys.modules, "asyncpg", None)
    monkeypatch.delitem(sys.modules, M + "postgres", raising=False)
    with pytest.raises(
        WrongConfiguration,
        match=r"metrics\[3\] 'monitoring_postgres': module: cannot import "
        r"'aiohttp_prometheus_monitoring.metrics.postgres': "
        r".*pip install 'aiohttp-booster\[postgres\]'",
    ):
        load_config(talk_monitoring())


def test_wrong_configuration_is_a_value_error_under_the_package_root() -> None:
    """Callers catch ValueError for bad input, or our root error for anything of ours."""
    assert issubclass(WrongConfiguration, ValueError)
    assert issubclass(WrongConfiguration, MonitoringError)


def test_the_callers_dict_is_never_changed() -> None:
    """Settings modules are shared: validation must not pop, default or coerce in place."""
    good, bad = talk_monitoring(), with_entry(1, sleep_time=0)
    good_copy, bad_copy = copy.deepcopy(good), copy.deepcopy(bad)
    load_config(good)
    with pytest.raises(WrongConfiguration):
        load_config(bad)
    assert (good, bad) == (good_copy, bad_copy)


def test_params_are_kept_read_only() -> None:
    """The loaded config is frozen: nothing downstream can change a check's params."""
    config = load_config(talk_monitoring())
    with pytest.raises(TypeError):
        config.metrics[1].params["port"] = 1  # type: ignore[index]


@pytest.mark.parametrize(
    "params",
    [
        {"host": "localhost", "port": "5672", "password": 12345, "user": SECRET},
        {"url": f"amqp://guest:{SECRET}@localhost:5672/", "host": "h"},
        {"url": f"http://guest:{SECRET}@localhost:5672/"},
    ],
)
def test_errors_never_show_a_password(params: dict[str, Any]) -> None:
    """Error messages end up in logs and tickets: a password must never be in them."""
    if "user" in params:  # a secret given as a password of the wrong type
        params = {**params, "user": "guest", "password": SECRET + "x"}
        params["password"] = 12345
    config = with_entry(2, params=params)
    with pytest.raises(WrongConfiguration) as caught:
        load_config(config)
    assert SECRET not in str(caught.value)
    assert "12345" not in str(caught.value)


async def test_setting_up_twice_is_refused() -> None:
    """Two schedulers on one app would double every check and collide on routes."""
    app = web.Application()
    await setup_monitoring({"metrics": []}, app)
    with pytest.raises(MonitoringError, match=r"already called for this app"):
        await setup_monitoring({"metrics": []}, app)


@pytest.mark.parametrize(
    "check",
    [
        RedisMetric(host="h", password=SECRET),
        RedisMetric(url=f"redis://:{SECRET}@h:6379/0"),
        AmqpMetric(host="h", user="u", password=SECRET),
        AmqpMetric(url=f"amqp://u:{SECRET}@h:5672/v"),
        PostgresMetric(database="d", user="u", password=SECRET, host="h"),
        PostgresMetric(dsn=f"postgresql://u:{SECRET}@h/d"),
        MySQLMetric(dsn=f"mysql://u:{SECRET}@h/d"),
        MySQLMetric(user="u", password=SECRET, host="h"),
        HttpMetric(url=f"http://u:{SECRET}@h/", headers={"Authorization": f"Bearer {SECRET}"}),
        BaseMetric(api_token=SECRET, dsn=f"postgresql://u:{SECRET}@h/d"),
    ],
    ids=repr,
)
def test_reprs_never_show_a_password(check: BaseMetric) -> None:
    """Reprs land in debuggers, logs and tracebacks: secrets are masked."""
    assert SECRET not in repr(check)
    assert "***" in repr(check) or "password" not in repr(check)


def test_loaded_config_repr_hides_params() -> None:
    """A config printed while debugging must not show the passwords in its params."""
    config = load_config(with_entry(2, params={"host": "h", "password": SECRET}))
    assert SECRET not in repr(config)


def test_env_params_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Exporter configs live in files: passwords must come from the environment instead."""
    monkeypatch.setenv("TEST_PG_PASSWORD", SECRET)
    params = {"host": "db", "user": "core", "database": "core", "password_env": "TEST_PG_PASSWORD"}
    raw = {"metrics": [entry("monitoring_postgres", "postgres.PostgresMetric", params)]}
    check = load_config(raw).metrics[0]
    assert check.params["password"] == SECRET
    assert "password_env" not in check.params
    assert SECRET in check.secrets
    assert raw["metrics"][0]["params"] == params  # the caller's dict is left alone


def test_env_param_problems_name_entry_and_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing variable must be named with its entry, and a value never shown."""
    monkeypatch.delenv("TEST_UNSET_VARIABLE", raising=False)
    monkeypatch.setenv("TEST_SET_VARIABLE", SECRET)
    raw = {"metrics": [
        entry("monitoring_postgres", "postgres.PostgresMetric",
              {"password_env": "TEST_UNSET_VARIABLE"}),
        entry("monitoring_pg2", "postgres.PostgresMetric",
              {"password": "x", "password_env": "TEST_SET_VARIABLE"}),
    ]}  # fmt: skip
    with pytest.raises(WrongConfiguration) as caught:
        load_config(raw)
    assert caught.value.problems == (
        "metrics[0] 'monitoring_postgres': params: password_env: environment variable "
        "'TEST_UNSET_VARIABLE' is not set",
        "metrics[1] 'monitoring_pg2': params: give either 'password' or 'password_env', not both",
    )
    assert SECRET not in str(caught.value)


def test_readiness_and_request_metrics_keys_are_validated() -> None:
    """The new keys get the same every-problem-at-once treatment as the talk's."""
    raw = {
        "route_ready": "/metrics",
        "request_metrics": "yes",
        "request_metrics_buckets": [1, 0.5],
        "metrics": [entry("monitoring_x", "tests.monitoring.fakes.AlwaysUp", {}, critical=1)],
    }
    with pytest.raises(WrongConfiguration) as caught:
        load_config(raw)
    assert caught.value.problems == (
        "route_ready: same path as another monitoring route ('/metrics')",
        "request_metrics: expected True or False, got 'yes'",
        "request_metrics_buckets: expected a non-empty list of increasing numbers of seconds "
        "> 0 and at most 31622400 (366 days), got [1, 0.5]",
        "metrics[0] 'monitoring_x': critical: expected True or False, got 1",
    )
    config = load_config({"route_ready": "/ready", "request_metrics": True, "metrics": [
        entry("monitoring_x", "tests.monitoring.fakes.AlwaysUp", {}, critical=False),
    ]})  # fmt: skip
    assert config.route_ready == "/ready"
    assert config.request_metrics is not None
    assert config.request_metrics.buckets[0] == 0.005
    assert config.metrics[0].critical is False
    assert load_config({}).route_ready is None
    assert load_config({}).request_metrics is None
