"""Monitoring for workers: an ``aioamqp_ext`` consumer's metrics and readiness, served over a
tiny HTTP server of ours (``/ping``, ``/metrics``, ``/ready``) and/or pushed to a Pushgateway.

``aioamqp_ext`` is only imported by the caller: this module takes its objects as they are.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol

from aiohttp import web
from prometheus_client import CollectorRegistry

from _aiohttp_booster.redact import type_name

from .errors import WrongConfiguration
from .metrics.base import BaseMetric
from .web import REGISTRY_KEY, setup_monitoring

__all__ = ["DEFAULT_WORKER_MONITORING", "AmqpClient", "AmqpConsumer", "ClientConfig",
           "ClientConnectedMetric", "serve_worker", "setup_worker_monitoring"]  # fmt: skip

logger = logging.getLogger(__name__)

#: the worker's own monitoring when none is given, the three routes and no other checks
DEFAULT_WORKER_MONITORING: Mapping[str, Any] = {
    "route_ping": "/ping",
    "route_metrics": "/metrics",
    "route_ready": "/ready",
}
READINESS_PERIOD = 1.0  # seconds between two looks at a client's connection
_NOT_NAME = re.compile(r"[^a-zA-Z0-9_]+")


class ClientConfig(Protocol):
    """What we read of an ``aioamqp_ext`` client's config (``AmqpConfig``)."""

    @property
    def queue(self) -> str: ...

    @property
    def exchange(self) -> str: ...


class AmqpClient(Protocol):
    """What we use of an ``aioamqp_ext`` producer or consumer."""

    @property
    def config(self) -> ClientConfig: ...

    @property
    def is_connected(self) -> bool: ...

    @property
    def closed(self) -> bool: ...

    def attach_metrics(self, registry: CollectorRegistry) -> None: ...


class AmqpConsumer(AmqpClient, Protocol):
    """What we use of an ``aioamqp_ext`` consumer: a client we can serve until stopped."""

    async def serve(self, *, handle_signals: bool = True) -> None: ...


class ClientConnectedMetric(BaseMetric):
    """Up while an ``aioamqp_ext`` client is connected, its topology declared and, for a
    consumer, consuming (a consumer's connection only counts once it consumes).

    Args:
        client: the producer or consumer.
    """

    kind: ClassVar[str] = "amqp_client"

    def __init__(self, client: AmqpClient) -> None:
        super().__init__(client=client)
        self.client = client

    async def check(self) -> bool:
        """Whether the client is connected right now (a look, no network call)."""
        return self.client.is_connected and not self.client.closed

    def __repr__(self) -> str:
        return f"ClientConnectedMetric({self.client!r})"


def _check_entry(client: AmqpClient) -> dict[str, Any]:
    what = client.config.queue or client.config.exchange or "client"
    return {
        "name": "monitoring_amqp_" + _NOT_NAME.sub("_", what).strip("_"),
        "description": f"Whether the AMQP client of {what!r} is connected (and consuming)",
        "module": f"{__name__}.ClientConnectedMetric",
        "sleep_time": READINESS_PERIOD,
        "timeout": READINESS_PERIOD / 2,
        "params": {"client": client},
    }


async def setup_worker_monitoring(
    config: Mapping[str, Any] | None, app: web.Application, *clients: AmqpClient
) -> None:
    """``setup_monitoring`` for a worker: ``clients``' ``amqp_*`` metrics in the app's
    registry, and one critical check per client, so that ``/ready`` means "connected and
    consuming".

    Args:
        config: a MONITORING dict (None: ``/ping``, ``/metrics`` and ``/ready``, no other
            check); its ``pushgateway`` key, if any, pushes the registry on an interval and
            once at shutdown.
        app: the worker's (small) application, before it starts.
        *clients: ``aioamqp_ext`` consumers and producers.

    Raises:
        WrongConfiguration: the config has problems (also a clash of two clients' check names).
    """
    if config is not None and not isinstance(config, Mapping):
        raise WrongConfiguration([f"expected a dict, got {type_name(config)}"])
    settings = dict(DEFAULT_WORKER_MONITORING if config is None else config)
    given = settings.get("metrics", [])
    if isinstance(given, list | tuple):  # anything else: load_config says what is wrong
        settings["metrics"] = [*given, *(_check_entry(c) for c in clients)]
    await setup_monitoring(settings, app)
    for client in clients:
        client.attach_metrics(app[REGISTRY_KEY])


async def serve_worker(
    consumer: AmqpConsumer,
    config: Mapping[str, Any] | None = None,
    *,
    host: str = "0.0.0.0",  # noqa: S104 - scraped and probed from outside the container
    port: int | None = 9101,
    clients: tuple[AmqpClient, ...] = (),
    handle_signals: bool = True,
) -> None:
    """Run a consumer until SIGINT/SIGTERM with its monitoring, then stop both cleanly.

    The consumer closes first (in-flight messages finish), then the monitoring stops, so a
    final Pushgateway push carries the final numbers.

    Args:
        consumer: an ``aioamqp_ext.BaseConsumer``; its ``serve()`` is awaited.
        config: the worker's MONITORING dict (see :func:`setup_worker_monitoring`).
        host: where the HTTP server listens: every address by default, as
            prometheus_client's ``start_http_server`` and aiohttp's ``run_app`` do (Prometheus
            and the orchestrator's probes reach it in a container); ``"127.0.0.1"`` keeps it
            on this machine.
        port: its port; None for no HTTP server (pushing only).
        clients: further clients to monitor (a producer the worker publishes with).
        handle_signals: let the consumer handle SIGINT/SIGTERM.

    Raises:
        WrongConfiguration: the config has problems.
        OSError: the port cannot be bound.
    """
    app = web.Application()
    await setup_worker_monitoring(config, app, consumer, *clients)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        if port is not None:
            site = web.TCPSite(runner, host, port)
            await site.start()
            logger.info("worker monitoring on http://%s:%d/metrics", host, port)
        await consumer.serve(handle_signals=handle_signals)
    finally:
        await runner.cleanup()
