"""AMQP check: up when the broker accepts a login and opens a channel (aioamqp).

Given several URLs (the nodes of a cluster) it is up while any of them accepts us: they are
tried in turn, starting with the last one that answered, as an ``aioamqp_ext`` client would.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

from .._optional import require
from .._redact import redact_url
from .base import BaseMetric, close_politely, parse_port

aioamqp: Any = require("aioamqp", "amqp")


@dataclass(frozen=True, slots=True)
class _Node:
    """Where and how to log in to one broker node."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    vhost: str
    ssl: bool

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def _parse(url: str, *, user: str, password: str, vhost: str) -> _Node:
    """One node from an ``amqp://`` or ``amqps://`` URL; the parts it omits use the defaults."""
    if not isinstance(url, str):
        raise ValueError(f"url: expected an amqp:// URL, got {type(url).__name__}")
    parts = urlsplit(url)
    if parts.scheme not in ("amqp", "amqps"):
        raise ValueError(f"url: expected an amqp:// URL, got {redact_url(url)!r}")
    ssl = parts.scheme == "amqps"
    return _Node(
        host=parts.hostname or "localhost",
        port=parse_port(parts.port or (5671 if ssl else 5672)),
        user=unquote(parts.username) if parts.username else user,
        password=unquote(parts.password) if parts.password else password,
        vhost=unquote(parts.path[1:]) if len(parts.path) > 1 else vhost,
        ssl=ssl,
    )


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
            nodes = [_parse(u, user=user, password=password, vhost=vhost) for u in urls]
        else:
            port = port if port is not None else (5671 if ssl else 5672)
            nodes = [_Node(host or "localhost", parse_port(port), user, password, vhost, ssl)]
        self._nodes = tuple(nodes)
        self._first = 0  # index of the node that answered last: tried first next time
        first = nodes[0]
        self.host = first.host
        self.port = first.port
        self.user = first.user
        self.vhost = first.vhost
        self.ssl = first.ssl

    @property
    def nodes(self) -> tuple[str, ...]:
        """``host:port`` of each node, in the order given."""
        return tuple(str(node) for node in self._nodes)

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
                problems.append(f"{node}: {exc or type(exc).__name__}")
                continue
            self._first = at
            return True
        raise ConnectionError(f"no node of {count} accepted us: " + "; ".join(problems))

    @staticmethod
    async def _login(node: _Node) -> None:
        """Log in to ``node`` and open a channel; the socket is closed whatever happens."""
        loop = asyncio.get_running_loop()
        # aioamqp.connect() leaves the socket open when cancelled during the handshake,
        # so we create the connection ourselves and own its transport.
        transport, protocol = await loop.create_connection(
            aioamqp.AmqpProtocol, node.host, node.port, ssl=node.ssl or None
        )
        try:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                await protocol.start_connection(
                    node.host, node.port, node.user, node.password, node.vhost,
                    ssl=node.ssl, login_method="PLAIN",
                )  # fmt: skip
            except aioamqp.AmqpClosedConnection:  # aioamqp says nothing more helpful
                raise ConnectionError(
                    f"the broker closed the connection during login as {node.user!r} to "
                    f"vhost {node.vhost!r}: wrong user, password or vhost?"
                ) from None
            channel = await protocol.channel()
            await channel.close()
            await close_politely(protocol.close, transport.close)
        finally:
            transport.close()

    def __repr__(self) -> str:
        if len(self._nodes) > 1:
            nodes = list(self.nodes)
            return f"AmqpMetric(nodes={nodes!r}, user={self.user!r}, vhost={self.vhost!r})"
        return (
            f"AmqpMetric(host={self.host!r}, port={self.port!r}, user={self.user!r}, "
            f"vhost={self.vhost!r}, ssl={self.ssl!r})"
        )
