"""AMQP check: up when the broker accepts a login and opens a channel (aioamqp)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

from .._optional import require
from .._redact import redact_url
from .base import BaseMetric, close_politely, parse_port

aioamqp: Any = require("aioamqp", "amqp")


class AmqpMetric(BaseMetric):
    """Up when RabbitMQ (or any AMQP 0-9-1 broker) logs us in and opens a channel.

    Connection and channel are closed after each run. Give either ``url``
    (``amqp://user:password@host:port/vhost``, ``amqps://`` for TLS) or the parts.

    Args:
        host: the broker's host (default ``localhost``).
        port: its port (default 5672, 5671 with TLS; an int or a numeric string).
        user: the login (default ``guest``).
        password: the password (default ``guest``; never shown).
        vhost: the virtual host (default ``/``).
        ssl: connect with TLS.
        url: all of the above as one URL.
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
        url: str | None = None,
    ) -> None:
        if url is not None:
            if host is not None or port is not None:
                raise ValueError("give either url or host/port, not both")
            parts = urlsplit(url)
            if parts.scheme not in ("amqp", "amqps"):
                raise ValueError(f"url: expected an amqp:// URL, got {redact_url(url)!r}")
            ssl = parts.scheme == "amqps"
            host, port = parts.hostname, parts.port
            user = unquote(parts.username) if parts.username else user
            password = unquote(parts.password) if parts.password else password
            vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else vhost
        self.host = host or "localhost"
        self.port = parse_port(port if port is not None else (5671 if ssl else 5672))
        self.user = user
        self._password = password
        self.vhost = vhost
        self.ssl = ssl

    async def check(self) -> bool:
        """Log in, open a channel, close both; the socket is closed whatever happens."""
        loop = asyncio.get_running_loop()
        # aioamqp.connect() leaves the socket open when cancelled during the handshake,
        # so we create the connection ourselves and own its transport.
        transport, protocol = await loop.create_connection(
            aioamqp.AmqpProtocol, self.host, self.port, ssl=self.ssl or None
        )
        try:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                await protocol.start_connection(
                    self.host, self.port, self.user, self._password, self.vhost,
                    ssl=self.ssl, login_method="PLAIN",
                )  # fmt: skip
            except aioamqp.AmqpClosedConnection:  # aioamqp says nothing more helpful
                raise ConnectionError(
                    f"the broker closed the connection during login as {self.user!r} to "
                    f"vhost {self.vhost!r}: wrong user, password or vhost?"
                ) from None
            channel = await protocol.channel()
            await channel.close()
            await close_politely(protocol.close, transport.close)
            return True
        finally:
            transport.close()

    def __repr__(self) -> str:
        return (
            f"AmqpMetric(host={self.host!r}, port={self.port!r}, user={self.user!r}, "
            f"vhost={self.vhost!r}, ssl={self.ssl!r})"
        )
