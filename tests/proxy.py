"""A fault-injecting TCP proxy for resilience tests: cut, stall, delay and refuse connections.

It sits between a client under test and a real service on loopback, so the client sees the
faults a production network produces while the service stays untouched for other tests.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

CHUNK = 64 * 1024


@dataclass(eq=False)
class _Link:
    """One proxied client connection and its upstream twin."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    pumps: list[asyncio.Task[None]] = field(default_factory=list)

    def abort(self) -> None:
        for writer in (self.client, self.upstream):
            writer.transport.abort()  # RST-like: the peer sees the connection die at once


class FaultProxy:
    """Forwards 127.0.0.1:<port> to a target address, with faults switched on demand.

    Args:
        target_host: the real service's host (loopback only).
        target_port: the real service's port.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.accepted = 0
        self._links: set[_Link] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._delay = 0.0
        self._refusing = False
        self._server: asyncio.Server | None = None

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def connections(self) -> int:
        """How many client connections are open through the proxy right now."""
        return len(self._links)

    def cut(self) -> int:
        """Abort every open connection, both sides; returns how many were cut."""
        links = list(self._links)
        for link in links:
            link.abort()
        return len(links)

    def stall(self) -> None:
        """Stop forwarding bytes in both directions, keeping connections open (no FIN, no RST)."""
        self._flowing.clear()

    def resume(self) -> None:
        """Forward bytes again after stall()."""
        self._flowing.set()

    def delay(self, seconds: float) -> None:
        """Hold every forwarded chunk for ``seconds`` (0 turns latency off)."""
        self._delay = seconds

    def refuse(self, refusing: bool = True) -> None:
        """While refusing, new connections are accepted and closed at once."""
        self._refusing = refusing

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self.cut()
        pumps = [pump for link in self._links for pump in link.pumps]
        for pump in pumps:
            pump.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self._refusing:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        link = _Link(writer, up_writer)
        self._links.add(link)
        link.pumps = [
            asyncio.create_task(self._pump(reader, up_writer)),
            asyncio.create_task(self._pump(up_reader, writer)),
        ]
        try:
            await asyncio.gather(*link.pumps, return_exceptions=True)
        finally:
            link.abort()
            self._links.discard(link)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(CHUNK):
                await self._flowing.wait()
                if self._delay:
                    await asyncio.sleep(self._delay)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            # Either side ending ends the link: a half-open proxy would hide the fault.
            writer.transport.abort()
