"""The MONITORING dict of the talk, validated once into frozen dataclasses.

``load_config`` checks the whole dict before anything is built and raises
:class:`~aiohttp_prometheus_monitoring.WrongConfiguration` listing every problem. The
caller's dict is only read, never changed.
"""

from __future__ import annotations

import importlib
import inspect
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, cast

from aiohttp import web
from prometheus_client import Gauge

from _aiohttp_booster.redact import one_line, secrets_of, shown, type_name

from ._compact import expand_url
from ._legacy_checks import COLLECTOR, legacy_keywords
from ._params import (
    MAX_SECONDS,
    accepts,
    did_you_mean,
    encodable,
    number,
    param_problems,
    resolve_env,
    seconds,
)
from ._selfcheck import is_loopback, listen_target
from .auth import AuthConfig, load_auth
from .errors import WrongConfiguration
from .metrics.base import Check, kind_of
from .pushgateway import PushgatewayConfig, load_pushgateway
from .registry import RESERVED_NAMES

__all__ = [
    "DEFAULT_BUCKETS",
    "CheckConfig",
    "MonitoringConfig",
    "RequestMetricsConfig",
    "default_timeout",
    "load_config",
]

NAME_PATTERN = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
MAX_DEFAULT_TIMEOUT = 10.0
DEFAULT_TIMEOUT_SHARE = 0.8  # of sleep_time: a run ends before the next one is due
TOP_KEYS = (
    "route_ping", "route_metrics", "route_ready", "metrics", "include_default_registry",
    "request_metrics", "request_metrics_buckets", "request_metrics_monitoring_routes", "auth",
    "pushgateway",
)  # fmt: skip
ENTRY_KEYS = (
    "name", "description", "module", "url", "sleep_time", "timeout", "critical", "params",
    "wait_for_listen",
)  # fmt: skip
#: prometheus-client's default histogram buckets, in seconds
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
REQUIRED_ENTRY_KEYS = ("name", "description", "module", "sleep_time")
MAX_MODULE_PATH = 1000  # characters of a dotted path: no import is tried past that
MAX_ROUTE = 2048  # characters of a route's path


def default_timeout(sleep_time: float) -> float:
    """The timeout of a check whose entry gives none: below ``sleep_time``, at most 10 s."""
    return min(MAX_DEFAULT_TIMEOUT, sleep_time * DEFAULT_TIMEOUT_SHARE)


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckConfig:
    """One entry of ``metrics``: a check class, its params and its schedule."""

    name: str
    description: str
    module: str
    check_class: type[Check] = field(compare=False)
    #: the check, built once when the entry was validated
    check: Check = field(compare=False, repr=False)
    sleep_time: float
    timeout: float
    critical: bool = True
    params: Mapping[str, Any] = field(default_factory=dict, repr=False)
    secrets: tuple[str, ...] = field(default=(), repr=False, compare=False)
    #: host and port the first run waits for (a check of the app itself), or None for no wait
    wait_for_listen: tuple[str, int] | None = None
    #: the unregistered gauge a check of 0.1.5's form was built with (None for others)
    collector: Gauge | None = field(default=None, repr=False, compare=False)

    @property
    def kind(self) -> str:
        """The ``kind`` label of the check class (redis, http, ..., custom)."""
        return kind_of(self.check_class)

    def create_check(self) -> Check:
        """Another instance of the check class built with ``params`` (the app's own is
        :attr:`check`)."""
        if self.collector is None:
            return self.check_class(**self.params)
        return self.check_class(**self.params, **{COLLECTOR: self.collector})


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestMetricsConfig:
    """Metrics of the app's own requests: histogram buckets, and whether to count the
    monitoring routes themselves."""

    buckets: tuple[float, ...] = DEFAULT_BUCKETS
    monitoring_routes: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class MonitoringConfig:
    """The whole MONITORING dict: routes, switches and the checks."""

    route_ping: str | None = "/ping"
    route_metrics: str | None = "/metrics"
    route_ready: str | None = None
    include_default_registry: bool = True
    request_metrics: RequestMetricsConfig | None = None  # None: off
    auth: AuthConfig | None = None  # None: the monitoring routes are open
    metrics: tuple[CheckConfig, ...] = ()
    pushgateway: PushgatewayConfig | None = None  # None: no pushing


def _import_class(path: Any) -> tuple[type[Check] | None, str | None]:
    """The class at a dotted path, or None and why it cannot be had."""
    if not isinstance(path, str):
        return None, f"module: expected a dotted path string, got {type_name(path)}"
    module_name, _, attr = path.rpartition(".")
    dotted = len(path) <= MAX_MODULE_PATH and all(part.isidentifier() for part in path.split("."))
    if not module_name or not attr or not dotted:
        return None, (
            f"module: {shown(path)} is not a dotted path to a class (package.module.Class)"
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any import failure is a configuration problem to report
        return None, f"module: cannot import {shown(module_name)}: {one_line(_text(exc))}"
    try:
        cls = getattr(module, attr, None)
    except Exception:  # a module __getattr__ that raises: the same as no attribute
        cls = None
    if cls is None:
        return None, f"module: {shown(module_name)} has no attribute {shown(attr)}"
    if not inspect.isclass(cls) or not inspect.iscoroutinefunction(getattr(cls, "check", None)):
        return None, f"module: {shown(path)} is not a check class (needs `async def check(self)`)"
    return cast("type[Check]", cls), None


def _text(exc: BaseException) -> str:
    """``str(exc)``, or the exception's type when its ``__str__`` fails."""
    try:
        return str(exc)
    except Exception:
        return type_name(exc)


def _route(raw: Mapping[str, Any], key: str, default: str | None) -> tuple[str | None, list[str]]:
    value = raw.get(key, default)
    if value is None:
        return None, []
    if not isinstance(value, str) or not value.startswith("/"):
        return None, [f"{key}: expected a path starting with '/' or None, got {shown(value)}"]
    if len(value) > MAX_ROUTE or not encodable(value):
        return None, [
            f"{key}: expected a path of at most {MAX_ROUTE} characters UTF-8 can encode, "
            f"got {shown(value)}"
        ]
    return value, []


async def _never(request: web.Request) -> web.StreamResponse:  # pragma: no cover - never served
    raise web.HTTPNotFound


def _routes_problems(routes: Mapping[str, str]) -> list[str]:
    """What aiohttp would refuse when ``setup_monitoring`` adds these routes to an app (a
    pattern it cannot read, ``/{``; two routes it reads as one): they are added to a router
    of our own first, as ``setup_monitoring`` adds them, so that the app is never touched
    by a configuration that fails."""
    router = web.UrlDispatcher()
    problems = []
    for key, path in routes.items():
        try:
            router.add_get(path, _never)
        except Exception as exc:  # ValueError, OverflowError, re.error: aiohttp refuses it
            why = one_line(_text(exc), limit=120)
            problems.append(f"{key}: aiohttp refuses {shown(path)} as a route: {why}")
    return problems


def _routes(raw: Mapping[str, Any]) -> list[str]:
    """The problems of the ``route_*`` keys: each alone, then the three together as aiohttp
    reads them."""
    routes: dict[str, str] = {}
    problems: list[str] = []
    for key, default in (("route_ping", "/ping"), ("route_metrics", "/metrics"),
                         ("route_ready", None)):  # fmt: skip
        route, route_problems = _route(raw, key, default)
        problems += route_problems
        if route is not None:
            routes[key] = route
    if problems:
        return problems
    ping, metrics, ready = (routes.get(k) for k in ("route_ping", "route_metrics", "route_ready"))
    if ping is not None and ping == metrics:
        problems.append(f"route_metrics: same path as route_ping ({shown(ping)})")
    if ready is not None and ready in (ping, metrics):
        problems.append(f"route_ready: same path as another monitoring route ({shown(ready)})")
    return problems or _routes_problems(routes)


def _keys(entry: Mapping[str, Any]) -> list[str]:
    """Unknown and missing keys of an entry."""
    unknown = [
        f"unknown key {shown(k)}{did_you_mean(k, ENTRY_KEYS)}" for k in entry if k not in ENTRY_KEYS
    ]
    return unknown + [f"missing key {k!r}" for k in REQUIRED_ENTRY_KEYS if k not in entry]


def _name(entry: Mapping[str, Any], index: int, seen: dict[str, int]) -> list[str]:
    """The entry's ``name``: a Prometheus metric name, unique, not one of our families."""
    if "name" not in entry:
        return []
    name = entry["name"]
    if not isinstance(name, str):
        return [f"name: expected a string, got {type_name(name)}"]
    if not NAME_PATTERN.fullmatch(name):
        return [
            f"name: {shown(name)} is not a valid Prometheus metric name "
            "(letters, digits, '_' and ':', not starting with a digit)"
        ]
    if name in RESERVED_NAMES:
        return [f"name: {shown(name)} clashes with a metric family of this library"]
    if name in seen:
        return [f"name: duplicate of metrics[{seen[name]}]; names must be unique"]
    seen[name] = index
    return []


def _description_and_critical(entry: Mapping[str, Any]) -> list[str]:
    """``description`` (the gauge's HELP text) and ``critical`` (a bool)."""
    problems = []
    description = entry.get("description")
    if "description" in entry and not isinstance(description, str):
        problems.append(f"description: expected a string, got {type_name(description)}")
    elif isinstance(description, str) and not description.strip():
        problems.append("description: must not be empty (it is the gauge's HELP text)")
    elif isinstance(description, str) and not encodable(description):
        problems.append(
            f"description: expected text UTF-8 can encode (it is the gauge's HELP text), "
            f"got {shown(description)}"
        )
    critical = entry.get("critical", True)
    if not isinstance(critical, bool):
        problems.append(f"critical: expected True or False, got {shown(critical)}")
    return problems


def _schedule(entry: Mapping[str, Any]) -> tuple[float | None, float | None, list[str]]:
    """``sleep_time`` and ``timeout`` (None where absent or wrong), and their problems."""
    found: dict[str, float | None] = {"sleep_time": None, "timeout": None}
    problems = []
    for key in found:
        if key in entry:
            found[key], problem = seconds(key, entry[key])
            problems += [problem] if problem else []
    return found["sleep_time"], found["timeout"], problems


@dataclass(frozen=True, slots=True)
class _Built:
    """What the ``module`` and ``params`` of an entry gave: the check, built once."""

    check: Check
    check_class: type[Check]
    params: Mapping[str, Any]
    secrets: tuple[str, ...]
    collector: Gauge | None = None  # a check of 0.1.5's form: the gauge it was built with


def _check(entry: Mapping[str, Any]) -> tuple[_Built | None, list[str]]:
    """Import the entry's check class, resolve its ``*_env`` params and build it, once;
    None and the problems when any step fails (messages never show a secret)."""
    params = entry.get("params", {})
    problems = []
    if not isinstance(params, Mapping):
        problems.append(f"params: expected a dict of keyword arguments, got {type_name(params)}")
    elif not all(isinstance(k, str) for k in params):
        key = next(k for k in params if not isinstance(k, str))
        problems.append(
            f"params: expected a dict of keyword arguments (string keys), got the key {shown(key)}"
        )
    cls = None
    if "module" in entry:
        cls, problem = _import_class(entry["module"])
        problems += [problem] if problem else []
    if cls is None or problems:
        return None, problems
    secrets = secrets_of(params)  # those given, and those read from the environment next
    params, problems = resolve_env(params, accepts(cls))
    secrets = tuple(sorted({*secrets, *secrets_of(params)}, key=len, reverse=True))
    legacy = legacy_keywords(cls, entry, params)  # a check of 0.1.5's form takes `collector`
    problems += param_problems(cls, {**params, **legacy}, secrets)
    if problems:
        return None, problems
    try:
        check = cls(**params, **legacy)  # constructors validate values (ports, URLs...)
    except Exception as exc:  # whatever the class rejects is reported, redacted
        return None, [f"params: {one_line(_text(exc), secrets)}"]
    collector = legacy.get(COLLECTOR)
    return _Built(check, cls, MappingProxyType(dict(params)), secrets, collector), []


def _wait_for_listen(
    entry: Mapping[str, Any], built: _Built | None
) -> tuple[tuple[str, int] | None, list[str]]:
    """Where a check of the app itself waits for the app's port (None: no wait)."""
    wait = entry.get("wait_for_listen")  # None: on for an HTTP check of a loopback URL
    target = listen_target(kind_of(built.check_class), built.params) if built else None
    if wait is not None and not isinstance(wait, bool):
        return None, [f"wait_for_listen: expected True, False or None, got {shown(wait)}"]
    if wait and target is None and built is not None:
        return None, ["wait_for_listen: only for an HTTP check with a url (in params or 'url')"]
    if wait or (wait is None and target and is_loopback(target[0])):
        return target, []
    return None, []


def _entry(index: int, entry: Any, seen: dict[str, int]) -> tuple[CheckConfig | None, list[str]]:
    """One ``metrics`` entry, or the problems that stop it being one."""
    if not isinstance(entry, Mapping):
        return None, [f"metrics[{index}]: expected a dict, got {type_name(entry)}"]
    name = entry.get("name")
    where = f"metrics[{index}] {shown(name)}" if isinstance(name, str) else f"metrics[{index}]"
    if "url" in entry:  # the compact form: the check class comes from the URL's scheme
        expanded, url_problems = expand_url(entry)
        if expanded is None:
            return None, [f"{where}: {problem}" for problem in url_problems]
        entry = expanded
    problems = [*_keys(entry), *_name(entry, index, seen), *_description_and_critical(entry)]
    sleep_time, timeout, schedule_problems = _schedule(entry)
    built, check_problems = _check(entry)
    listen, wait_problems = _wait_for_listen(entry, built)
    problems += schedule_problems + check_problems + wait_problems
    if problems or built is None or sleep_time is None or not isinstance(name, str):
        return None, [f"{where}: {problem}" for problem in problems]
    return CheckConfig(
        name=name,
        description=entry["description"],
        module=entry["module"],
        check_class=built.check_class,
        check=built.check,
        sleep_time=sleep_time,
        timeout=timeout if timeout is not None else default_timeout(sleep_time),
        critical=entry.get("critical", True),
        params=built.params,
        secrets=built.secrets,
        wait_for_listen=listen,
        collector=built.collector,
    ), []


def _switch(raw: Mapping[str, Any], key: str, default: bool, problems: list[str]) -> bool:
    value = raw.get(key, default)
    if isinstance(value, bool):
        return value
    problems.append(f"{key}: expected True or False, got {shown(value)}")
    return default


def _request_metrics(raw: Mapping[str, Any], problems: list[str]) -> RequestMetricsConfig | None:
    """The ``request_metrics*`` keys: None when request metrics are off."""
    enabled = _switch(raw, "request_metrics", False, problems)
    monitoring_routes = _switch(raw, "request_metrics_monitoring_routes", False, problems)
    buckets: Any = raw.get("request_metrics_buckets", DEFAULT_BUCKETS)
    if not (
        isinstance(buckets, list | tuple)
        and buckets
        and all(number(b, MAX_SECONDS) for b in buckets)
        and all(a < b for a, b in itertools.pairwise(buckets))
    ):
        problems.append(
            "request_metrics_buckets: expected a non-empty list of increasing numbers of "
            f"seconds > 0 and at most {MAX_SECONDS:.0f} (366 days), got {shown(buckets)}"
        )
        return None
    if not enabled:
        return None
    return RequestMetricsConfig(
        buckets=tuple(float(b) for b in buckets), monitoring_routes=monitoring_routes
    )


def load_config(raw: Mapping[str, Any]) -> MonitoringConfig:
    """Validate a MONITORING dict and return it as a :class:`MonitoringConfig`.

    Args:
        raw: the MONITORING dict (``route_ping``, ``route_metrics``, ``route_ready``,
            ``metrics``, ``include_default_registry``, ``request_metrics*``, ``auth``,
            ``pushgateway``); it
            is only read.

    Raises:
        WrongConfiguration: listing every problem found, each naming its entry.
    """
    if not isinstance(raw, Mapping):
        raise WrongConfiguration([f"expected a dict, got {type_name(raw)}"])
    problems = [
        f"unknown key {shown(k)}{did_you_mean(k, TOP_KEYS)}" for k in raw if k not in TOP_KEYS
    ]
    problems += _routes(raw)
    include_default = _switch(raw, "include_default_registry", True, problems)
    request_metrics = _request_metrics(raw, problems)
    auth, auth_problems = load_auth(raw.get("auth"))
    problems += auth_problems
    pushgateway, push_problems = load_pushgateway(raw.get("pushgateway"))
    problems += push_problems
    entries = raw.get("metrics", [])
    checks: list[CheckConfig] = []
    if isinstance(entries, list | tuple):
        seen: dict[str, int] = {}
        for index, entry in enumerate(entries):
            check, entry_problems = _entry(index, entry, seen)
            problems += entry_problems
            if check is not None:
                checks.append(check)
    else:
        problems.append(f"metrics: expected a list of check entries, got {type_name(entries)}")
    if problems:
        raise WrongConfiguration(problems)
    return MonitoringConfig(
        route_ping=raw.get("route_ping", "/ping"),
        route_metrics=raw.get("route_metrics", "/metrics"),
        route_ready=raw.get("route_ready"),
        include_default_registry=include_default,
        request_metrics=request_metrics,
        auth=auth,
        metrics=tuple(checks),
        pushgateway=pushgateway,
    )
