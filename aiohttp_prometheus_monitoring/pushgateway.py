"""Pushing a registry to a Prometheus Pushgateway: on an interval, and once more at shutdown.

For workers that Prometheus cannot scrape (short-lived, behind NAT, batch-like). The config
key ``pushgateway`` of the MONITORING dict turns it on::

    "pushgateway": {
        "url": "http://pushgateway:9091",
        "job": "billing-worker",
        "grouping_key": {"instance": "worker-1"},   # optional
        "interval": 15,                             # seconds, optional
        "timeout": 5,                               # seconds per push, optional
    }

Each push replaces the group's metrics (HTTP PUT of the text format). A failed push is
logged (once per outage, then at debug level) and tried again at the next tick; it never
stops the worker.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from _aiohttp_booster.redact import one_line, shown, type_name
from _aiohttp_booster.urls import at_after_host, mask_url

from ._params import encodable, seconds
from .errors import MonitoringError

__all__ = [
    "PUSHER_KEY", "PUSHGATEWAY_KEYS", "PushError", "Pusher", "PushgatewayConfig",
    "load_pushgateway", "pushing",
]  # fmt: skip

logger = logging.getLogger(__name__)

#: The keys the ``pushgateway`` entry of the configuration accepts.
PUSHGATEWAY_KEYS = ("url", "job", "grouping_key", "interval", "timeout")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_PLAIN = re.compile(r"[a-zA-Z0-9_.:-]+")  # path segments that need no encoding


@dataclass(frozen=True, slots=True, kw_only=True)
class PushgatewayConfig:
    """Where and how often to push: the ``pushgateway`` key of the MONITORING dict."""

    url: str = field(repr=False)
    job: str
    grouping_key: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    interval: float = 15.0
    timeout: float = 5.0

    @property
    def endpoint(self) -> str:
        """The group's URL, ``<url>/metrics/job/<job>/<label>/<value>...``."""
        parts = [_segment("job", self.job)]
        parts += [_segment(name, value) for name, value in self.grouping_key.items()]
        return self.url.rstrip("/") + "/metrics/" + "/".join(parts)

    def __repr__(self) -> str:
        return (
            f"PushgatewayConfig(url={shown(self.url)}, job={shown(self.job)}, "
            f"grouping_key={shown(dict(self.grouping_key))}, interval={self.interval:g})"
        )


def _segment(name: str, value: str) -> str:
    """One label of the group's path; values with other characters are base64url-encoded."""
    if _PLAIN.fullmatch(value):
        return f"{name}/{value}"
    encoded = base64.urlsafe_b64encode(value.encode()).decode() or "="  # '=': the empty value
    return f"{name}@base64/{encoded}"


def _seconds(raw: Mapping[str, Any], key: str, default: float, problems: list[str]) -> float:
    value, problem = seconds(key, raw.get(key, default))
    if value is None:
        problems.append(f"pushgateway: {problem}")
        return default
    return value


def _url_problem(url: Any) -> str | None:
    """What keeps ``url`` from being a Pushgateway's URL, or None. urllib reads it first
    (as aiohttp will); what it refuses is shown masked, never in urllib's words (they quote
    the credentials)."""
    if isinstance(url, str) and encodable(url):
        try:
            parts = urlsplit(url)
            readable = bool(parts.hostname) and parts.port != 0  # reading .port checks it
        except ValueError:  # a bad port, an unclosed '[': urllib's message quotes the netloc
            readable = False
        if readable and parts.scheme.lower() in ("http", "https") and not at_after_host(url):
            return None
    return f"url: expected an http:// or https:// URL with a host, got {shown(url)}"


def _text_problem(what: str, value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return f"{what}: expected a non-empty str, got {shown(value)}"
    if not encodable(value):
        return f"{what}: expected text UTF-8 can encode, got {shown(value)}"
    return None


def load_pushgateway(raw: Any) -> tuple[PushgatewayConfig | None, list[str]]:
    """Validate the ``pushgateway`` key; (None, []) when it is absent or None.

    Returns:
        The config (None if absent or invalid) and every problem found.
    """
    if raw is None:
        return None, []
    if not isinstance(raw, Mapping):
        return None, [
            f"pushgateway: expected a dict with url and job, got {type_name(raw)} {shown(raw)}"
        ]
    problems = [
        f"pushgateway: unknown key {shown(key)} (expected {', '.join(PUSHGATEWAY_KEYS)})"
        for key in raw
        if key not in PUSHGATEWAY_KEYS
    ]
    url = raw.get("url")
    job = raw.get("job")
    problems += [
        f"pushgateway: {problem}"
        for problem in (_url_problem(url), _text_problem("job", job))
        if problem is not None
    ]
    grouping: Any = raw.get("grouping_key", {})
    if not isinstance(grouping, Mapping) or not all(
        isinstance(k, str) and _LABEL.fullmatch(k) and k != "job"
        and isinstance(v, str) and encodable(v)
        for k, v in grouping.items()
    ):  # fmt: skip
        problems.append(
            "pushgateway: grouping_key: expected a dict of label names (not 'job') to str "
            f"values, got {shown(grouping)}"
        )
    interval = _seconds(raw, "interval", 15.0, problems)
    timeout = _seconds(raw, "timeout", 5.0, problems)
    if problems:
        return None, problems
    assert isinstance(url, str)
    assert isinstance(job, str)
    return PushgatewayConfig(
        url=url,
        job=job,
        grouping_key=MappingProxyType(dict(grouping)),
        interval=interval,
        timeout=timeout,
    ), []


class Pusher:
    """Pushes a registry on an interval from :meth:`start`, and once more from :meth:`close`.

    Args:
        config: where and how often.
        registry: what to push (the app's own registry).
    """

    def __init__(self, config: PushgatewayConfig, registry: CollectorRegistry) -> None:
        self.config = config
        self.registry = registry
        self.pushes = 0  # successful ones
        self.failures = 0
        self._failing = False
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    def start(self) -> None:
        """Start pushing: at once, then every ``interval`` seconds (on the loop's clock)."""
        if self._task is None:
            self._session = aiohttp.ClientSession()
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            await self.push()
            due += self.config.interval
            now = loop.time()
            if due < now:  # a slow push: skip the ticks it overran instead of bunching up
                due = now + self.config.interval
            await asyncio.sleep(due - now)

    async def push(self) -> bool:
        """Push the registry once; True on success. Failures are logged, never raised."""
        session = self._session
        if session is None or session.closed:
            session = self._session = aiohttp.ClientSession()
        endpoint = self.config.endpoint
        try:
            body = generate_latest(self.registry)
            async with (
                asyncio.timeout(self.config.timeout),
                session.put(
                    endpoint, data=body, headers={"Content-Type": CONTENT_TYPE_LATEST}
                ) as response,
            ):
                if response.status >= 300:
                    text = (await response.text())[:200].strip()
                    raise PushError(f"HTTP {response.status}: {text}")
        except Exception as exc:  # whatever went wrong, the worker must go on; retried later
            self.failures += 1
            level = logging.DEBUG if self._failing else logging.WARNING
            self._failing = True
            logger.log(
                level,
                "push to the Pushgateway %s failed (%s); retrying every %g s",
                mask_url(endpoint),
                type(exc).__name__ if isinstance(exc, TimeoutError) else _reason(exc),
                self.config.interval,
                exc_info=not isinstance(
                    exc, aiohttp.ClientError | TimeoutError | PushError | OSError
                ),
                extra={"pushgateway": mask_url(endpoint)},
            )
            return False
        if self._failing:
            logger.info("push to the Pushgateway %s works again", mask_url(endpoint))
        self._failing = False
        self.pushes += 1
        return True

    async def close(self) -> None:
        """Stop the interval, push one last time (the final numbers), release; idempotent."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await self.push()
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def _reason(exc: Exception) -> str:
    try:
        text = str(exc)
    except Exception:  # an exception whose message cannot be made
        text = ""
    return one_line(text or type(exc).__name__)


class PushError(MonitoringError):
    """The Pushgateway answered with an error status (logged, never raised to the caller)."""


def pushing(
    config: PushgatewayConfig, registry: CollectorRegistry
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context pushing ``registry`` while the app runs, and once at its shutdown.

    Its final push happens when the app's cleanup reaches it, after the contexts appended
    later (a worker closes its consumer first, so the last push has the final numbers).
    """

    async def push_while_running(app: web.Application) -> AsyncIterator[None]:
        pusher = Pusher(config, registry)
        app[PUSHER_KEY] = pusher
        pusher.start()
        try:
            yield
        finally:
            await pusher.close()

    return push_while_running


#: The key of the app's :class:`Pusher` (``app[PUSHER_KEY]``), when its configuration has
#: ``pushgateway``.
PUSHER_KEY = web.AppKey("aiohttp_prometheus_monitoring.pusher", Pusher)
