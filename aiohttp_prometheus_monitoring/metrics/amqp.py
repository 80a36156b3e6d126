"""AMQP check: up when the broker accepts a login and opens a channel.

It connects through ``aioamqp_ext``'s own AMQP layer (so the ``amqp`` extra is needed), the
client our workers use, with the same URL parsing. Given several URLs (the nodes of a
cluster) it is up while any of them accepts us: they are tried in turn, starting with the
last one that answered, as an ``aioamqp_ext`` client would.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from _aiohttp_booster.redact import shown
from _aiohttp_booster.urls import AT_AFTER_HOST, at_after_host
from aioamqp_ext._amqp import Connection  # without the amqp extra: an ImportError naming it
from aioamqp_ext.config import BrokerUrl

from .._deprecation import RemovedAttribute
from .base import BaseMetric, parse_port

__all__ = ["AmqpMetric"]

#: seconds one login may take when the check runs outside the scheduler (which has its own
#: timeout per check): a guard against a broker that never answers, not a setting
LOGIN_GUARD = 60.0
CONNECTION_NAME = "aiohttp_prometheus_monitoring AmqpMetric"


class AmqpMetric(BaseMetric):
    """Up when RabbitMQ (or any AMQP 0-9-1 broker) logs us in and opens a channel.

    Connection and channel are closed after each run. Give either ``url``
    (``amqp://user:password@host:port/vhost``, ``amqps://`` for TLS) or the parts. ``url``
    may be a list of URLs, the nodes of a cluster: the check is then up while any node
    accepts us. They are tried in turn, the one that answered last first, so a healthy
    cluster costs one connection per run.

    Args:
        host: the broker's host (default ``localhost``).
        port: its port (default 5672, 5671 with TLS; an int or a numeric string).
        user: the login (default ``guest``).
        password: the password (default ``guest``; never shown).
        vhost: the virtual host (default ``/``).
        ssl: connect with TLS.
        url: all of the above as one URL, or a list of URLs (one per cluster node).
    """

    kind: ClassVar[str] = "amqp"
    # 0.1.5's helper of check(): reading it says what replaces it
    connect_amqp = RemovedAttribute(
        "use await AmqpMetric(url=...).check(), which logs in, opens a channel and closes"
    )

    def __init__(
        self,
        host: str | None = None,
        port: int | str | None = None,
        user: str = "guest",
        password: str = "guest",  # noqa: S107 - RabbitMQ's well-known default login
        vhost: str = "/",
        ssl: bool = False,
        url: str | Sequence[str] | None = None,
    ) -> None:
        if url is not None:
            if host is not None or port is not None:
                raise ValueError("give either url or host/port, not both")
            urls = [url] if isinstance(url, str) else list(url)
            if not urls:
                raise ValueError("url: expected an amqp:// URL or a non-empty list of them")
            for one in urls:
                if isinstance(one, str) and at_after_host(one):
                    raise ValueError(f"url: {shown(one)} is ambiguous, {AT_AFTER_HOST}")
            nodes = [
                BrokerUrl.parse(u, login=user, password=password, virtualhost=vhost) for u in urls
            ]
        else:
            port = port if port is not None else (5671 if ssl else 5672)
            node = BrokerUrl.from_parts(host=host or "localhost", port=parse_port(port),
                                        login=user, password=password, virtualhost=vhost,
                                        ssl=ssl)  # fmt: skip
            nodes = [node]
        self._nodes = tuple(nodes)
        self._first = 0  # index of the node that answered last: tried first next time
        first = nodes[0]
        self.host = first.host
        self.port = first.port
        self.user = first.login
        self.vhost = first.virtualhost
        self.ssl = first.ssl

    @property
    def nodes(self) -> tuple[str, ...]:
        """``host:port`` of each node, in the order given."""
        return tuple(f"{node.host}:{node.port}" for node in self._nodes)

    async def check(self) -> bool:
        """Log in to the first node that accepts us, open a channel, close both.

        Raises:
            ConnectionError: no node accepted us (naming each node and why); with a
                single node, whatever that node's failure raised.
        """
        count = len(self._nodes)
        problems: list[str] = []
        for step in range(count):
            at = (self._first + step) % count
            node = self._nodes[at]
            try:
                await self._login(node)
            except Exception as exc:  # whatever failed this node, the next one may answer
                if count == 1:
                    raise
                problems.append(f"{node.host}:{node.port}: {exc or type(exc).__name__}")
                continue
            self._first = at
            return True
        raise ConnectionError(f"no node of {count} accepted us: " + "; ".join(problems))

    @staticmethod
    async def _login(node: BrokerUrl) -> None:
        """Log in to ``node`` and open a channel; the socket is closed whatever happens."""
        connection = Connection(node, timeout=LOGIN_GUARD)
        try:
            await connection.connect(heartbeat=0, confirms=False, name=CONNECTION_NAME)
        finally:
            await connection.close()

    def __repr__(self) -> str:
        if len(self._nodes) > 1:
            nodes = list(self.nodes)
            return (
                f"AmqpMetric(nodes={shown(nodes)}, user={shown(self.user)}, "
                f"vhost={shown(self.vhost)})"
            )
        return (
            f"AmqpMetric(host={shown(self.host)}, port={self.port!r}, user={shown(self.user)}, "
            f"vhost={shown(self.vhost)}, ssl={self.ssl!r})"
        )
