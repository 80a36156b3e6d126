"""Compact check entries: ``{'name': ..., 'url': ...}``, the built-in check chosen by the scheme.

A compact entry is expanded into the verbose form of the talk (``module``, ``description``,
``sleep_time``, ``params``) before the usual validation, so both forms are checked alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from _aiohttp_booster.redact import shown, type_name
from _aiohttp_booster.urls import AT_AFTER_HOST, at_after_host

from ._params import encodable

#: a compact entry's ``sleep_time`` when it gives none (its timeout defaults to 4 s)
DEFAULT_SLEEP_TIME = 5.0
_METRICS = "aiohttp_prometheus_monitoring.metrics"
#: scheme -> (kind, check class, the keyword that takes the URL; None: host and port)
SCHEMES: Mapping[str, tuple[str, str, str | None]] = {
    "http": ("http", f"{_METRICS}.http.HttpMetric", "url"),
    "https": ("http", f"{_METRICS}.http.HttpMetric", "url"),
    "redis": ("redis", f"{_METRICS}.redis.RedisMetric", "url"),
    "rediss": ("redis", f"{_METRICS}.redis.RedisMetric", "url"),
    "amqp": ("amqp", f"{_METRICS}.amqp.AmqpMetric", "url"),
    "amqps": ("amqp", f"{_METRICS}.amqp.AmqpMetric", "url"),
    "postgres": ("postgres", f"{_METRICS}.postgres.PostgresMetric", "dsn"),
    "postgresql": ("postgres", f"{_METRICS}.postgres.PostgresMetric", "dsn"),
    "mysql": ("mysql", f"{_METRICS}.mysql.MySQLMetric", "dsn"),
    "tcp": ("tcp", f"{_METRICS}.tcp.TcpMetric", None),
}


def expand_url(entry: Mapping[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    """The verbose form of an entry that has a ``url``, or None and what stops it being one.

    ``description`` and ``sleep_time`` get defaults; ``params`` the entry gives are kept
    (``timeout`` or ``verify_ssl`` of an HTTP check, say), the URL goes where the check
    class takes it.
    """
    url = entry["url"]
    if not isinstance(url, str) or not url:
        return None, [f"url: expected a URL string, got {type_name(url)} {shown(url)}"]
    if not encodable(url):
        return None, [f"url: expected text UTF-8 can encode, got {shown(url)}"]
    if "module" in entry:
        return None, [
            "give either 'url' (a built-in check chosen by the URL's scheme) or 'module' "
            "(a check class of your own), not both"
        ]
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # urllib's message quotes the netloc, the password with it: not shown
        return None, [
            f"url: cannot parse {shown(url)}: a port must be 0-65535, and a '/', '?', '#', "
            "'@', '[' or ']' in the user or password percent-encoded"
        ]
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        return None, [
            f"url: unknown scheme {shown(scheme)} in {shown(url)}; expected one of "
            f"{', '.join(s + '://' for s in SCHEMES)} (or 'module' for a check of your own)"
        ]
    kind, module, keyword = SCHEMES[scheme]
    if not parts.hostname:
        return None, [f"url: no host in {shown(url)}"]
    if at_after_host(url):  # what urllib read as the host may be the start of the user
        return None, [f"url: {shown(url)} is ambiguous, {AT_AFTER_HOST}"]
    given: Any = entry.get("params", {})
    params = dict(given) if isinstance(given, Mapping) else {}
    if keyword is None:
        if port is None:
            return None, [f"url: expected tcp://host:port, got {shown(url)} (no port)"]
        url_params: dict[str, Any] = {"host": parts.hostname, "port": port}
    else:
        url_params = {keyword: url}
    taken = sorted(k for k in ("url", "dsn", "host", "port") if k in params)
    if taken:
        return None, [f"params: {taken[0]!r} comes from 'url' here; give it in one place only"]
    where = parts.hostname if port is None else f"{parts.hostname}:{port}"
    expanded = {key: value for key, value in entry.items() if key != "url"}
    expanded.setdefault("description", f"Check {kind} {where}")
    expanded.setdefault("sleep_time", DEFAULT_SLEEP_TIME)
    expanded["module"] = module
    expanded["params"] = {**params, **url_params} if isinstance(given, Mapping) else given
    return expanded, []
