"""TCP check: up when a connection to host:port opens."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any, ClassVar

from .base import BaseMetric, parse_port

__all__ = ["TcpMetric"]


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
        # an address needs no resolving (which would be a round trip to a thread each run)
        self._numeric: list[tuple[Any, ...]] = []
        try:
            version = ipaddress.ip_address(host).version
        except ValueError:
            pass
        else:
            family = socket.AF_INET if version == 4 else socket.AF_INET6
            self._numeric = [(family, socket.SOCK_STREAM, 0, "", (host, self.port))]

    async def check(self) -> bool:
        """Open a connection on a socket of our own, then close it, whatever happens.

        No transport or stream: a connect is all we need, and a bare non-blocking socket
        costs a fraction of the CPU of ``asyncio.open_connection``.
        """
        loop = asyncio.get_running_loop()
        infos = self._numeric or await loop.getaddrinfo(
            self.host, self.port, type=socket.SOCK_STREAM
        )
        error: OSError | None = None
        for family, kind, proto, _, address in infos:  # each address in turn, as a client does
            sock = socket.socket(family, kind, proto)
            try:
                sock.setblocking(False)
                await loop.sock_connect(sock, address)
                return True
            except OSError as exc:
                error = exc
            finally:
                sock.close()
        raise error or OSError(f"no address for {self.host!r}")

    def __repr__(self) -> str:
        return f"TcpMetric(host={self.host!r}, port={self.port!r})"
