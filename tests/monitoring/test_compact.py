"""Compact check entries: ``{'name': ..., 'url': ...}``, the check chosen by the URL's scheme."""

from __future__ import annotations

from typing import Any

import pytest

from aiohttp_prometheus_monitoring import WrongConfiguration
from aiohttp_prometheus_monitoring.config import load_config
from aiohttp_prometheus_monitoring.metrics.amqp import AmqpMetric
from aiohttp_prometheus_monitoring.metrics.http import HttpMetric
from aiohttp_prometheus_monitoring.metrics.mysql import MySQLMetric
from aiohttp_prometheus_monitoring.metrics.postgres import PostgresMetric
from aiohttp_prometheus_monitoring.metrics.redis import RedisMetric
from aiohttp_prometheus_monitoring.metrics.tcp import TcpMetric


@pytest.mark.parametrize(
    ("url", "cls", "kind", "description"),
    [
        ("http://127.0.0.1:8080/hello", HttpMetric, "http", "Check http 127.0.0.1:8080"),
        ("https://example.org/", HttpMetric, "http", "Check http example.org"),
        ("redis://:s3cret@127.0.0.1:6379/0", RedisMetric, "redis", "Check redis 127.0.0.1:6379"),
        ("rediss://cache.internal", RedisMetric, "redis", "Check redis cache.internal"),
        ("amqp://guest:s3cret@mq:5672/", AmqpMetric, "amqp", "Check amqp mq:5672"),
        ("amqps://mq/", AmqpMetric, "amqp", "Check amqp mq"),
        ("postgres://u:s3cret@db/app", PostgresMetric, "postgres", "Check postgres db"),
        ("postgresql://db:5433/app", PostgresMetric, "postgres", "Check postgres db:5433"),
        ("mysql://u:s3cret@db:3306/app", MySQLMetric, "mysql", "Check mysql db:3306"),
        ("tcp://10.0.0.7:11211", TcpMetric, "tcp", "Check tcp 10.0.0.7:11211"),
    ],
)
def test_the_url_scheme_chooses_the_built_in_check(
    url: str, cls: type, kind: str, description: str
) -> None:
    """Two keys are enough for a check; its description never shows a password."""
    (check,) = load_config({"metrics": [{"name": "monitoring_x", "url": url}]}).metrics
    assert check.check_class is cls
    assert check.kind == kind
    assert check.description == description
    assert "s3cret" not in repr(check) + check.description
    assert check.sleep_time == 5.0
    assert check.timeout == 4.0
    assert isinstance(check.create_check(), cls)


def test_the_url_reaches_the_check_class() -> None:
    """The URL goes to the keyword the check class takes it with (url, dsn or host/port)."""
    redis, pg, tcp = load_config(
        {
            "metrics": [
                {"name": "r", "url": "redis://127.0.0.1:6379/1"},
                {"name": "p", "url": "postgresql://postgres@127.0.0.1:5432/test"},
                {"name": "t", "url": "tcp://127.0.0.1:11211"},
            ]
        }
    ).metrics
    assert dict(redis.params) == {"url": "redis://127.0.0.1:6379/1"}
    assert dict(pg.params) == {"dsn": "postgresql://postgres@127.0.0.1:5432/test"}
    assert dict(tcp.params) == {"host": "127.0.0.1", "port": 11211}


def test_compact_entries_keep_their_own_keys_and_params() -> None:
    """sleep_time, timeout, critical, description and extra params still apply."""
    (check,) = load_config(
        {
            "metrics": [
                {
                    "name": "monitoring_site",
                    "url": "https://example.org/health",
                    "description": "The public site",
                    "sleep_time": 30,
                    "timeout": 2,
                    "critical": False,
                    "params": {"verify_ssl": False, "expected_statuses": [200, 204]},
                }
            ]
        }
    ).metrics
    assert (check.description, check.sleep_time, check.timeout, check.critical) == (
        "The public site", 30.0, 2.0, False,
    )  # fmt: skip
    assert check.params["verify_ssl"] is False
    assert check.params["url"] == "https://example.org/health"


def test_the_verbose_form_is_unchanged() -> None:
    """The talk's entries, with module and every key, still load as before."""
    (check,) = load_config(
        {
            "metrics": [
                {
                    "name": "monitoring_redis",
                    "description": "Check redis connection",
                    "module": "aiohttp_prometheus_monitoring.metrics.redis.RedisMetric",
                    "sleep_time": 15,
                    "params": {"host": "localhost", "port": "6379"},
                }
            ]
        }
    ).metrics
    assert check.check_class is RedisMetric
    assert check.sleep_time == 15.0


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"url": "ftp://files.example.org/"},
            r"metrics\[0\] 'monitoring_x': url: unknown scheme 'ftp' in 'ftp://files.example.org/'"
            r"; expected one of http://, https://, redis://",
        ),
        (
            {"url": "redis://localhost", "module": "tests.monitoring.fakes.AlwaysUp"},
            r"metrics\[0\] 'monitoring_x': give either 'url' \(a built-in check chosen by the "
            r"URL's scheme\) or 'module' \(a check class of your own\), not both",
        ),
        ({"url": 6379}, r"metrics\[0\] 'monitoring_x': url: expected a URL string, got int"),
        ({"url": ""}, r"url: expected a URL string, got str ''"),
        ({"url": "tcp://db"}, r"url: expected tcp://host:port, got 'tcp://db' \(no port\)"),
        ({"url": "http:///hello"}, r"url: no host in 'http:///hello'"),
        ({"url": "redis://h:99999"}, r"url: cannot parse 'redis://h:99999'"),
        (
            {"url": "amqp://guest:s3cret@mq/", "params": {"host": "other"}},
            r"params: 'host' comes from 'url' here; give it in one place only",
        ),
        ({"url": "redis://h", "sleep_time": 0}, r"sleep_time: must be > 0, got 0"),
        ({"url": "redis://h", "params": {"dbb": 1}}, r"unexpected keyword 'dbb' \(did you mean"),
        ({"url": "redis://h", "tiemout": 1}, r"unknown key 'tiemout' \(did you mean 'timeout'"),
    ],
)
def test_compact_entry_problems_are_named(entry: dict[str, Any], message: str) -> None:
    """Each mistake in a compact entry reads as where, what, what was given and the fix."""
    with pytest.raises(WrongConfiguration, match=message) as caught:
        load_config({"metrics": [{"name": "monitoring_x", **entry}]})
    assert "s3cret" not in str(caught.value)
