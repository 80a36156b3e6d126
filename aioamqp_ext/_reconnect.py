"""The connection of a producer or consumer: opened on first use, healed after every loss.

A loss (broker restart, network cut, an operator closing the connection, missed heartbeats,
a channel closed by the broker) is reported by :class:`Connection` through ``on_lost``. With
``reconnect`` on, a task of ours then tries the broker URLs in turn, starting after the one
just lost, waiting between rounds a delay that doubles up to ``reconnect_max_delay`` (scaled
by a random factor in [0.5, 1] so that many clients do not come back in lockstep), and runs
the owner's ``setup`` (topology, QoS, consuming) on the new connection before anyone uses it.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable

from ._amqp import Connection
from .config import AmqpConfig, BrokerUrl
from .errors import AmqpConnectionError, AmqpExtError, AmqpTimeoutError, ClosedError

__all__ = ["Backoff", "Link"]

logger = logging.getLogger(__name__)


class Backoff:
    """Delays before reconnection attempts: ``first``, doubling up to ``cap``, with jitter."""

    def __init__(self, first: float, cap: float) -> None:
        self.first = first
        self.cap = cap
        self.tries = 0

    def next(self) -> float:
        """The delay before the next attempt, in seconds."""
        delay = min(self.cap, self.first * 2.0 ** min(self.tries, 32))
        self.tries += 1
        return delay * random.uniform(0.5, 1.0)


class Link:
    """The connection of one producer or consumer on one event loop, and its healing.

    Args:
        config: the owner's options: URLs, timeouts, heartbeat, reconnect settings.
        owner: how log lines name the owner.
        setup: declares the owner's topology on a new connection (and starts consuming).
        on_lost: told of each loss, after the link reacted to it.
        on_healed: told of each connection healed (for the reconnects metric).
        transport: makes a :class:`Connection` for a URL (``aioamqp_ext.testing`` gives an
            in-memory one).
    """

    def __init__(
        self,
        config: AmqpConfig,
        *,
        owner: str,
        setup: Callable[[Connection], Awaitable[None]],
        on_lost: Callable[[AmqpConnectionError], None],
        on_healed: Callable[[], None] | None = None,
        transport: Callable[..., Connection] = Connection,
    ) -> None:
        self.config = config
        self._transport = transport  # the in-memory one of aioamqp_ext.testing, in tests
        self.owner = owner
        self.conn: Connection | None = None
        self._setup = setup
        self._on_lost = on_lost
        self._on_healed = on_healed
        self._lock = asyncio.Lock()
        self._connected = asyncio.Event()
        self._healer: asyncio.Task[None] | None = None
        self._stopped = False

    @property
    def is_connected(self) -> bool:
        """True while a connection is open and set up."""
        return self._current() is not None

    def _current(self) -> Connection | None:
        conn = self.conn
        return conn if conn is not None and conn.is_open else None

    @property
    def busy(self) -> bool:
        """True while connected or healing (the link is then bound to its event loop)."""
        return self.conn is not None or self._healer is not None

    async def connection(self, *, outage_wait: float | None = None) -> Connection:
        """The open connection: opened now if there is none, or, while healing, once healed.

        Args:
            outage_wait: seconds to wait for healing (None: the caller's own timeout bounds it).

        Raises:
            AmqpConnectionError: no URL answered (no retry here: the first connection and,
                with reconnect off, every later one fail fast).
            AmqpTimeoutError: still healing after ``outage_wait`` seconds.
            TopologyError: a declaration was refused.
            ClosedError: the owner was closed.
        """
        if (conn := self._current()) is not None:
            return conn
        if self._healer is not None:
            try:
                async with asyncio.timeout(outage_wait):
                    return await self.wait()
            except TimeoutError as exc:
                if type(exc) is not TimeoutError:
                    raise
                raise AmqpTimeoutError(
                    f"{self.owner}: still reconnecting after {outage_wait:g} s"
                ) from None
        async with self._lock:
            if (conn := self._current()) is not None:
                return conn
            if self.conn is not None:  # lost, and reconnect is off: open a new one now
                await self.conn.close()
                self.conn = None
            conn = await self._open(self.config.urls)
            if self._stopped:  # closed while connecting
                await conn.close()
                raise ClosedError(f"{self.owner} is closed")
            self._install(conn)
            logger.info("%s connected to %s", self.owner, conn.url)
            return conn

    async def wait(self) -> Connection:
        """Wait until connected (unbounded: callers add a timeout).

        Raises:
            ClosedError: the owner was closed.
        """
        while True:
            if self._stopped:
                raise ClosedError(f"{self.owner} is closed")
            if (conn := self._current()) is not None:
                return conn
            await self._connected.wait()

    async def _open(self, urls: tuple[BrokerUrl, ...]) -> Connection:
        """A connection to the first of ``urls`` that answers, with the owner's setup done."""
        cfg = self.config
        problems: list[AmqpConnectionError] = []
        for url in urls:
            conn = self._transport(url, timeout=cfg.connect_timeout)
            try:
                await conn.connect(
                    heartbeat=cfg.heartbeat_seconds,
                    confirms=cfg.publisher_confirms or cfg.max_retries > 0,
                    name=cfg.connection_name,
                )
            except AmqpConnectionError as exc:
                problems.append(exc)
                continue
            try:
                await self._setup(conn)
                if not conn.is_open:  # lost right as setup finished: nobody would be told
                    raise AmqpConnectionError(f"connection to {url} lost during set-up")
            except BaseException:
                await conn.close()
                raise
            return conn
        if len(problems) == 1:
            raise problems[0]
        kind = AmqpTimeoutError if all(isinstance(p, TimeoutError) for p in problems) else None
        message = "cannot connect to any broker: " + "; ".join(str(p) for p in problems)
        raise (kind or AmqpConnectionError)(message)

    def _install(self, conn: Connection) -> None:
        conn.on_lost = self._lost
        self.conn = conn
        self._connected.set()

    def _lost(self, error: AmqpConnectionError) -> None:
        """``on_lost`` of the current connection: start healing (once per loss)."""
        self._connected.clear()
        if self._stopped:
            return
        if self.config.reconnect and self._healer is None and self.conn is not None:
            logger.warning("%s lost its connection: %s; reconnecting", self.owner, error)
            self._healer = asyncio.get_running_loop().create_task(self._heal(self.conn))
        else:
            logger.warning("%s lost its connection: %s", self.owner, error)
        self._on_lost(error)

    async def _heal(self, lost: Connection) -> None:
        cfg = self.config
        loop = asyncio.get_running_loop()
        started = loop.time()
        await lost.close()  # after a channel-level loss the socket is still open
        at = cfg.urls.index(lost.url) + 1 if lost.url in cfg.urls else 0
        urls = cfg.urls[at:] + cfg.urls[:at]  # the others first, the lost one last
        backoff = Backoff(cfg.reconnect_delay, cfg.reconnect_max_delay)
        while True:
            await asyncio.sleep(backoff.next())
            try:
                conn = await self._open(urls)
            except Exception as exc:  # whatever failed, the healer must keep trying
                if backoff.tries == 1:  # once per outage, not per attempt
                    logger.warning(
                        "%s cannot reconnect yet (%s); retrying, at most %g s apart",
                        self.owner,
                        exc,
                        cfg.reconnect_max_delay,
                        exc_info=not isinstance(exc, AmqpExtError),
                    )
                else:
                    logger.debug("%s: reconnection attempt %d: %s", self.owner, backoff.tries, exc)
                continue
            break
        self._healer = None
        self._install(conn)
        if self._on_healed is not None:
            self._on_healed()
        logger.info(
            "%s reconnected to %s after %d %s in %.2f s",
            self.owner,
            conn.url,
            backoff.tries,
            "try" if backoff.tries == 1 else "tries",
            loop.time() - started,
        )

    async def stop(self) -> None:
        """Stop healing and wake every waiter (they raise ClosedError); idempotent."""
        self._stopped = True
        self._connected.set()
        healer, self._healer = self._healer, None
        if healer is not None and healer is not asyncio.current_task():
            healer.cancel()
            await asyncio.gather(healer, return_exceptions=True)
