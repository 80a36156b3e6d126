"""aiohttp-prometheus-monitoring 0.1.5, the 2018 package this one replaces, keeps working.

Its README's samples and its example program (kept verbatim in
``samples_2018/aiohttp_prometheus_monitoring/``) run as scripts against the real services on
loopback, with hosts, ports and credentials substituted in copies. Its checks run unchanged.
Each of its names works, with a ``DeprecationWarning`` naming the new spelling, or raises an
error saying what replaces it. ``docs/migration.md`` tells the user the same.
"""

from __future__ import annotations

import importlib
import logging
import re
import runpy
import shutil
import subprocess
import warnings
from importlib.metadata import metadata
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import prometheus_client
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpClient

from aiohttp_prometheus_monitoring import (
    MonitoringError,
    WrongConfiguration,
    _legacy,
    get_monitoring,
    setup_monitoring,
)
from aiohttp_prometheus_monitoring import web as monitoring_web
from aiohttp_prometheus_monitoring.config import load_config
from aiohttp_prometheus_monitoring.metrics.base import BaseMetric
from aiohttp_prometheus_monitoring.testing import run_checks
from tests.compat import SAMPLES_PYTHON, samples_env
from tests.compat.monitoring_checks_2018 import AnswerMetric
from tests.conftest import MYSQL_URL, _probe
from tests.monitoring.conftest import (
    Ran,
    _probe_mysql,
    gauge,
    run_until_gauges_shown,
    samples,
)
from tests.monitoring.test_web import free_port

HERE = Path(__file__).resolve().parent
SAMPLES = HERE / "samples_2018" / "aiohttp_prometheus_monitoring"
PKG = "aiohttp_prometheus_monitoring"
CHECKS = "tests.compat.monitoring_checks_2018."
OLD = re.escape("(aiohttp-prometheus-monitoring 0.1.5) was removed: ")
# checks of today, which get no collector: keeping BaseMetric's constructor, and with
# keywords of their own
TODAY = [
    {"name": "monitoring_up", "description": "Always up", "sleep_time": 60,
     "module": "tests.monitoring.fakes.AlwaysUp"},
    {"name": "monitoring_tcp", "description": "Check a port", "sleep_time": 60,
     "module": f"{PKG}.metrics.tcp.TcpMetric", "params": {"host": "127.0.0.1", "port": 1}},
]  # fmt: skip


@pytest.fixture(scope="session")
def mysql_url() -> str:
    """URL of a MySQL/MariaDB server that accepts our login (the README checks one)."""
    return _probe("MariaDB", MYSQL_URL, _probe_mysql)


# Every name 0.1.5 defined for its users, by module (the names its modules only imported for
# their own use, asyncio or aioredis say, are not its API; docs/migration.md says so).
NAMES_0_1_5 = {
    PKG: ["setup_monitoring", "WrongConfiguration", "import_by_path", "init_metrics",
          "init_monitoring_routes", "stop_monitoring_tasks", "push_metrics",
          "periodic_push_metrics", "coro", "periodic_coro", "logger", "PeriodicTask", "ping",
          "Gauge", "push_to_gateway", "REGISTRY", "server_stats"],
    f"{PKG}.exceptions": ["MonitoringException", "WrongConfiguration"],
    f"{PKG}.utils": ["PeriodicTask"],
    f"{PKG}.views": ["ping"],
    f"{PKG}.metrics": [],
    f"{PKG}.metrics.base": ["BaseMetric"],
    f"{PKG}.metrics.http": ["HttpMetric"],
    f"{PKG}.metrics.redis": ["RedisMetric"],
    f"{PKG}.metrics.amqp": ["AmqpMetric"],
    f"{PKG}.metrics.postgres": ["PostgresMetric"],
    f"{PKG}.metrics.mysql": ["MySQLMetric"],
}  # fmt: skip

# (module, name, what it is now, words of the new spelling its DeprecationWarning names)
RENAMED = [
    (f"{PKG}.exceptions", "MonitoringException", MonitoringError, f"use {PKG}.MonitoringError"),
    (f"{PKG}.exceptions", "WrongConfiguration", WrongConfiguration,
     f"use {PKG}.WrongConfiguration"),
    (PKG, "import_by_path", _legacy.import_by_path, "use pkgutil.resolve_name()"),
    (f"{PKG}.utils", "import_by_path", _legacy.import_by_path, "use pkgutil.resolve_name()"),
    (PKG, "stop_monitoring_tasks", _legacy.stop_monitoring_tasks,
     "the checks stop when the app is cleaned up"),
    (PKG, "ping", monitoring_web.ping, "use MONITORING['route_ping']"),
    (f"{PKG}.views", "ping", monitoring_web.ping, "use MONITORING['route_ping']"),
    (PKG, "logger", logging.getLogger(PKG), f"use logging.getLogger('{PKG}')"),
    (PKG, "Gauge", prometheus_client.Gauge, "use prometheus_client.Gauge"),
    (PKG, "push_to_gateway", prometheus_client.push_to_gateway,
     "use prometheus_client.push_to_gateway"),
    (PKG, "REGISTRY", prometheus_client.REGISTRY, "use prometheus_client.REGISTRY"),
]  # fmt: skip

PUSH = "MONITORING['pushgateway'] = {'url': url, 'job': job_name, 'grouping_key': grouping_key"
# (module, name, words of what replaces it, which the error names)
REMOVED = [
    (PKG, "init_metrics", "setup_monitoring(MONITORING, app) builds the checks"),
    (PKG, "init_monitoring_routes", "setup_monitoring(MONITORING, app) adds the routes"),
    (PKG, "push_metrics", PUSH + "}"),
    (PKG, "coro", PUSH + "}"),
    (PKG, "periodic_push_metrics", PUSH + ", 'interval': sleep_time}"),
    (PKG, "periodic_coro", PUSH + ", 'interval': sleep_time}"),
    (PKG, "PeriodicTask", "runs each check every 'sleep_time' seconds under its 'timeout'"),
    (PKG, "server_stats", "serves the app's registry at MONITORING['route_metrics']"),
    (f"{PKG}.utils", "PeriodicTask", "runs each check every 'sleep_time' seconds"),
    (f"{PKG}.utils", "push_metrics", PUSH + "}"),
    (f"{PKG}.utils", "periodic_push_metrics", PUSH + ", 'interval': sleep_time}"),
]

# 0.1.5's checks had static helpers of their check(): (module, class, attribute)
HELPERS = [
    ("http", "HttpMetric", "http_get_status"),
    ("redis", "RedisMetric", "set_redis_value"),
    ("amqp", "AmqpMetric", "connect_amqp"),
    ("postgres", "PostgresMetric", "select_one"),
    ("mysql", "MySQLMetric", "select_one"),
]


def from_import(module: str, name: str) -> Any:
    """``from module import name``, as a user's code writes it."""
    namespace: dict[str, Any] = {}
    exec(f"from {module} import {name} as found", namespace)  # noqa: S102 - our own names
    return namespace["found"]


@pytest.mark.parametrize(("module", "name", "now", "spelling"), RENAMED)
@pytest.mark.parametrize("how", ["from-import", "attribute"])
def test_a_0_1_5_name_that_kept_its_meaning_works_and_names_its_new_spelling(
    module: str, name: str, now: Any, spelling: str, how: str
) -> None:
    """Old code keeps running; the warning tells its author what to write instead."""
    pattern = re.escape(f"{module}.{name} is deprecated: ") + ".*" + re.escape(spelling)
    with pytest.deprecated_call(match=pattern):
        if how == "from-import":
            found = from_import(module, name)
        else:
            found = getattr(importlib.import_module(module), name)
    assert found is now


@pytest.mark.parametrize(("module", "name", "instead"), REMOVED)
@pytest.mark.parametrize("how", ["from-import", "attribute"])
def test_a_0_1_5_name_that_lost_its_meaning_fails_naming_its_replacement(
    module: str, name: str, instead: str, how: str
) -> None:
    """An ImportError at the import line, saying what to use instead (an AttributeError
    would become a bare "cannot import name"); it is one of the package's errors too."""
    pattern = re.escape(f"{module}.{name} ") + OLD + ".*" + re.escape(instead)
    imported = importlib.import_module(module)
    read = (
        (lambda: from_import(module, name))
        if how == "from-import"
        else (lambda: getattr(imported, name))
    )
    with pytest.raises(ImportError, match=pattern) as caught:
        read()
    assert isinstance(caught.value, MonitoringError)
    assert caught.value.name == name


@pytest.mark.parametrize(("module", "cls", "attribute"), HELPERS)
def test_a_0_1_5_helper_of_a_builtin_check_fails_naming_check(
    module: str, cls: str, attribute: str
) -> None:
    """Reading it says to await the check; ``hasattr`` still answers False."""
    check_class = getattr(importlib.import_module(f"{PKG}.metrics.{module}"), cls)
    pattern = re.escape(f"{cls}.{attribute} ") + OLD + re.escape(f"use await {cls}(")
    with pytest.raises(AttributeError, match=pattern):
        getattr(check_class, attribute)
    assert not hasattr(check_class, attribute)


@pytest.mark.parametrize("module", list(NAMES_0_1_5))
def test_every_0_1_5_name_resolves_or_says_what_replaces_it(module: str) -> None:
    """No name of 0.1.5 ends in a bare AttributeError or ImportError."""
    imported = importlib.import_module(module)
    for name in NAMES_0_1_5[module]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                getattr(imported, name)
            except ImportError as exc:
                removed: ImportError | None = exc
            else:
                removed = None
        if removed is not None:
            assert "was removed: " in str(removed), (module, name)
            continue
        for warning in caught:
            assert warning.category is DeprecationWarning, (module, name)
            assert f"{module}.{name} is deprecated: " in str(warning.message)


async def test_a_0_1_5_config_error_is_caught_as_monitoring_exception() -> None:
    """``except MonitoringException`` (0.1.5's root error) still catches a bad config."""
    with pytest.deprecated_call(match="use aiohttp_prometheus_monitoring.MonitoringError"):
        monitoring_exception = from_import(f"{PKG}.exceptions", "MonitoringException")
    redis = f"{PKG}.metrics.redis.RedisMetric"
    config = {"metrics": [{"name": "monitoring_redis", "description": "Check redis",
                           "module": redis, "params": {}}]}  # fmt: skip
    with pytest.raises(monitoring_exception, match="missing key 'sleep_time'"):
        await setup_monitoring(config, web.Application())


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("RedisMetric", "RedisMetric doesn't look like a module path"),
        ("no_such_module_2018.Thing", "Error importing module no_such_module_2018: No module"),
        (f"{PKG}.metrics.redis.Nope", f'Module "{PKG}.metrics.redis" has no "Nope" object'),
    ],
)
def test_import_by_path_works_as_in_0_1_5(path: str, message: str) -> None:
    """It imports what a dotted path names, and raises WrongConfiguration with 0.1.5's
    messages otherwise."""
    with pytest.deprecated_call(match="use pkgutil.resolve_name"):
        import_by_path = from_import(PKG, "import_by_path")
    redis = importlib.import_module(f"{PKG}.metrics.redis")
    assert import_by_path(f"{PKG}.metrics.redis.RedisMetric") is redis.RedisMetric
    with pytest.raises(WrongConfiguration, match=re.escape(message)):
        import_by_path(path)


async def test_stop_monitoring_tasks_stops_the_checks(aiohttp_client: AiohttpClient) -> None:
    """0.1.5's on_shutdown handler, called by hand, stops the checks; the app's own cleanup
    then has nothing left to stop."""
    app = web.Application()
    await setup_monitoring({"metrics": [TODAY[0]]}, app)
    await aiohttp_client(app)
    assert get_monitoring(app).scheduler.running
    with pytest.deprecated_call(match="the checks stop when the app is cleaned up"):
        stop_monitoring_tasks = from_import(PKG, "stop_monitoring_tasks")
    await stop_monitoring_tasks(app)
    assert not get_monitoring(app).scheduler.running


async def test_the_0_1_5_ping_view_answers_pong(aiohttp_client: AiohttpClient) -> None:
    """An app that routed 0.1.5's view itself still gets ``pong``."""
    with pytest.deprecated_call(match=re.escape("views.ping is deprecated: use MONITORING[")):
        ping = from_import(f"{PKG}.views", "ping")
    app = web.Application()
    app.router.add_get("/alive", ping)
    client = await aiohttp_client(app)
    response = await client.get("/alive")
    assert (response.status, await response.text()) == (200, "pong")


# A check of 0.1.5's form


def entry(name: str, check: str, **params: Any) -> dict[str, Any]:
    """A MONITORING entry as 0.1.5's README writes one, for a check of ours in 2018 form."""
    return {"name": name, "description": f"Check {name}", "module": CHECKS + check,
            "sleep_time": 60, "params": params}  # fmt: skip


LEGACY_FORM = re.escape("a check built with `collector` is the form of aiohttp-prometheus-")
NEW_FORM = re.escape("Use `def __init__(self, **params)` (or its params by name) without")


async def monitored(aiohttp_client: AiohttpClient, *entries: dict[str, Any]) -> tuple[Any, str]:
    """Set up an app with ``entries`` (each a 0.1.5-form check, each warned of), serve it,
    run its checks once; its monitoring and its /metrics text."""
    app = web.Application()
    with pytest.deprecated_call(match=LEGACY_FORM + ".*" + NEW_FORM) as caught:
        await setup_monitoring({"metrics": list(entries)}, app)
    assert len(caught) == len(entries)
    assert {warning.filename for warning in caught} == {__file__}  # the set-up line, ours
    client = await aiohttp_client(app)
    await run_checks(app)
    return get_monitoring(app), await (await client.get("/metrics")).text()


@pytest.mark.parametrize(
    ("answer", "value", "result"),
    [(True, 1.0, "success"), (False, 0.0, "failure"), ("raise", 0.0, "error")],
)
async def test_a_0_1_5_check_runs_unchanged(
    aiohttp_client: AiohttpClient, answer: object, value: float, result: str
) -> None:
    """Built with ``collector``, registered by its dotted path: its bool is reported as
    every check's is. An error 0.1.5 did not expect reads 0, where 0.1.5 read -1
    (docs/migration.md: 0 is what ``== 0`` alerts and availability averages need); the
    runs counter tells it apart."""
    _, text = await monitored(
        aiohttp_client, entry("monitoring_answer", "AnswerMetric", answer=answer)
    )
    assert (
        "# HELP monitoring_answer Check monitoring_answer\n# TYPE monitoring_answer gauge\n"
        f"monitoring_answer {value}\n"
    ) in text
    found = samples(text)
    assert found[("monitoring_check_up", (("check", "monitoring_answer"), ("kind", "custom")))] == (
        value
    )
    runs = {
        outcome: found[("monitoring_check_runs_total", (("check", "monitoring_answer"),
                                                        ("result", outcome)))]
        for outcome in ("success", "failure", "timeout", "error")
    }  # fmt: skip
    assert runs[result] >= 1.0
    assert sum(runs.values()) == runs[result]
    assert -1.0 not in found.values()


async def test_a_0_1_5_check_gets_the_gauge_0_1_5_gave_it(aiohttp_client: AiohttpClient) -> None:
    """``self.collector`` is a prometheus_client Gauge named and described as the entry, as
    0.1.5 made it, but registered nowhere: not in the default registry, where 0.1.5 put it,
    since the app's /metrics shows the check's gauge itself."""
    monitoring, _ = await monitored(
        aiohttp_client, entry("monitoring_answer", "AnswerMetric", answer=True)
    )
    (config,) = monitoring.config.metrics
    collector = config.check.collector
    assert isinstance(collector, prometheus_client.Gauge)
    (family,) = collector.describe()
    assert (family.name, family.documentation) == ("monitoring_answer", "Check monitoring_answer")
    assert prometheus_client.REGISTRY.get_sample_value("monitoring_answer") is None
    assert getattr(config.create_check(), "collector", None) is collector


async def test_0_1_5_checks_of_every_form_get_their_collector(
    aiohttp_client: AiohttpClient,
) -> None:
    """A check passing ``*args, **kwargs`` on (the form of 0.1.5's own checks) gets it
    through ``BaseMetric.__init__``; one whose ``check()`` reads it finds it there."""
    monitoring, text = await monitored(
        aiohttp_client,
        entry("monitoring_forwarding", "ForwardingMetric", host="localhost", port="6379"),
        entry("monitoring_reader", "ReadsCollectorMetric", expected_name="monitoring_reader"),
    )
    forwarding = monitoring.config.metrics[0].check
    assert isinstance(forwarding, BaseMetric)
    assert isinstance(forwarding.collector, prometheus_client.Gauge)
    assert gauge(text, "monitoring_forwarding") == 1.0
    assert gauge(text, "monitoring_reader") == 1.0


def test_a_check_of_today_gets_no_collector() -> None:
    """Only the 0.1.5 form is given a gauge: a check keeping BaseMetric's constructor, or
    with keywords of its own, is built with its params alone, and not warned about."""
    config = load_config({"metrics": TODAY})
    assert [c.collector for c in config.metrics] == [None, None]
    assert [getattr(c.check, "collector", None) for c in config.metrics] == [None, None]


async def test_run_check_sets_the_collector_as_0_1_5_did(caplog: pytest.LogCaptureFixture) -> None:
    """0.1.5's ``run_check()`` still runs a check once and sets its collector, 1 or 0; an
    unexpected error is logged by type (its message may hold a password) and reads 0."""
    collector = prometheus_client.Gauge("monitoring_run", "Run by hand", registry=None)
    for answer, up in ((True, True), (False, False), ("raise", False)):
        metric = AnswerMetric(collector, answer=answer)
        with pytest.deprecated_call(match=re.escape("BaseMetric.run_check() is deprecated")):
            assert await metric.run_check() is up
        ((sample, *_),) = (family.samples for family in collector.collect())
        assert sample.value == float(up)
    assert "AnswerMetric: check() raised RuntimeError" in caplog.text


# The README's samples and the example program, verbatim


def params(**values: object) -> str:
    """The lines of a ``params`` dict as the 2018 samples lay them out."""
    return "\n".join(f"                {key!r}: {value!r}," for key, value in values.items())


def sample_copy(sample: str, into: Path, changes: dict[str, str] | None = None) -> Path:
    """Copy a sample into ``into`` under its ``.py`` name (its mode kept), with ``changes``."""
    target = into / Path(sample).name.removesuffix(".txt")
    shutil.copy2(SAMPLES / sample, target)
    if changes:
        text = substituted(target.read_text(encoding="utf-8"), changes)
        target.write_text(text, encoding="utf-8")
    return target


def substituted(text: str, changes: dict[str, str]) -> str:
    """``text`` with each key replaced by its value; each must be there exactly once, so
    that the sample is still the one these substitutions were written for."""
    for old, new in changes.items():
        assert text.count(old) == 1, f"{old!r} is not in the sample exactly once"
        text = text.replace(old, new)
    return text


async def run_program(
    args: list[str], cwd: Path, port: int, gauges: dict[str, float], **env: str
) -> Ran:
    """Run ``python ARGS`` in ``cwd`` until its /metrics on ``port`` shows ``gauges``, ask
    it for /ping and /ready, stop it with SIGINT. DeprecationWarnings are shown, not errors;
    ``env`` adds to the environment."""
    env = samples_env(PYTHONWARNINGS="default::DeprecationWarning", **env)
    return await run_until_gauges_shown(
        [SAMPLES_PYTHON, *args], cwd=cwd, env=env, port=port, gauges=gauges,
        paths=("/ping", "/ready"), timeout=30,
    )  # fmt: skip


def assert_ended_well(ran: Ran) -> None:
    """Exit status 0, no traceback, and every DeprecationWarning of ours names the new
    spelling."""
    assert ran.returncode == 0, ran.stderr
    assert "Traceback" not in ran.stderr, ran.stderr
    for line in ran.stderr.splitlines():
        ours = PKG in line or "aiohttp-prometheus-monitoring" in line
        if "DeprecationWarning" in line and ours:
            assert re.search(r"\buse\b", line, re.IGNORECASE), line


async def test_the_2018_example_program_runs_unchanged(tmp_path: Path, redis_url: str) -> None:
    """0.1.5's ``example/main.py`` with its ``settings.py``: /metrics shows the Redis gauge up, and
    prometheus_client's default registry as 0.1.5's /metrics did. Its settings name no
    ``route_ping``: 0.1.5 answered 404 there, we answer ``pong`` (``route_ping`` defaults to
    '/ping'). It had no readiness route, nor have we unless asked."""
    redis = urlsplit(redis_url)
    sample_copy("example/main.py.txt", tmp_path)
    sample_copy("example/settings.py.txt", tmp_path, {
        params(host="localhost", port="6379"): params(host=redis.hostname,
                                                      port=str(redis.port or 6379)),
    })  # fmt: skip
    port = free_port()
    ran = await run_program(
        ["main.py", "--host", "127.0.0.1", "--port", str(port)], tmp_path, port,
        {"monitoring_redis": 1.0},
    )  # fmt: skip
    assert (
        "# HELP monitoring_redis Check redis connection\n# TYPE monitoring_redis gauge\n"
        "monitoring_redis 1.0\n"
    ) in ran.metrics
    assert "python_info{" in ran.metrics
    assert ran.answers == {"/ping": (200, "pong"), "/ready": (404, "404: Not Found")}
    assert_ended_well(ran)


README_GAUGES = {
    "monitoring_http": "Check HTTP status",
    "monitoring_redis": "Check redis connection",
    "monitoring_mq": "Check MQ connection",
    "monitoring_postgres": "Check postgres connection",
    "monitoring_mysql": "Check mysql connection",
}


def readme_changes(
    port: int, redis_url: str, amqp_url: str, pg_dsn: str, mysql_url: str
) -> dict[str, str]:
    """What points the README's "Sample config" at this machine: the HTTP check at the app's
    own /ping, the others at the test services."""
    redis, amqp, pg, mysql = (urlsplit(url) for url in (redis_url, amqp_url, pg_dsn, mysql_url))
    return {
        params(url="http://localhost/my_ping/"): params(url=f"http://127.0.0.1:{port}/ping"),
        params(host="localhost", port="6379"): params(host=redis.hostname,
                                                      port=str(redis.port or 6379)),
        params(host="localhost", port="5672", user="root", password="123", vhost="myvhost"):
            params(host=amqp.hostname, port=str(amqp.port or 5672),
                   user=unquote(amqp.username or "guest"),
                   password=unquote(amqp.password or "guest"), vhost=unquote(amqp.path[1:]) or "/"),
        params(database="core", user="core", password="core", host="localhost", port=5433):
            params(database=pg.path[1:], user=pg.username, password=unquote(pg.password or ""),
                   host=pg.hostname, port=pg.port or 5432),
        params(database="core", user="core", password="core", host="localhost", port=3007):
            params(database=mysql.path[1:], user=mysql.username,
                   password=unquote(mysql.password or ""), host=mysql.hostname,
                   port=mysql.port or 3306),
    }  # fmt: skip


async def test_the_2018_readme_samples_run_unchanged(
    tmp_path: Path, redis_url: str, amqp_url: str, pg_dsn: str, mysql_url: str
) -> None:
    """The "Usage" sample serving the "Sample config": its five gauges come up, and, as the
    README says, "/ping endpoint will respond "pong", /metrics endpoint will have metrics in
    prometheus format"."""
    port = free_port()
    sample_copy("readme_usage.py.txt", tmp_path)
    changes = readme_changes(port, redis_url, amqp_url, pg_dsn, mysql_url)
    sample_copy("readme_config.py.txt", tmp_path, changes).rename(tmp_path / "settings.py")
    ran = await run_program(
        [str(HERE / "monitoring_2018_readme_app.py"), str(tmp_path), str(port)], tmp_path, port,
        dict.fromkeys(README_GAUGES, 1.0),
    )  # fmt: skip
    for name, description in README_GAUGES.items():
        assert f"# HELP {name} {description}\n# TYPE {name} gauge\n{name} 1.0\n" in ran.metrics
    assert ran.answers["/ping"] == (200, "pong")
    assert_ended_well(ran)


async def test_a_2018_app_with_a_check_of_its_own_runs_unchanged() -> None:
    """A 2018-style program (ours, 0.1.5's exceptions module and a check of 0.1.5's form):
    its gauge comes up, and the warnings it prints name what to write instead."""
    port = free_port()
    root = HERE.parent.parent
    ran = await run_program(
        [str(HERE / "monitoring_2018_custom_app.py"), str(port)], root, port,
        {"monitoring_answer": 1.0}, PYTHONPATH=str(root),
    )  # fmt: skip
    assert_ended_well(ran)
    assert (
        f"DeprecationWarning: {PKG}.exceptions.WrongConfiguration is deprecated: "
        f"use {PKG}.WrongConfiguration"
    ) in ran.stderr
    assert (
        "DeprecationWarning: tests.compat.monitoring_checks_2018.AnswerMetric: a check built "
        "with `collector` is the form of aiohttp-prometheus-monitoring 0.1.5"
    ) in ran.stderr


@pytest.mark.parametrize(
    "sample", ["readme_config.py.txt", "readme_usage.py.txt", "example/settings.py.txt"]
)
def test_each_2018_sample_runs_as_a_script(sample: str, tmp_path: Path) -> None:
    """Verbatim, with nothing substituted: each defines what it defines and exits quietly."""
    result = subprocess.run(
        [SAMPLES_PYTHON, str(sample_copy(sample, tmp_path))],
        capture_output=True, text=True, timeout=60, check=False, env=samples_env(),
    )  # fmt: skip
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_the_readme_config_loads_unchanged() -> None:
    """The "Sample config" as printed is a valid configuration (ports as strings included),
    and loading it leaves the dict as it was (0.1.5 wrote a gauge into each ``params``)."""
    config = runpy.run_path(str(SAMPLES / "readme_config.py.txt"))["MONITORING"]
    before = repr(config)
    loaded = load_config(config)
    assert [check.name for check in loaded.metrics] == list(README_GAUGES)
    assert [check.description for check in loaded.metrics] == list(README_GAUGES.values())
    assert repr(config) == before
    # the HTTP check of a loopback URL waits for its port before its first run
    assert loaded.metrics[0].wait_for_listen == ("localhost", 80)


def test_the_readme_install_line_names_extras_we_have() -> None:
    """The README's extras exist under the new distribution's name, aiohttp-booster."""
    line = (SAMPLES / "readme_install.sh.txt").read_text(encoding="utf-8").strip()
    match = re.fullmatch(r"pip install aiohttp_prometheus_monitoring\[([a-z,]+)\]", line)
    assert match is not None, line
    extras = set(metadata("aiohttp-booster").get_all("Provides-Extra") or [])
    assert set(match.group(1).split(",")) <= extras


# The table of docs/migration.md

MIGRATION = HERE.parent.parent / "docs" / "migration.md"


def table() -> dict[tuple[str, str], str]:
    """The monitoring section's table of 2018 names: (module, name) -> what it does now."""
    text = MIGRATION.read_text(encoding="utf-8")
    section = text.partition("\n## aiohttp_prometheus_monitoring\n")[2].partition("\n## ")[0]
    rows = re.findall(r"^\| `([^`]+)` \((package|`[^`]+`)\) \| (.+) \|$", section, re.MULTILINE)
    return {
        (PKG if where == "package" else f"{PKG}.{where.strip('`')}", name): now
        for name, where, now in rows
    }


def test_the_migration_guide_has_every_2018_name_in_its_table() -> None:
    """Each name of 0.1.5, each method and helper of its classes, has a row."""
    rows = table()
    names = {(module, name) for module, listed in NAMES_0_1_5.items() for name in listed}
    names |= {
        (f"{PKG}.metrics.base", f"BaseMetric.{member}")
        for member in ("collector", "exc", "check()", "run_check()")
    }
    names |= {(f"{PKG}.metrics.{module}", f"{cls}.{attribute}()")
              for module, cls, attribute in HELPERS}  # fmt: skip
    assert sorted(names - set(rows)) == []


def test_the_migration_table_says_what_the_code_does() -> None:
    """A row saying "ImportError" is a removed name, one saying "works, warns" a renamed one."""
    removed = {(module, name) for module, name, _ in REMOVED}
    renamed = {(module, name) for module, name, _, _ in RENAMED}
    for (module, name), now in table().items():
        if now.startswith("ImportError"):
            assert (module, name) in removed, (module, name)
        elif now.startswith("works, warns") and "." not in name:
            assert (module, name) in renamed, (module, name)
        elif (module, name) in removed | renamed:
            pytest.fail(f"{module}.{name}: the table says {now!r}")
