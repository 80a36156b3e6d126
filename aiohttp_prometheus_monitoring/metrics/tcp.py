"""TCP check: up when a connection to host:port opens."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from .base import BaseMetric, close_politely, parse_port


class TcpMetric(BaseMetric):
    """Up when a TCP connection to ``host:port`` opens; it is closed at once.

    Args:
        host: a host name or address.
        port: the TCP port (an int or a numeric string).
    """

    kind: ClassVar[str] = "tcp"

    def __init__(self, host: str, port: int | str) -> None:
        self.host = host
        self.port = parse_port(port)

    async def check(self) -> bool:
        """Open a connection, then close it."""
        _, writer = await asyncio.open_connection(self.host, self.port)

        async def close() -> None:
            writer.close()
            await writer.wait_closed()

        await close_politely(close, writer.transport.abort)
        return True

    def __repr__(self) -> str:
        return f"TcpMetric(host={self.host!r}, port={self.port!r})"
